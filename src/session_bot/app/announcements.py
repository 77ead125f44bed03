"""Announcements (issue 17): a one-off mail from the organiser to the whole list, outside the
schedule ("no session in August", "the slides of last week"), through the same delivery ledger
as the session mails: mailing and delivery rows, claims, rate limits, one-click unsubscribe.

Data: an announcement is a mailing without a session (kind ``announcement``, numbered on its
own); its ``details`` hold the series, the subject and text per language and, when scheduled,
``send_at``. Sent now, it is frozen with its recipients at once. Scheduled, it waits as a mailing
without delivery rows until the first run at or after ``send_at`` freezes it (the confirmed
subscribers of that moment) and delivers it: the daemon's hourly tick, `session-bot run` or
POST /admin/run. A language without its own text gets the series language's mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from session_bot.app.delivery import DeliveryReport
from session_bot.app.personaliser import Personaliser, RecipientFor
from session_bot.app.ports.render import RenderedMail
from session_bot.app.ports.store import Store
from session_bot.core.clock import Clock
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.languages import LANGUAGES
from session_bot.core.plan import Plan, Series
from session_bot.core.records import DeliveryRow, MailingRow

log = logging.getLogger("session_bot.runner")

KIND = "announcement"
MAX_SUBJECT, MAX_TEXT = 200, 20_000


class AnnouncementMailRenderer(Protocol):
    """Renders a series' announcements (``adapters.render.announcement``)."""

    def render(
        self, series: Series, *, subject: str, text: str, language: str, test_send: bool = False
    ) -> RenderedMail: ...


AnnouncementRendererFor = Callable[[Series], AnnouncementMailRenderer]


@dataclass(frozen=True)
class Announcement:
    """What the organiser wrote: subject and text per language (the series language's first)."""

    series: str
    subjects: dict[str, str]
    texts: dict[str, str]
    send_at: dt.datetime | None = None
    by: str = ""
    about: str | None = None  # the session a follow-up is about (its key)

    def problems(self, primary: str) -> list[str]:
        """Text keys of what is missing or too long (empty when it may go out)."""
        out = []
        if not self.subjects.get(primary, "").strip() or not self.texts.get(primary, "").strip():
            out.append("ann_missing")
        for lang in self.subjects:
            if bool(self.subjects[lang].strip()) != bool(self.texts.get(lang, "").strip()):
                out.append("ann_half")
        too_long = any(len(s) > MAX_SUBJECT for s in self.subjects.values()) or any(
            len(t) > MAX_TEXT for t in self.texts.values()
        )
        return out + (["ann_too_long"] if too_long else [])

    def languages(self) -> list[str]:
        return [lang for lang in LANGUAGES if self.texts.get(lang, "").strip()]

    def to_details(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "subjects": {k: v for k, v in self.subjects.items() if v.strip()},
            "texts": {k: v for k, v in self.texts.items() if v.strip()},
            "send_at": self.send_at.isoformat() if self.send_at else None,
            "by": self.by,
            "about": self.about,
        }

    @classmethod
    def from_details(cls, d: dict[str, Any]) -> Announcement:
        send_at = d.get("send_at")
        return cls(
            series=str(d.get("series", "")),
            subjects=dict(d.get("subjects", {})),
            texts=dict(d.get("texts", {})),
            send_at=dt.datetime.fromisoformat(send_at) if send_at else None,
            by=str(d.get("by", "")),
            about=d.get("about"),
        )


def render_all(
    renderer: AnnouncementMailRenderer, series: Series, a: Announcement, *, test_send: bool = False
) -> dict[str, RenderedMail]:
    """The mail in every language; one without its own text gets the series language's (or the
    first written). A template error raises before anything is recorded or sent."""
    written = a.languages()
    if not written:
        raise SessionBotError("the announcement has no text")
    fallback = series.language if series.language in written else written[0]
    out: dict[str, RenderedMail] = {}
    for lang in LANGUAGES:
        own = lang if lang in written else fallback
        out[lang] = renderer.render(
            series, subject=a.subjects[own], text=a.texts[own], language=own, test_send=test_send
        )
    return out


def create(store: Store, a: Announcement, now: dt.datetime) -> tuple[int, int]:
    """Record the announcement: frozen with its recipients now, or (``send_at`` ahead) waiting
    for the first run at or after its moment; (mailing_id, number)."""
    later = a.send_at is not None and a.send_at > now
    return store.mailings.create_announcement(a.to_details(), now, freeze=not later)


def waiting(details: dict[str, Any]) -> bool:
    """Scheduled and not frozen yet: no delivery rows, nothing to send."""
    return "frozen_at" not in details


def freeze_due(store: Store, now: dt.datetime) -> list[int]:
    """Freeze the scheduled announcements whose moment has come; their mailing ids."""
    frozen = []
    for m in store.mailings.open():
        if m.kind != KIND:
            continue
        details = store.mailings.details(m.id)
        a = Announcement.from_details(details)
        due = waiting(details) and (a.send_at is None or a.send_at <= now)
        if due and store.mailings.freeze_announcement(m.id, now):
            log.info("announcement %s is due: frozen with its recipients", m.sequence)
            frozen.append(m.id)
    return frozen


Push = Callable[[MailingRow, Callable[[DeliveryRow], bytes]], DeliveryReport]


@dataclass
class AnnouncementDesk:
    """Renders a frozen announcement once per language and pushes it through ``push`` (the
    session mails' ``deliver_mailing`` with the run's delivery options)."""

    store: Store
    plan: Plan
    clock: Clock
    recipient_for: RecipientFor
    message_id_domain: str
    renderers: Callable[[], AnnouncementRendererFor | None]

    def deliver(self, mailing: MailingRow, push: Push) -> DeliveryReport:
        details = self.store.mailings.details(mailing.id)
        if waiting(details):
            return DeliveryReport()  # its moment has not come: the run at or after it freezes it
        stuck = f"mailing {mailing.id} ({KIND} {mailing.sequence})"
        renderer_for = self.renderers()
        try:
            a = Announcement.from_details(details)
            series = self.plan.get_series(a.series)
            if renderer_for is None:
                raise SessionBotError("this process has no announcement renderer")
            rendered = render_all(renderer_for(series), series, a)
        except (SessionBotError, PlanError) as exc:
            log.error("%s cannot be rendered: %s; not sent", stuck, exc)
            return DeliveryReport(stuck=[f"{stuck}: {exc}"])
        now = self.clock()
        log.info("delivering mailing %s (%s %s)", mailing.id, KIND, mailing.sequence)

        personalise = Personaliser(
            mailing, rendered, series.language, self.recipient_for, self.message_id_domain, now
        )
        return push(mailing, personalise)
