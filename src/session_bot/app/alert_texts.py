"""The words of the organiser's alerts, German or English: held sessions, failed runs, Zoom
drift, mailings that cannot go out, changes waiting for review. Pure: text in, text out."""

from __future__ import annotations

import datetime as dt

from session_bot.core.plan import Occurrence
from session_bot.core.review import PendingChange

_WEEKDAYS = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "de": (
        "Januar", "Februar", "März", "April", "Mai", "Juni",
        "Juli", "August", "September", "Oktober", "November", "Dezember",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip


def _long_date(day: dt.date, lang: str) -> str:
    wd, month = _WEEKDAYS[lang][day.weekday()], _MONTHS[lang][day.month - 1]
    return (
        f"{wd}, {day.day}. {month} {day.year}"
        if lang == "de"
        else f"{wd}, {day.day} {month} {day.year}"
    )


def _moment(t: dt.datetime, lang: str) -> str:
    suffix = " Uhr" if lang == "de" else ""
    return f"{_long_date(t.date(), lang)}, {t:%H:%M}{suffix} ({t.tzname()})"


def held_text(
    occ: Occurrence, plan_source: str, lang: str, console_url: str | None = None
) -> tuple[str, str]:
    """Subject and body of the alert about a session held for want of a topic; with
    ``console_url`` (the plan lives in the database) the way there is the console."""
    zone = occ.series.zone
    start, inv = occ.start.astimezone(zone), occ.invitation_at.astimezone(zone)
    day = occ.date.isoformat()
    plan_file = plan_source or "plan.yaml"
    if console_url is not None:
        return _held_in_console(occ, lang, f"{console_url}sessions/{day}/edit", start, inv)
    if lang == "de":
        subject = f"session-bot: Einladung zum {occ.date:%d.%m.%Y} angehalten – Thema fehlt"
        body = f"""Hallo {occ.series.organiser.name},

die Einladung zur Sitzung „{occ.series.title}“ am {_moment(start, lang)}
ist seit {_moment(inv, lang)} fällig. Im Plan steht für diesen Tag aber noch
kein Thema, deshalb sind weder Meeting noch Einladung rausgegangen.

So geht es weiter:
  1. In der Plandatei {plan_file} unter `sessions:` beim Datum `{day}:`
     ein `topic:` eintragen (gern auch `intro:` und `speakers:`).
  2. `session-bot check` aufrufen.
Beim nächsten Lauf (spätestens in einer Stunde) werden Meeting und Einladung
dann angelegt und verschickt.

Soll die Sitzung ausfallen, tragen Sie dort `cancelled: true` mit `reason: …`
ein oder nehmen das Datum unter `exceptions:` auf.

Diese Nachricht kommt höchstens einmal am Tag, solange das Thema fehlt.
"""
    else:
        subject = f"session-bot: invitation for {day} on hold – no topic"
        body = f"""Hello {occ.series.organiser.name},

the invitation to "{occ.series.title}" on {_moment(start, lang)}
has been due since {_moment(inv, lang)}, but the plan has no topic for that
day yet, so neither the meeting nor the invitation went out.

What to do:
  1. In the plan file {plan_file}, under `sessions:`, give the date `{day}:`
     a `topic:` (and ideally `intro:` and `speakers:`).
  2. Run `session-bot check`.
The next run (within the hour) creates the meeting and sends the invitation.

To drop the session instead, add `cancelled: true` with `reason: …` there,
or list the date under `exceptions:`.

You get this message at most once a day while the topic is missing.
"""
    return subject, body


def _held_in_console(
    occ: Occurrence, lang: str, edit_url: str, start: dt.datetime, inv: dt.datetime
) -> tuple[str, str]:
    if lang == "de":
        return (
            f"session-bot: Einladung zum {occ.date:%d.%m.%Y} angehalten – Thema fehlt",
            f"""Hallo {occ.series.organiser.name},

die Einladung zur Sitzung „{occ.series.title}“ am {_moment(start, lang)}
ist seit {_moment(inv, lang)} fällig. Im Plan steht für diesen Tag aber noch
kein Thema, deshalb sind weder Meeting noch Einladung rausgegangen.

Tragen Sie Thema und Impulsvorträge in der Konsole ein:
  {edit_url}
Gleich nach dem Speichern werden Meeting und Einladung angelegt und verschickt.
Soll die Sitzung ausfallen, sagen Sie sie auf derselben Seite mit einem Grund ab.

Diese Nachricht kommt höchstens einmal am Tag, solange das Thema fehlt.
""",
        )
    return (
        f"session-bot: invitation for {occ.date.isoformat()} on hold – no topic",
        f"""Hello {occ.series.organiser.name},

the invitation to "{occ.series.title}" on {_moment(start, lang)}
has been due since {_moment(inv, lang)}, but the plan has no topic for that
day yet, so neither the meeting nor the invitation went out.

Enter the topic and speakers in the console:
  {edit_url}
The meeting and the invitation follow right after you save. To drop the
session, cancel it with a reason on the same page.

You get this message at most once a day while the topic is missing.
""",
    )


def run_failed_text(error: str, lang: str) -> tuple[str, str]:
    if lang == "de":
        return (
            "session-bot: ein Lauf ist fehlgeschlagen",
            f"""Hallo,

ein Lauf von session-bot ist mit diesem Fehler abgebrochen:

  {error}

session-bot versucht es stündlich erneut; bis der Fehler behoben ist, gehen
keine Meetings oder Einladungen raus. `session-bot status` zeigt den Stand,
`session-bot check` prüft Einstellungen und Plan.

Diese Nachricht kommt höchstens einmal am Tag.
""",
        )
    return (
        "session-bot: a run failed",
        f"""Hello,

a session-bot run stopped with this error:

  {error}

session-bot retries every hour; until the error is fixed no meetings or
invitations go out. `session-bot status` shows the state, `session-bot check`
validates settings and plan.

You get this message at most once a day.
""",
    )


def zoom_changed_text(
    occ: Occurrence, display_id: str, found: tuple[dt.datetime, int, str], lang: str
) -> tuple[str, str]:
    """The alert about a meeting somebody changed in Zoom (not in the plan) and that session-bot
    set back; ``found`` is (start, minutes, topic) as it was in Zoom."""
    zone = occ.series.zone
    start, minutes, topic = found
    was, plan_start = (
        _moment(start.astimezone(zone), lang),
        _moment(occ.start.astimezone(zone), lang),
    )
    if lang == "de":
        return (
            f"Zoom-Meeting für {occ.key} wurde in Zoom geändert",
            f"""Hallo {occ.series.organiser.name},

das Zoom-Meeting {display_id} der Sitzung „{occ.series.title}“ wurde direkt in
Zoom geändert und wich vom Plan ab:

  in Zoom:  {was}, {minutes} Minuten, „{topic}“
  im Plan:  {plan_start}, {occ.duration} Minuten

session-bot hat das Meeting wieder so eingestellt, wie der Plan es sagt; die
Zugangsdaten bleiben gleich, die Abonnent:innen erhalten keine Nachricht.

Soll sich der Termin wirklich ändern, tragen Sie das bitte in der Plandatei ein
(nicht in Zoom): dann folgt das Meeting, und alle Eingeladenen erfahren es.
""",
        )
    return (
        f"Zoom meeting for {occ.key} was changed in Zoom",
        f"""Hello {occ.series.organiser.name},

the Zoom meeting {display_id} of "{occ.series.title}" was changed directly in
Zoom and no longer matched the plan:

  in Zoom:  {was}, {minutes} minutes, "{topic}"
  in plan:  {plan_start}, {occ.duration} minutes

session-bot set the meeting back to what the plan says; the join details stay the
same and subscribers are not told anything.

If the session really changes, please change it in the plan file (not in Zoom):
the meeting then follows, and everyone invited hears about it.
""",
    )


def zoom_deleted_text(occ: Occurrence, display_id: str, lang: str) -> tuple[str, str]:
    """The alert about a meeting somebody deleted in Zoom, which session-bot made anew."""
    when = _moment(occ.start.astimezone(occ.series.zone), lang)
    if lang == "de":
        return (
            f"Zoom-Meeting für {occ.key} wurde in Zoom gelöscht",
            f"""Hallo {occ.series.organiser.name},

das Zoom-Meeting {display_id} der Sitzung „{occ.series.title}“ am {when}
gibt es in Zoom nicht mehr. session-bot hat ein neues Meeting angelegt, wie der
Plan es sagt. Wer schon eingeladen ist, erhält die neuen Zugangsdaten per E-Mail;
alle anderen finden sie in ihrer Einladung.

Soll die Sitzung ausfallen, tragen Sie in der Plandatei beim Datum
`cancelled: true` mit `reason: …` ein – dann wird das Meeting gelöscht und die
Eingeladenen erhalten eine Absage.
""",
        )
    return (
        f"Zoom meeting for {occ.key} was deleted in Zoom",
        f"""Hello {occ.series.organiser.name},

the Zoom meeting {display_id} of "{occ.series.title}" on {when}
no longer exists in Zoom. session-bot created a new meeting as the plan says.
Whoever is already invited gets the new join details by e-mail; everyone else
finds them in their invitation.

To drop the session, give its date `cancelled: true` with `reason: …` in the plan
file: the meeting is then deleted and everyone invited gets a cancellation.
""",
    )


def stuck_text(why: str, lang: str) -> tuple[str, str]:
    """The alert about a mailing that cannot go out (the runner's, once per reason)."""
    if lang == "de":
        return (
            "Eine Aussendung konnte nicht verschickt werden",
            f"""Hallo,

session-bot konnte eine Aussendung nicht verschicken:

  {why}

Die übrigen Aussendungen gehen weiter hinaus. Die Empfänger:innen dieser
Aussendung bekommen sie, sobald das Problem behoben ist; `session-bot status`
zeigt sie an.
""",
        )
    return (
        "A mailing could not be sent",
        f"""Hello,

session-bot could not send a mailing:

  {why}

The other mailings go on. The recipients of this one get it as soon as the
problem is fixed; `session-bot status` shows it.
""",
    )


def pending_text(change: PendingChange, lang: str) -> tuple[str, str]:
    """The alert about a change still waiting for the organiser close to its session."""
    occ = change.occurrence
    when = _moment(occ.start.astimezone(occ.series.zone), lang)
    day = occ.date.isoformat()
    if lang == "de":
        what = "Absage" if change.kind == "cancellation" else "Änderungsmitteilung"
        return (
            f"{what} für den {occ.date:%d.%m.%Y} wartet noch auf Sie",
            f"""Hallo {occ.series.organiser.name},

die {what} für „{occ.series.title}“ am {when} ist noch nicht
verschickt: die Abonnent:innen kennen noch den alten Stand. Bitte senden Sie sie
in der Konsole (Seite „Änderungen“) oder mit `session-bot updates send {day}` –
oder verwerfen Sie die Änderung, wenn sie keine Mail wert ist.

Die Erinnerung geht zur geplanten Zeit mit dem aktuellen Stand des Plans hinaus.
""",
        )
    what = "cancellation" if change.kind == "cancellation" else "update"
    return (
        f"The {what} for {day} is still waiting for you",
        f"""Hello {occ.series.organiser.name},

the {what} for "{occ.series.title}" on {when} has not been sent: subscribers
still have the old details. Please send it in the console ("Changes") or with
`session-bot updates send {day}` — or dismiss the change if it is not worth a mail.

The reminder goes out at its time with what the plan says now.
""",
    )
