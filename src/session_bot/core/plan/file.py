"""Reading the plan's YAML into a ``Plan``; every error names the file, line and field.

The only part of the plan that touches the file system is ``load_plan``; ``parse_plan`` takes
the file's text.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from session_bot.core.errors import PlanError
from session_bot.core.plan.model import Plan
from session_bot.core.plan.occurrences import occurrences, start_problems
from session_bot.core.plan.reader import MAX_BYTES, Lines, read_yaml, too_large

# How far ahead a plan's rule dates are checked when it is read (10 years: a monthly series
# costs a few milliseconds).
RULE_CHECK_DAYS = 3653


def _line_for(loc: tuple[Any, ...], lines: Lines) -> int | None:
    path = tuple(str(p) for p in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _field_name(loc: tuple[Any, ...], data: Any) -> str:
    parts: list[str] = []
    node = data
    for p in loc:
        if isinstance(p, int):
            label = p
            if isinstance(node, list) and p < len(node) and isinstance(node[p], dict):
                label = node[p].get("id", p)
            parts.append(f"[{label}]")
            node = node[p] if isinstance(node, list) and p < len(node) else None
        else:
            parts.append(("." if parts else "") + str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return "".join(parts)


def _loc_part(part: Any) -> Any:
    """pydantic spells date keys as ``datetime.date(2025, 2, 26)``; we spell them as in the file."""
    if isinstance(part, dt.date):
        return part.isoformat()
    if isinstance(part, str) and part.startswith("datetime.date("):
        y, m, d = (int(x) for x in part[len("datetime.date(") : -1].split(","))
        return dt.date(y, m, d).isoformat()
    return part


def _plan_error(exc: ValidationError, data: Any, lines: Lines, source: str) -> PlanError:
    """The first of pydantic's errors, told with the file's line and the field's name."""
    # A typo'd key also makes its intended field "missing": report the typo first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = tuple(_loc_part(p) for p in err["loc"] if p != "[key]")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (typo?); remove it or check the spelling against examples/willkommen.yaml"
    elif err["type"] == "missing":
        msg = "this field is required"
    more = (
        f" ({len(exc.errors()) - 1} more problem(s) after this one)"
        if len(exc.errors()) > 1
        else ""
    )
    return PlanError(
        msg + more, file=source, line=_line_for(loc, lines), field=_field_name(loc, data)
    )


def _check_starts(plan: Plan, data: Any, lines: Lines) -> None:
    """Sessions listed by date must start at a wall time that exists on their day."""
    for i, series in enumerate(plan.series):
        for path, message in start_problems(series):
            loc = ("series", i, *path)
            raise PlanError(
                message, file=plan.source, line=_line_for(loc, lines), field=_field_name(loc, data)
            )


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Validate a plan's YAML text; every error names the file, line and field."""
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        raise PlanError(
            "the plan must be a mapping with a top-level `series:` list", file=source, line=1
        )
    try:
        plan = Plan.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise _plan_error(exc, data, lines, source) from None
    _check_starts(plan, data, lines)
    _check_rule_dates(plan, data, lines)
    return plan


def _check_rule_dates(plan: Plan, data: Any, lines: Lines) -> None:
    """The rule's dates of the next years must start at a wall time that exists on their day:
    found now, with the line, rather than by the daemon the day such a date comes into view."""
    for i, series in enumerate(plan.series):
        horizon = series.starts_on + dt.timedelta(days=RULE_CHECK_DAYS)
        try:
            for _ in occurrences(series, series.starts_on, horizon, source=plan.source):
                pass
        except PlanError as exc:
            loc = ("series", i, "start")
            raise PlanError(
                exc.message,
                file=plan.source,
                line=_line_for(loc, lines),
                field=_field_name(loc, data),
            ) from None


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
