"""Reading the plan's YAML into a ``Plan``; every error names the file, line and field.

The only part of the plan that touches the file system is ``load_plan``; ``parse_plan`` takes
the file's text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from session_bot.core.errors import PlanError
from session_bot.core.plan.model import Plan

# Path of keys/indices from the document root (all as strings) → 1-based line in the file.
_Lines = dict[tuple[Any, ...], int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _build_lines(node: yaml.Node, path: tuple[Any, ...], out: _Lines) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key: Any = key_node.value
            if key_node.tag.endswith(":timestamp"):
                with contextlib.suppress(ValueError):
                    key = dt.date.fromisoformat(key)
            sub = (*path, str(key))
            out[sub] = key_node.start_mark.line + 1
            _build_lines(value_node, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, str(i))
            out[sub] = item.start_mark.line + 1
            _build_lines(item, sub, out)


def _line_for(loc: tuple[Any, ...], lines: _Lines) -> int | None:
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


def _read_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    """The document's data and the line of every key in it."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise PlanError(
            f"not valid YAML: {exc.problem}. Check indentation and quoting (times like 12:30 need quotes).",
            file=source,
            line=line,
        ) from None
    if not isinstance(data, dict):
        raise PlanError(
            "the plan must be a mapping with a top-level `series:` list", file=source, line=1
        )
    lines: _Lines = {}
    if root is not None:
        _build_lines(root, (), lines)
    return data, lines


def _plan_error(exc: ValidationError, data: Any, lines: _Lines, source: str) -> PlanError:
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


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Validate a plan's YAML text; every error names the file, line and field."""
    data, lines = _read_yaml(text, source)
    try:
        return Plan.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise _plan_error(exc, data, lines, source) from None


def load_plan(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
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
