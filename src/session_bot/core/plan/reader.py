"""The YAML of a plan file, read as the small safe subset an organiser writes.

What an organiser never needs is refused with the line at fault, before anything is built:
anchors and aliases (``&name``/``*name``: they are how recursive values and "billion laughs"
alias bombs are made), explicit tags (``!!int``, ``!!binary``…), control characters, nesting
deeper than ``MAX_DEPTH``, files over ``MAX_BYTES``, a key written twice in one mapping (YAML
would keep the last silently), and dates that are not on the calendar (``2026-02-30``).

The one boundary where yaml's exceptions become ``PlanError``; ``plan.file`` does the rest.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any, Protocol

import yaml

from session_bot.core.errors import PlanError

MAX_BYTES = 1_000_000
MAX_DEPTH = 50
_STR_TAG = "tag:yaml.org,2002:str"
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

# Path of keys/indices from the document root (all as strings) → 1-based line in the file.
Lines = dict[tuple[str, ...], int]
# Path → a scalar value as the file spells it (``12.30``, not the number YAML makes of it).
Spelled = dict[tuple[str, ...], str]


class _Refused(yaml.YAMLError):
    """Something the plan's YAML may not contain, at a 1-based line."""

    def __init__(self, message: str, line: int | None, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field


class _Mark(Protocol):
    line: int  # 0-based


def _line(mark: _Mark | None) -> int | None:
    return mark.line + 1 if mark is not None else None


class _PlanLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases, explicit tags and deep nesting as it composes."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        line = _line(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"YAML aliases (*name) are not supported; write the value out (*{event.anchor})",
                line,
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(
                f"YAML anchors (&name) are not supported; remove &{anchor} and write the value "
                "out wherever it is used",
                line,
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!", _STR_TAG):
            raise _Refused(
                f"YAML tags ({tag}) are not supported; remove the tag and write the plain value",
                line,
            )
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep; check the brackets", line)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:  # e.g. `0x_`, which the resolver takes for a number
            raise _Refused(
                f"cannot read {node.value!r} ({exc}); write it as plain text in quotes",
                _line(node.start_mark),
            ) from None


def _calendar_date(value: str) -> dt.date | None:
    """The date a YAML timestamp scalar spells, None when it has a time of day too.

    Raises ``ValueError`` with a plain reason when the date is not on the calendar.
    """
    match = yaml.constructor.SafeConstructor.timestamp_regexp.match(value)
    if match is None:
        return None
    year, month, day = (int(match.group(k)) for k in ("year", "month", "day"))
    if year < 1:
        raise ValueError("there is no year 0")
    if not 1 <= month <= 12:
        raise ValueError(f"there is no month {month}")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise ValueError(f"{_MONTHS[month - 1]} {year} has {days} days")
    return dt.date(year, month, day) if match.group("hour") is None else None


def _scalar(node: yaml.Node, field: str) -> str:
    """A key or value as the file spells it (dates normalised to YYYY-MM-DD); ``field`` names
    it in errors."""
    if not isinstance(node, yaml.ScalarNode):
        raise _Refused("a key must be plain text, not a list or mapping", _line(node.start_mark))
    value = str(node.value)
    if node.tag == _TIMESTAMP_TAG:
        try:
            day = _calendar_date(value)
        except ValueError as exc:
            raise _Refused(
                f"{value} is not a date ({exc}); correct the day or month",
                _line(node.start_mark),
                field,
            ) from None
        if day is not None:
            return day.isoformat()
    return value


def _item_label(node: yaml.Node, index: int) -> str:
    """A sequence item is named by its ``id:`` when it has one, else by its index."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "id" and isinstance(value, yaml.ScalarNode):
                return f"[{value.value}]"
    return f"[{index}]"


def _walk(node: yaml.Node, path: tuple[str, ...], field: str, out: Lines, spelled: Spelled) -> None:
    """Record the line of every key and item and the spelling of every scalar; refuse bad dates
    and keys written twice."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        spelled[path] = _scalar(node, field)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            raw = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            key = _scalar(key_node, f"{field}.{raw}" if field else str(raw))
            sub_field = f"{field}.{key}" if field else key
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Refused(
                    f"{key} is written twice (lines {seen[key]} and {line}); keep one and merge "
                    "what the other says into it",
                    line,
                    sub_field,
                )
            seen[key] = line
            out[(*path, key)] = line
            _walk(value_node, (*path, key), sub_field, out, spelled)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, str(i))] = item.start_mark.line + 1
            _walk(item, (*path, str(i)), field + _item_label(item, i), out, spelled)


def _control_character(exc: yaml.reader.ReaderError, text: str) -> _Refused:
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return _Refused(
        f"the file contains the control character U+{ord(char):04X}, which YAML does not allow; "
        "delete it (it is often invisible: retype the line)",
        text.count("\n", 0, exc.position) + 1,
    )


def read_yaml(text: str, source: str, spelled: Spelled | None = None) -> tuple[Any, Lines]:
    """The document's data and the line of every key in it; anything refused is a PlanError.

    ``spelled``, when given, receives every scalar value as the file spells it."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise too_large(source)
    lines: Lines = {}
    loader: _PlanLoader | None = None
    try:
        try:
            loader = _PlanLoader(text)
            root = loader.get_single_node()
        except yaml.reader.ReaderError as exc:
            raise _control_character(exc, text) from None
        if root is not None:
            _walk(root, (), "", lines, {} if spelled is None else spelled)
        data = loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        raise PlanError(exc.message, file=source, line=exc.line, field=exc.field) from None
    except yaml.MarkedYAMLError as exc:
        raise PlanError(
            f"not valid YAML: {exc.problem}. Check indentation and quoting (times like 12:30 "
            "need quotes).",
            file=source,
            line=_line(exc.problem_mark),
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def too_large(source: str) -> PlanError:
    return PlanError(
        f"the plan file is larger than {MAX_BYTES // 1_000_000} MB; a plan is a few pages of "
        "text: check that the right file is named",
        file=source,
    )
