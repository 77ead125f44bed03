"""Reading the plan's YAML into a ``Plan``; every problem at once, each naming its file, line
and field, in the organiser's words (``plan.problems``, ``plan.messages``).

Besides what the models check: a session's start must exist on its day (not in the hour the
clocks skip), the rule's dates of the next ten years likewise, and a session listed by date must
be one the rule gives, or be marked ``extra: true`` (else the rule's nearest date is named: a
Thursday typed for a Wednesday would otherwise become an extra session beside a "held" one).

The only part of the plan that touches the file system is ``load_plan``; ``parse_plan`` takes
the file's text.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from session_bot.core.errors import PlanError
from session_bot.core.plan import messages
from session_bot.core.plan.model import Plan, Series
from session_bot.core.plan.occurrences import (
    occurrences,
    off_rule_sessions,
    outside_sessions,
    start_problems,
)
from session_bot.core.plan.problems import PlanProblems, Where, ordered, validation_problems
from session_bot.core.plan.reader import MAX_BYTES, Spelled, read_yaml, too_large

# How far ahead a plan's rule dates are checked when it is read (10 years: a monthly series
# costs a few milliseconds).
RULE_CHECK_DAYS = 3653


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Validate a plan's YAML text; raises ``PlanProblems`` naming every problem's file, line
    and field, in the organiser's words."""
    spelled: Spelled = {}
    try:
        data, lines = read_yaml(text, source, spelled)
    except PlanError as exc:
        raise PlanProblems([exc]) from None
    if not isinstance(data, dict):
        raise PlanProblems(
            [
                PlanError(
                    "der Plan braucht oben `series:` mit einer Liste von Reihen (siehe "
                    "examples/willkommen.yaml)",
                    file=source,
                    line=1,
                )
            ]
        )
    where = Where(source, data, lines, spelled)
    problems: list[PlanError] = []
    plan: Plan | None = None
    try:
        plan = Plan.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems += validation_problems(exc, where)
    for i, series in _valid_series(plan, data):
        problems += _series_problems(i, series, where)
    if problems or plan is None:
        raise PlanProblems(ordered(problems))
    return plan


def _valid_series(plan: Plan | None, data: dict[str, Any]) -> list[tuple[int, Series]]:
    """Each series that is valid on its own, with its index: when another part of the plan is
    wrong, its sessions are still checked, so every problem is told at once."""
    if plan is not None:
        return list(enumerate(plan.series))
    raw = data.get("series")
    found: list[tuple[int, Series]] = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            found.append((i, Series.model_validate(item)))
        except ValidationError:
            continue
    return found


def _series_problems(i: int, series: Series, where: Where) -> list[PlanError]:
    """What a valid series says that its dates cannot keep."""
    found = [where.error(("series", i, *path), message) for path, message in start_problems(series)]
    for day in outside_sessions(series):
        message = messages.outside_series(day, series.starts_on, series.until)
        found.append(where.error(("series", i, "sessions", day.isoformat()), message))
    for day, nearest in off_rule_sessions(series):
        message = messages.off_rule(day, nearest)
        found.append(where.error(("series", i, "sessions", day.isoformat()), message))
    rule_problem = _rule_date_problem(series, where.source)
    if rule_problem is not None:
        key = "holidays" if rule_problem.field.endswith(".holidays") else "start"
        found.append(where.error(("series", i, key), rule_problem.message))
    return found


def _rule_date_problem(series: Series, source: str) -> PlanError | None:
    """The rule's dates of the next years must start at a wall time that exists on their day:
    found now, with the line, rather than by the daemon the day such a date comes into view."""
    horizon = series.starts_on + dt.timedelta(days=RULE_CHECK_DAYS)
    # Sessions listed by date are ``start_problems``; here only the rule's other dates count.
    rule_only = series.model_copy(
        update={"sessions": {}, "exceptions": (*series.exceptions, *series.sessions)}
    )
    try:
        for _ in occurrences(rule_only, series.starts_on, horizon, source=source):
            pass
    except PlanError as exc:
        return exc
    return None


def load_plan(path: Path) -> Plan:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise too_large(str(path))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise PlanError(
            "plan file not found; set SESSION_BOT_PLAN to your plan (examples/willkommen.yaml is a start)",
            file=str(path),
        ) from None
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"not UTF-8 text ({exc.reason}); save the file as UTF-8", file=str(path)
        ) from None
    return parse_plan(text, str(path))
