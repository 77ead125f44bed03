"""The plan as revisions in the database: edited in the console, imported from and exported to
a file, any revision viewed, compared with the current one and restored.

Each save is validated by the plan file's own validation (``parse_plan``) before it is stored;
each names the revision it was made from, so that of two organisers editing at once the second
is refused and told what changed, unless the other edit touched another session (then hers is
applied on top). Every save is in the audit log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
from dataclasses import dataclass

from session_bot.app.ports.store import Store
from session_bot.core.clock import Clock
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.plan import Plan, parse_plan
from session_bot.core.plan.edit import PlanDocument, SeriesFields, SessionFields
from session_bot.core.records import PlanRevision

SOURCE = "database"  # the ``source`` of a plan read from a revision ("database:<id>")


class EditConflict(SessionBotError):
    """Someone saved the plan since this edit began, changing what this edit changes."""

    def __init__(self, message: str, changes: list[str], current: PlanRevision) -> None:
        super().__init__(message)
        self.changes = changes
        self.current = current


class ReadOnlyPlan(SessionBotError):
    """The plan is managed as a file (SESSION_BOT_PLAN): the console shows it, not edits it."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_name(revision: PlanRevision) -> str:
    return f"{SOURCE}:{revision.id}"


def plan_of(revision: PlanRevision) -> Plan:
    return parse_plan(revision.text, source_name(revision))


@dataclass(frozen=True)
class Who:
    """Who saves, and from where (the audit log's actor and client)."""

    actor: str
    client: str | None = None


class PlanBook:
    """The plan's revisions and the edits that make new ones."""

    def __init__(self, store: Store, clock: Clock, *, file: str | None = None) -> None:
        self.store = store
        self.clock = clock
        self.file = file  # set: the plan lives in this file, and the console only shows it

    @property
    def editable(self) -> bool:
        return self.file is None

    # --- reading ----------------------------------------------------------------------------
    def current(self) -> PlanRevision | None:
        return self.store.plans.latest()

    def require_current(self) -> PlanRevision:
        revision = self.current()
        if revision is None:
            raise PlanError(
                "no plan in the database yet: import one with `session-bot plan import FILE`"
            )
        return revision

    def get(self, revision_id: int) -> PlanRevision:
        revision = self.store.plans.get(revision_id)
        if revision is None:
            raise PlanError(f"there is no plan revision {revision_id}")
        return revision

    def history(self, limit: int = 100) -> list[PlanRevision]:
        return self.store.plans.history(limit)

    def compare(self, revision_id: int, other_id: int | None = None) -> list[str]:
        """A unified diff from ``revision_id`` to ``other_id`` (default: the current one)."""
        old = self.get(revision_id)
        new = self.get(other_id) if other_id is not None else self.require_current()
        return list(
            difflib.unified_diff(
                old.text.splitlines(),
                new.text.splitlines(),
                f"Stand {old.id}",
                f"Stand {new.id}",
                lineterm="",
            )
        )

    # --- saving -----------------------------------------------------------------------------
    def import_text(self, text: str, who: Who, *, name: str = "") -> PlanRevision:
        """A whole plan (a file's text) as the new current revision, whatever came before."""
        parse_plan(text, name or "plan")
        current = self.current()
        if current is not None and current.digest == digest(text):
            return current
        note = f"imported from {name}" if name else "imported"
        return self._store(text, current.id if current else None, who, "import", note)

    def save_session(
        self,
        series_id: str,
        day: dt.date,
        fields: SessionFields,
        who: Who,
        *,
        base_id: int,
    ) -> PlanRevision:
        """Save one session's fields (validated as the plan file is; ``PlanProblems`` names
        the fields). ``base_id``: the revision the form was filled from."""
        self._writable()
        current = self.require_current()
        if current.id != base_id:
            self._refuse_if_changed(base_id, current, series_id, day)
        doc = PlanDocument(current.text)
        before = doc.session_raw(series_id, day) or {}
        doc.set_session(series_id, day, fields)
        text = doc.dump()
        parse_plan(text, source_name(current))
        changes = _differences(before, doc.session_raw(series_id, day) or {})
        return self._store(text, current.id, who, "console", f"session {series_id}/{day}", changes)

    def save_series(
        self, series_id: str, fields: SeriesFields, who: Who, *, base_id: int
    ) -> PlanRevision:
        self._writable()
        current = self.require_current()
        if current.id != base_id:
            base = PlanDocument(self.get(base_id).text).series_fields(series_id)
            if PlanDocument(current.text).series_fields(series_id) != base:
                raise EditConflict(
                    "Die Texte der Reihe wurden inzwischen von jemand anderem geändert.",
                    [f"Stand {current.id} von {current.author}"],
                    current,
                )
        doc = PlanDocument(current.text)
        before = doc.series_fields(series_id)
        doc.set_series(series_id, fields)
        text = doc.dump()
        parse_plan(text, source_name(current))
        changes = _differences(
            dataclasses.asdict(before), dataclasses.asdict(doc.series_fields(series_id))
        )
        return self._store(text, current.id, who, "console", f"series {series_id}", changes)

    def restore(self, revision_id: int, who: Who) -> PlanRevision:
        self._writable()
        old = self.get(revision_id)
        current = self.require_current()
        parse_plan(old.text, source_name(old))
        return self._store(old.text, current.id, who, "restore", f"restored revision {old.id}")

    # --- helpers ----------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.file is not None:
            raise ReadOnlyPlan(
                f"the plan is the file {self.file} (SESSION_BOT_PLAN): change it there, or "
                "import it with `session-bot plan import` and unset SESSION_BOT_PLAN"
            )

    def _refuse_if_changed(
        self, base_id: int, current: PlanRevision, series_id: str, day: dt.date
    ) -> None:
        base = PlanDocument(self.get(base_id).text).session_raw(series_id, day)
        now = PlanDocument(current.text).session_raw(series_id, day)
        if base == now:
            return  # another session was edited meanwhile: this edit goes on top
        changes = _differences(base or {}, now or {})
        raise EditConflict(
            f"Dieser Termin wurde inzwischen von {current.author} geändert "
            f"({current.created_at:%d.%m.%Y %H:%M} UTC); Ihre Änderung ist nicht gespeichert. "
            "Bitte prüfen Sie den neuen Stand und tragen Sie Ihre Änderung erneut ein.",
            changes,
            current,
        )

    def _store(
        self,
        text: str,
        parent_id: int | None,
        who: Who,
        source: str,
        note: str,
        changes: list[str] | None = None,
    ) -> PlanRevision:
        now = self.clock()
        revision = self.store.plans.add(
            parent_id=parent_id,
            text=text,
            digest=digest(text),
            author=who.actor,
            source=source,
            note=note,
            now=now,
        )
        if revision is None:
            current = self.require_current()
            raise EditConflict(
                f"Der Plan wurde gerade von {current.author} gespeichert; Ihre Änderung ist "
                "nicht gespeichert. Bitte laden Sie die Seite neu und tragen Sie sie erneut ein.",
                [f"Stand {current.id} von {current.author}"],
                current,
            )
        # The audit log says what the edit changed, not only that there was one.
        detail = f"revision {revision.id}: {note}" + "".join(f"; {c}" for c in changes or ())
        self.store.audit.record(now, who.actor, f"plan-{source}", detail, who.client)
        return revision


def _differences(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """Which keys of a session differ, as "field: before → after" lines."""
    out = []
    for key in sorted(set(before) | set(after), key=str):
        if before.get(key) != after.get(key):
            out.append(f"{key}: {_short(before.get(key))} → {_short(after.get(key))}")
    return out


def _short(value: object) -> str:
    if value is None:
        return "—"
    text = " ".join(str(value).split())
    return text if len(text) <= 120 else text[:117] + "…"
