"""What `session-bot status` (and `preview`'s notes) say to the organiser: German first, English
second. Local times with weekdays in the series' zone (Babel), states and reasons in words."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

# What the organiser reads: German first, English second (`status --language en`).
TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "as_of": "Stand: {now} ({zone})",
        "upcoming": "Kommende Termine:",
        "none": "  keine in den nächsten 120 Tagen",
        "planned": "geplant",
        "waiting": "wartet auf ein Thema",
        "held": "angehalten – es fehlt ein Thema, die Einladung wartet",
        "invited": "eingeladen",
        "reminded": "erinnert",
        "cancelled": "abgesagt",
        "skipped": "entfällt",
        "no_topic": "(noch kein Thema)",
        "meeting": "Zoom-Meeting {id}",
        "no_meeting": "noch kein Zoom-Meeting",
        "mail_at": "{kind} am {when}",
        "sent_to": "an {n} verschickt",
        "changed": "Geändert seit der letzten Nachricht ({fields}): beim nächsten Lauf geht "
        "eine Änderungsmitteilung hinaus.",
        "time": "Datum/Uhrzeit",
        "topic": "Thema",
        "speakers": "Vortragende",
        "orphaned": "Eingeladen, aber nicht mehr im Plan – bitte im Plan mit `cancelled: true` "
        "und einem Grund absagen:",
        "due": "Jetzt fällig:",
        "nothing_due": "Jetzt fällig: nichts",
        "next": "Als Nächstes:",
        "nothing_next": "Als Nächstes: nichts geplant",
        "for": "für den Termin am {day}",
        "step": "{what} am {when} {session}",
        "after_topic": " (sobald ein Thema im Plan steht)",
        "to_n": "{kind} an {n} Abonnent:innen",
        "do_meeting": "Zoom-Meeting anlegen",
        "do_update": "Änderungsmitteilung an die Eingeladenen",
        "do_cancellation": "Absage an die Eingeladenen",
        "do_meeting_only": "Zoom-Meeting löschen (noch niemand eingeladen)",
        "do_hold": "Einladung angehalten: im Plan fehlt noch ein Thema",
        "late": " (verspätet, wird nachgeholt)",
        "invitation": "Einladung",
        "reminder": "Erinnerung",
        "update": "Änderungsmitteilung",
        "cancellation": "Absage",
        "late-invitation": "nachträgliche Einladung",
        "owed": "Noch nicht zugestellt: {n} der {kind} {session}",
        "attempt": "; nächster Versuch {when}",
        "said": "; der Mailserver sagte zuletzt: {answer}",
        "run": "Letzter Lauf: {when} ({trigger}) – {outcome}",
        "never": "Letzter Lauf: noch keiner",
        "did": "  Erledigt: {what}",
        "why": "  Grund: {why}",
        "ok": "erfolgreich",
        "incomplete": "unvollständig (Nachrichten warten auf einen neuen Versuch)",
        "partial": "teilweise fehlgeschlagen",
        "error": "abgebrochen",
        "unfinished": "läuft noch oder wurde unterbrochen",
        "manual": "von Hand",
        "demo": "Demo",
        "messages": "Nachrichten insgesamt: {counts}",
        "subscribers": "Abonnent:innen: {counts}",
        "nothing": "keine",
        "d_sent": "zugestellt",
        "d_pending": "wartend",
        "d_sending": "im Versand",
        "d_failed": "fehlgeschlagen",
        "d_skipped": "entfallen (Termin abgesagt)",
        "pending": "unbestätigt",
        "confirmed": "bestätigt",
        "unsubscribed": "abgemeldet",
        "bounced": "unzustellbar",
        "bounced_list": "Unzustellbare Adressen (sie bekommen keine Post mehr):",
        "since": " seit {day}",
        "zoom": "Zoom-Aufrufe heute (Anlegen/Ändern, Tag nach UTC): {n} von 100",
        "exception": "als Ausnahme im Plan eingetragen",
        "break": "Pause im {month}",
        "holiday": "Feiertag: {name}",
        "one": "Nachricht",
        "many": "Nachrichten",
        "created": "Zoom-Meetings angelegt: {n}",
        "mailed": "Nachrichten verschickt: {n}",
        "retry": "{n} für einen neuen Versuch",
        "lost": "{n} endgültig fehlgeschlagen",
        "idle": "nichts zu tun",
        "stopped": "abgebrochen: {why}",
        "stuck": "konnte nicht verschickt werden: {why}",
        "refused": "{n} Nachrichten endgültig abgelehnt{first}",
        "first": " (zuerst: {why})",
        "not_yet": "{n} Nachrichten noch nicht zugestellt, neuer Versuch{when}",
        "from": " ab {when}",
    },
    "en": {
        "as_of": "As of {now} ({zone})",
        "upcoming": "Upcoming sessions:",
        "none": "  none in the next 120 days",
        "planned": "planned",
        "waiting": "waiting for a topic",
        "held": "held – the topic is missing, the invitation waits",
        "invited": "invited",
        "reminded": "reminded",
        "cancelled": "cancelled",
        "skipped": "skipped",
        "no_topic": "(no topic yet)",
        "meeting": "Zoom meeting {id}",
        "no_meeting": "no Zoom meeting yet",
        "mail_at": "{kind} on {when}",
        "sent_to": "sent to {n}",
        "changed": "Changed since the last mail ({fields}): an update goes out with the next run.",
        "time": "date/time",
        "topic": "topic",
        "speakers": "speakers",
        "orphaned": "Invited but no longer in the plan – cancel them in the plan with "
        "`cancelled: true` and a reason:",
        "due": "Due now:",
        "nothing_due": "Due now: nothing",
        "next": "Next:",
        "nothing_next": "Next: nothing planned",
        "for": "for the session on {day}",
        "step": "{what} on {when} {session}",
        "after_topic": " (once the plan has a topic)",
        "to_n": "{kind} to {n} subscribers",
        "do_meeting": "create the Zoom meeting",
        "do_update": "update to those invited",
        "do_cancellation": "cancellation to those invited",
        "do_meeting_only": "delete the Zoom meeting (nobody was invited yet)",
        "do_hold": "invitation held: the plan has no topic yet",
        "late": " (late, catching up)",
        "invitation": "Invitation",
        "reminder": "Reminder",
        "update": "update",
        "cancellation": "cancellation",
        "late-invitation": "late invitation",
        "owed": "Not delivered yet: {n} of the {kind} {session}",
        "attempt": "; next attempt {when}",
        "said": "; the mail server last said: {answer}",
        "run": "Last run: {when} ({trigger}) – {outcome}",
        "never": "Last run: none yet",
        "did": "  Done: {what}",
        "why": "  Reason: {why}",
        "ok": "succeeded",
        "incomplete": "incomplete (messages wait for another attempt)",
        "partial": "partly failed",
        "error": "stopped",
        "unfinished": "still running or interrupted",
        "manual": "by hand",
        "demo": "demo",
        "messages": "Messages in all: {counts}",
        "subscribers": "Subscribers: {counts}",
        "nothing": "none",
        "d_sent": "delivered",
        "d_pending": "waiting",
        "d_sending": "being sent",
        "d_failed": "failed",
        "d_skipped": "dropped (session cancelled)",
        "pending": "unconfirmed",
        "confirmed": "confirmed",
        "unsubscribed": "unsubscribed",
        "bounced": "bouncing",
        "bounced_list": "Bouncing addresses (they get no more mail):",
        "since": " since {day}",
        "zoom": "Zoom calls today (create/update, UTC day): {n} of 100",
        "exception": "listed as an exception in the plan",
        "break": "break in {month}",
        "holiday": "public holiday: {name}",
        "one": "message",
        "many": "messages",
        "created": "Zoom meetings created: {n}",
        "mailed": "messages sent: {n}",
        "retry": "{n} to retry",
        "lost": "{n} failed for good",
        "idle": "nothing to do",
        "stopped": "stopped: {why}",
        "stuck": "could not be sent: {why}",
        "refused": "{n} messages refused for good{first}",
        "first": " (first: {why})",
        "not_yet": "{n} messages not delivered yet, retried{when}",
        "from": " from {when}",
    },
}
_PROBLEMS = (
    (re.compile(r"stopped: (?P<why>.*)"), "stopped"),
    (re.compile(r"could not be sent: (?P<why>.*)"), "stuck"),
    (
        re.compile(r"(?P<n>\d+) message\(s\) refused for good(?: \(first: (?P<first>.*)\))?"),
        "refused",
    ),
    (
        re.compile(r"(?P<n>\d+) message\(s\) not delivered yet, retried(?: from (?P<when>\S+))?"),
        "not_yet",
    ),
)
_COUNTS = (
    ("meeting(s) created", "created"),
    ("message(s) sent", "mailed"),
    ("to retry", "retry"),
    ("failed", "lost"),
)


def moment(value: str | dt.datetime, lang: str, zone: str) -> str:
    """``Samstag, 5. Dezember 2026, 09:55 Uhr`` in the series' zone (no seconds)."""
    from babel.dates import format_datetime

    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    pattern = "EEEE, d. MMMM yyyy, HH:mm 'Uhr'" if lang == "de" else "EEEE, d MMMM yyyy, HH:mm"
    return format_datetime(when, pattern, tzinfo=ZoneInfo(zone), locale=lang)


def day(value: str | dt.date, lang: str, *, weekday: bool = True) -> str:
    from babel.dates import format_date

    date = dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value
    pattern = "d. MMMM yyyy" if lang == "de" else "d MMMM yyyy"
    return format_date(date, ("EEEE, " if weekday else "") + pattern, locale=lang)


def skip_words(reason: str, date: dt.date, lang: str) -> str:
    """The core's reason a date is skipped (break, holiday, exception), in ``lang``."""
    from babel.dates import format_date

    t = TEXTS[lang]
    if reason.startswith("listed as an exception"):
        return t["exception"]
    if reason.startswith("in the summer/holiday break"):
        return t["break"].format(month=format_date(date, "MMMM", locale=lang))
    if reason.startswith("public holiday: "):
        return t["holiday"].format(name=reason.removeprefix("public holiday: "))
    return reason


def problem_words(line: str, lang: str, zone: str) -> str:
    t = TEXTS[lang]
    for pattern, key in _PROBLEMS:
        if m := pattern.fullmatch(line):
            v = m.groupdict()
            when = v.get("when")
            return t[key].format(
                why=v.get("why"),
                n=v.get("n"),
                first=t["first"].format(why=v["first"]) if v.get("first") else "",
                when=t["from"].format(when=moment(when, lang, zone)) if when else "",
            )
    return line


def run_lines(run: dict[str, Any] | None, lang: str, zone: str) -> list[str]:
    t = TEXTS[lang]
    if run is None:
        return [t["never"]]
    outcome = t[run["outcome"] or "unfinished"]
    when = moment(run["started_at"], lang, zone)
    lines = [
        t["run"].format(when=when, trigger=t.get(run["trigger"], run["trigger"]), outcome=outcome)
    ]
    summary, _, problems = (run["summary"] or "").partition(" — ")
    parts = dict(p.strip().split(" ", 1)[::-1] for p in summary.split(",") if " " in p.strip())
    did = [t[key].format(n=parts[text]) for text, key in _COUNTS if parts.get(text, "0") != "0"]
    lines.append(t["did"].format(what=", ".join(did) or t["idle"]))
    lines += [t["why"].format(why=problem_words(p, lang, zone)) for p in problems.split("; ") if p]
    return lines
