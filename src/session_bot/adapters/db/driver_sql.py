"""A Core statement compiled once and run as the driver's SQL, for the statements a busy path
runs hundreds of times a second (a sign-up's four).

The text is SQLAlchemy's own compilation for the dialect and every value goes through its
column type's own conversion (``UTCDateTime`` included), so the database sees exactly what
``Connection.execute`` would send; only the execution machinery around it is skipped (the
rate-limit upsert on SQLite: ≈ 49 µs → ≈ 5 µs). It runs on the DB-API cursor of the
surrounding SQLAlchemy connection, so it is part of that transaction (``Database.unit``).

A driver's exception comes out as SQLAlchemy's (``DBAPIError.instance``), as from
``Connection.execute``: the one seam in ``Database`` translates it, an ``IntegrityError`` stays
one, and a lost connection is invalidated, not returned to the pool.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeEngine

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.schema import UTCDateTime

_Convert = Callable[[Any], Any] | None


class DriverStatement:
    """``statement`` for ``dialect``; ``column_keys``: the columns an INSERT is given."""

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=None if column_keys is None else list(column_keys)
        )
        assert isinstance(compiled, SQLCompiler)
        # Python-side defaults and escaped names are the execution machinery's work: a
        # statement that needs them cannot go round it.
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.escaped_bind_names:
            raise ValueError(f"not runnable as driver SQL: {compiled}")
        self.sql = str(compiled)
        self._dialect = dialect
        convert = {name: _binder(bind.type, dialect) for name, bind in compiled.binds.items()}
        # The statement's own literals (``value="1"``), converted once; the rest come with
        # each execution.
        self._fixed = {
            name: _converted(convert[name], bind.value)
            for name, bind in compiled.binds.items()
            if not bind.required
        }
        self._convert = [
            (n, f) for n, f in convert.items() if f is not None and n not in self._fixed
        ]
        positions = compiled.positiontup
        self._order: tuple[str, ...] | None = (
            tuple(positions) if dialect.positional and positions is not None else None
        )
        returned = list(getattr(statement, "exported_columns", ()))
        self.keys: tuple[str, ...] = tuple(col.key for col in returned)
        result = [
            col.type.dialect_impl(dialect).result_processor(dialect, None) for col in returned
        ]
        self._result: list[_Convert] | None = result if any(result) else None

    def rows(self, c: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement run with ``values`` in the transaction of ``c``; the rows it returns,
        converted as SQLAlchemy's result would."""
        try:
            params = self._params({**self._fixed, **values})
        except Exception as exc:  # a type refused a value (a naive time): as SQLAlchemy wraps it
            raise self._foreign(c, None, exc, values) from exc
        cursor = Database.cursor(c)
        try:
            cursor.execute(self.sql, params)
            raw = cursor.fetchall() if self.keys else []
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._foreign(c, cursor, exc, params) from exc
        finally:
            cursor.close()
        convert = self._result
        if convert is None:
            return [tuple(r) for r in raw]
        return [
            tuple(v if f is None else f(v) for f, v in zip(convert, r, strict=True)) for r in raw
        ]

    def first(self, c: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        rows = self.rows(c, values)
        return rows[0] if rows else None

    def _params(self, values: dict[str, Any]) -> Any:
        for name, convert in self._convert:
            values[name] = convert(values[name])
        if self._order is None:
            return values
        return tuple(values[name] for name in self._order)

    def _foreign(self, c: Connection, cursor: Any, exc: Any, params: Any) -> StatementError:
        """As ``Connection.execute`` raises it: SQLAlchemy's class for the driver's error."""
        dialect = self._dialect
        lost = cursor is not None and dialect.is_disconnect(
            exc, c.connection.dbapi_connection, cursor
        )
        if lost:
            c.invalidate(exc)
        error: StatementError = DBAPIError.instance(
            self.sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        )
        return error


def _binder(type_: TypeEngine[Any], dialect: Dialect) -> _Convert:
    """The type's conversion of a value for the driver. A ``UTCDateTime``'s is remembered for
    the last few values: a sign-up binds the same moment five times, and converting one (to
    SQLite's text) costs more than the driver's execution of a statement. Only that type's:
    equal moments in different zones are one key, and it stores them alike (a plain
    ``DateTime`` stores each one's wall clock)."""
    convert = type_.dialect_impl(dialect).bind_processor(dialect)
    if convert is None or not isinstance(type_, UTCDateTime):
        return convert
    return functools.lru_cache(maxsize=8)(convert)


def _converted(convert: _Convert, value: Any) -> Any:
    return value if convert is None else convert(value)
