"""The Jinja2 environment of the mail templates, with Jinja's errors turned into ``TemplateError``.

Organisers edit these templates, so every failure names the template file, its line and, for a
missing field, the field — not a Python traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_date, format_time

from session_bot.core.errors import TemplateError


def default_templates_dir() -> Path:
    """``templates/`` inside the wheel, else the source checkout's top-level ``templates/``."""
    package = Path(__file__).resolve().parents[2]  # session_bot/
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parents[1] / "templates"


class Templates:
    """The organiser's override directory (if any) in front of the defaults, file by file."""

    def __init__(self, override_dir: Path | None) -> None:
        dirs = [override_dir] if override_dir else []
        self.dirs = [d.resolve() for d in [*dirs, default_templates_dir()]]
        self.env = _environment(tuple(self.dirs), _state(self.dirs[:-1]))

    def render(self, name: str, ctx: dict[str, Any]) -> str:
        with self._errors(name):
            return self.env.get_template(name).render(ctx)
        raise AssertionError("unreachable")

    def block(self, name: str, block: str, ctx: dict[str, Any]) -> str:
        """One ``{% block %}`` of template ``name`` on its own (a subject, a calendar summary)."""
        with self._errors(name):
            tmpl = self.env.get_template(name)
            render = tmpl.blocks.get(block)
            if render is None:
                raise TemplateError(
                    f"must define {{% block {block} %}}…{{% endblock %}}", template=name
                )
            try:
                return "".join(render(tmpl.new_context(ctx)))
            except Exception:  # Jinja's own idiom: re-raised with template file and line
                self.env.handle_exception()
        raise AssertionError("unreachable")

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """Translate Jinja errors into ``TemplateError`` naming template, line and field."""
        try:
            yield
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"syntax error: {exc.message}; see https://jinja.palletsprojects.com/templates/",
                template=exc.name or name,
                line=exc.lineno,
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {exc.name} not found in {', '.join(map(str, self.dirs))}; "
                "restore it or remove the override directory setting",
                template=name,
            ) from None
        except jinja2.UndefinedError as exc:
            where, line = self._locate(exc, name)
            field_name = _missing_field(exc.message or "")
            raise TemplateError(
                f"missing field {field_name} ({exc.message}); use a field listed in "
                "templates/README.md or guard it with {% if … is defined %}",
                template=where,
                line=line,
            ) from None
        except jinja2.TemplateError as exc:
            where, line = self._locate(exc, name)
            raise TemplateError(f"{exc.message}", template=where, line=line) from None
        except UnicodeDecodeError as exc:
            raise TemplateError(
                f"is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8",
                template=self._undecodable(name),
            ) from None
        except RecursionError:
            raise TemplateError(
                "includes or extends itself (directly or through another template); remove "
                "the loop",
                template=name,
            ) from None
        except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
            # An expression the organiser wrote ({{ 1/0 }}, a number plus a text …) failed.
            where, line = self._locate(exc, name)
            raise TemplateError(
                f"an expression failed: {type(exc).__name__}: {exc}; check the {{{{ … }}}} "
                "and {% … %} on that line",
                template=where,
                line=line,
            ) from None

    def _undecodable(self, fallback: str) -> str:
        """The first template file that is not UTF-8 (the one asked for may only include it)."""
        for d in self.dirs:
            for path in sorted(d.rglob("*")):
                if path.is_file() and path.suffix in (".txt", ".html"):
                    try:
                        path.read_bytes().decode("utf-8")
                    except UnicodeDecodeError:
                        return path.relative_to(d).as_posix()
        return fallback

    def _locate(self, exc: BaseException, fallback: str) -> tuple[str, int | None]:
        # The failing line may sit in an included layout, not in the template asked for; Jinja
        # leaves the template's own file and line in the traceback.
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            path = Path(frame.filename)
            for d in self.dirs:
                if path.is_relative_to(d):
                    return path.relative_to(d).as_posix(), frame.lineno
        return fallback, None


def _state(dirs: list[Path]) -> tuple[tuple[str, int], ...]:
    """Every file of the override directories with its time: a file added, edited or removed
    there makes a new environment."""
    found: list[tuple[str, int]] = []
    for d in dirs:
        for root, _, names in os.walk(d):
            for name in names:
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):  # removed meanwhile: not there
                    found.append((path, os.stat(path).st_mtime_ns))
    return tuple(sorted(found))


@functools.lru_cache(maxsize=16)
def _environment(dirs: tuple[Path, ...], state: tuple[tuple[str, int], ...]) -> jinja2.Environment:
    """One environment per directory list and state of its files, so that a run compiles each
    template once and not at every mailing (≈ 40 ms of a 10,000-message mailing's second)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["format_date"] = _filter_date
    env.filters["format_time"] = _filter_time
    return env


def _missing_field(message: str) -> str:
    m = re.search(r"has no attribute '([^']+)'", message) or re.search(
        r"'([^']+)' is undefined", message
    )
    return repr(m.group(1)) if m else "?"


@jinja2.pass_context
def _filter_date(ctx: jinja2.runtime.Context, value: dt.date, fmt: str = "full") -> str:
    return format_date(value, fmt, locale=ctx["language"])


@jinja2.pass_context
def _filter_time(ctx: jinja2.runtime.Context, value: dt.datetime, fmt: str = "short") -> str:
    return format_time(value, fmt, tzinfo=ctx.get("_zone"), locale=ctx["language"])
