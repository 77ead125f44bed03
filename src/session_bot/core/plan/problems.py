"""Every problem of a plan file at once, each with its line and field, in the organiser's words.

``PlanProblems`` is the one ``PlanError`` that ``parse_plan`` raises: its ``line``, ``field``
and ``message`` are the first problem's (top of the file first), ``problems`` all of them, and
``str()`` one line per problem::

    plan.yaml:6: series[willkommen].start: Startzeit „12.30“: bitte als Uhrzeit wie …
    plan.yaml:7: series[willkommen].duration: Dauer „eine Stunde“: bitte eine Zahl von …

``validation_problems`` tells pydantic's errors with ``plan.messages``. Pure.
"""

from __future__ import annotations

import datetime as dt
import difflib
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from session_bot.core.errors import PlanError
from session_bot.core.plan import messages
from session_bot.core.plan.model import Plan, SessionContent
from session_bot.core.plan.reader import Lines, Spelled

Loc = tuple[Any, ...]


class PlanProblems(PlanError):
    """All problems of one plan file; the attributes of ``PlanError`` are the first one's."""

    def __init__(self, problems: Iterable[PlanError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.message, file=first.file, line=first.line, field=first.field)
        self.args = ("\n".join(str(p) for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Where:
    """A plan file's data, the line of each key and the spelling of each value."""

    source: str
    data: Any
    lines: Lines
    spelled: Spelled

    def line(self, loc: Loc) -> int | None:
        path = tuple(str(p) for p in loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def field(self, loc: Loc) -> str:
        """``series[willkommen].sessions.2025-03-26.start``: items named by their ``id:``."""
        parts: list[str] = []
        node = self.data
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

    def error(self, loc: Loc, message: str) -> PlanError:
        return PlanError(message, file=self.source, line=self.line(loc), field=self.field(loc))


def _loc_part(part: Any) -> Any:
    """pydantic spells date keys as ``datetime.date(2025, 2, 26)``; we spell them as in the file."""
    if isinstance(part, dt.date):
        return part.isoformat()
    if isinstance(part, str) and part.startswith("datetime.date("):
        y, m, d = (int(x) for x in part[len("datetime.date(") : -1].split(","))
        return dt.date(y, m, d).isoformat()
    return part


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model whose fields are at ``loc`` (a path from the plan's root), if any."""
    tp: Any = Plan
    for part in (*loc, None):
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            tp = next(a for a in get_args(tp) if a is not type(None))
            origin = get_origin(tp)
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
        elif origin is tuple:
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _key(loc: Loc) -> tuple[str | None, bool]:
    """The YAML key a value belongs to, and whether the value is an item of its list."""
    if loc and isinstance(loc[-1], int):
        key = loc[-2] if len(loc) > 1 and isinstance(loc[-2], str) else None
        return key, True
    return (loc[-1] if loc and isinstance(loc[-1], str) else None), False


def validation_problems(exc: ValidationError, where: Where) -> list[PlanError]:
    """pydantic's errors as the organiser reads them: one per place, none twice."""
    found: dict[Loc, str] = {}
    misplaced: list[Loc] = []
    errors = exc.errors()
    unknown = {
        tuple(_loc_part(p) for p in e["loc"]) for e in errors if e["type"] == "extra_forbidden"
    }
    for err in errors:
        raw_loc = tuple(_loc_part(p) for p in err["loc"])
        kind = err["type"]
        if raw_loc and raw_loc[-1] == "[key]":
            loc = raw_loc[:-1]
            parent = loc[-2] if len(loc) > 1 and isinstance(loc[-2], str) else None
            fields = list(SessionContent.model_fields)
            found[loc] = messages.misplaced_key(str(loc[-1]), parent, fields)
            misplaced.append(loc)
            continue
        loc = raw_loc
        if kind == "extra_forbidden":
            known = _model_at(loc[:-1])
            names = list(known.model_fields) if known else []
            found.setdefault(loc, messages.unknown_field(str(loc[-1]), names))
            continue
        if kind == "missing":
            if _typo_of(loc, unknown):
                continue  # "topc" (unknown, "meinten Sie topic?") says it already
            found.setdefault(loc, messages.missing_field(str(loc[-1])))
            continue
        if kind == "too_short" and loc == ("series",) and err.get("input"):
            continue  # the list is there; its series' own problems say what is wrong
        key, in_list = _key(loc)
        raw = where.spelled.get(tuple(str(p) for p in loc))
        ctx = err.get("ctx") or {}
        text = messages.problem_text(kind, key, raw, ctx, err["msg"], in_list=in_list)
        found.setdefault(loc, text)
    return [
        where.error(loc, text)
        for loc, text in found.items()
        if not any(loc != m and loc[: len(m)] == m for m in misplaced)
    ]


def _typo_of(missing: Loc, unknown: set[Loc]) -> bool:
    """Whether an unknown key next to the missing field is probably its misspelling."""
    siblings = [str(u[-1]) for u in unknown if u[:-1] == missing[:-1]]
    return bool(siblings) and any(
        difflib.get_close_matches(s, [str(missing[-1])], n=1) for s in siblings
    )


def ordered(problems: Iterable[PlanError]) -> list[PlanError]:
    """Top of the file first; problems without a line last; each place once."""
    seen: set[str] = set()
    out: list[PlanError] = []
    for p in sorted(problems, key=lambda p: (p.line is None, p.line or 0)):
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
