"""Plan errors in the organiser's words (issue 19): German, what to write instead, file:line,
and every problem at once; a session date off the series' rule is refused unless `extra: true`."""

from __future__ import annotations

import datetime as dt

import pytest

from session_bot.core.errors import PlanError
from session_bot.core.plan import occurrences, parse_plan
from session_bot.core.plan.problems import PlanProblems

HEAD = [
    "series:",
    "  - id: willkommen",
    '    title: "Willkommen"',
    '    rrule: "FREQ=MONTHLY;BYDAY=-1WE"',
    "    starts_on: 2025-02-01",
    '    start: "12:30"',
    "    organiser: {name: Org, email: org@example.org}",
]


def text(*lines: str, **replace: str) -> str:
    head = [
        f"    {k}: {replace[k]}" if (k := ln.strip().split(":")[0]) in replace else ln
        for ln in HEAD
    ]
    return "\n".join([*head, *lines]) + "\n"


def refused(plan: str) -> PlanProblems:
    with pytest.raises(PlanError) as info:
        parse_plan(plan, "plan.yaml")
    assert isinstance(info.value, PlanProblems)
    return info.value


def only(plan: str) -> str:
    err = refused(plan)
    assert len(err.problems) == 1, str(err)
    return str(err)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "12.30",
            "Startzeit „12.30“: bitte als Uhrzeit wie „12:30“ schreiben (in Anführungszeichen)",
        ),
        (
            "12:30",
            "Startzeit „12:30“: bitte als Uhrzeit wie „12:30“ schreiben (in Anführungszeichen)",
        ),
        ('"9:30"', "Startzeit „9:30“: bitte als Uhrzeit wie „09:30“ schreiben"),
        ('"25:30"', "Startzeit „25:30“: diese Uhrzeit gibt es nicht; Stunden 00–23, Minuten 00–59"),
        ('"mittags"', "Startzeit „mittags“: bitte als Uhrzeit wie „12:30“ schreiben"),
    ],
)
def test_a_start_time_says_how_to_write_it(value: str, expected: str) -> None:
    message = only(text(start=value))
    assert message.startswith("plan.yaml:6: series[willkommen].start: ")
    assert expected in message


def test_a_duration_in_words_asks_for_minutes() -> None:
    message = only(text("    duration: eine Stunde"))
    assert message == (
        "plan.yaml:8: series[willkommen].duration: Dauer „eine Stunde“: bitte eine Zahl von "
        "Minuten, z. B. 60"
    )
    assert "Dauer „3“: mindestens 5 Minuten" in only(text("    duration: 3"))
    assert "höchstens 1440 Minuten (24 Stunden)" in only(text("    duration: 2000"))


def test_a_dedented_speakers_key_is_explained_at_its_line() -> None:
    message = only(
        text(
            "    sessions:",
            "      2025-03-26:",
            "        topic: Arbeit",
            "      speakers:",
            "        - name: Anna",
        )
    )
    assert message.startswith("plan.yaml:11: series[willkommen].sessions.speakers: ")
    assert "erwartet wird das Datum eines Termins wie 2025-03-26" in message
    assert "`speakers:` weiter eingerückt werden, unter das Datum seines Termins" in message


def test_an_unknown_field_suggests_the_closest_known_one() -> None:
    message = only(text("    sessions:", "      2025-03-26:", "        topc: Arbeit"))
    assert message == (
        "plan.yaml:10: series[willkommen].sessions.2025-03-26.topc: unbekanntes Feld „topc“ – "
        "meinten Sie „topic“?"
    )
    # The misspelt required field is not also reported as missing.
    assert only(text(title='"x"').replace("title:", "titl:")).endswith(
        "unbekanntes Feld „titl“ – meinten Sie „title“?"
    )


@pytest.mark.parametrize(
    ("plan", "line", "field", "words"),
    [
        (text().replace('    title: "Willkommen"\n', ""), 2, "series[willkommen].title",
         "Titel fehlt: bitte `title: …` ergänzen"),
        (text("    sessions:", "      2025-03-26: {speakers: Anna}"), 9,
         "series[willkommen].sessions.2025-03-26.speakers", "Referierende: bitte als Liste"),
        (text("    sessions:", "      2025-03-26: {speakers: [Anna]}"), 9,
         "series[willkommen].sessions.2025-03-26.speakers[0]", "nicht nur „Anna“"),
        (text("    sessions:", "      2025-03-26: {intro: {a: 1}}"), 9,
         "series[willkommen].sessions.2025-03-26.intro", "Einleitung: bitte als Text oder als Liste"),
        (text().replace("org@example.org", "org.example.org"), 7,
         "series[willkommen].organiser.email", "E-Mail-Adresse „org.example.org“: keine gültige"),
        (text("    timezone: Europe/Berlinn"), 8, "series[willkommen].timezone",
         "unbekannte Zeitzone „Europe/Berlinn“ – meinten Sie „Europe/Berlin“?"),
        (text("    language: fr"), 8, "series[willkommen].language",
         "Sprache „fr“: bitte „de“ (Deutsch) oder „en“ (Englisch)"),
        (text("    sessions:", "      2025-03-26: {translations: {fr: {topic: x}}}"), 9,
         "series[willkommen].sessions.2025-03-26.translations.fr", "bitte „de“ (Deutsch) oder"),
        (text("    sessions:", "      2025-03-26: {cancelled: true}"), 9,
         "series[willkommen].sessions.2025-03-26", "ein abgesagter Termin braucht einen Grund"),
        (text(starts_on="1. Februar"), 5, "series[willkommen].starts_on",
         "bitte als Datum wie 2025-03-26 schreiben"),
        (text("    breaks: [13]"), 8, "series[willkommen].breaks", "Monatszahlen von 1 bis 12"),
        (text("    lead: {reminder: vielleicht}"), 8, "series[willkommen].lead.reminder",
         "bitte `true` (ja) oder `false` (nein)"),
    ],
)  # fmt: skip
def test_each_problem_in_german_with_line_and_field(
    plan: str, line: int, field: str, words: str
) -> None:
    err = refused(plan)
    assert (err.file, err.line, err.field) == ("plan.yaml", line, field), str(err)
    assert words in err.message
    assert str(err).startswith(f"plan.yaml:{line}: {field}: ")


def test_every_problem_is_listed_at_once_each_with_its_line() -> None:
    err = refused(
        text(
            "    duration: eine Stunde",
            "    timezone: Europe/Berlinn",
            "    sessions:",
            "      2025-03-26:",
            "        topc: Arbeit",
            start="12.30",
        )
    )
    lines = str(err).splitlines()
    assert [ln.split(": ")[0] for ln in lines] == [
        "plan.yaml:6",
        "plan.yaml:8",
        "plan.yaml:9",
        "plan.yaml:12",
    ]
    assert [p.field for p in err.problems] == [
        "series[willkommen].start",
        "series[willkommen].duration",
        "series[willkommen].timezone",
        "series[willkommen].sessions.2025-03-26.topc",
    ]
    # The first problem's attributes are the error's, as before.
    assert (err.line, err.field) == (6, "series[willkommen].start")
    assert err.message.startswith("Startzeit „12.30“")
    assert lines[0] == str(err.problems[0])


def test_a_date_off_the_rule_names_the_rule_date() -> None:
    message = only(text("    sessions:", "      2025-03-27: {topic: Arbeit}"))
    assert message == (
        "plan.yaml:9: series[willkommen].sessions.2025-03-27: 2025-03-27 ist kein Termin der Reihe "
        "(die Regel ergibt Mittwoch, 26. März 2025). Ist der 26. gemeint? Sonst als Zusatztermin "
        "markieren: `extra: true`."
    )


def test_between_two_rule_dates_both_are_named() -> None:
    # 14 May 2025 is 14 days after 30 April and 14 days before 28 May.
    message = only(text("    sessions:", "      2025-05-14: {topic: Arbeit}"))
    assert "(die Regel ergibt Mittwoch, 30. April 2025 und Mittwoch, 28. Mai 2025)" in message
    assert "Ist der 30. April oder der 28. Mai gemeint?" in message


def test_an_extra_session_is_held_beside_the_rule_dates() -> None:
    plan = parse_plan(
        text("    sessions:", "      2025-03-27: {topic: Zusatz, extra: true}"), "plan.yaml"
    )
    series = plan.series[0]
    dates = [o.date for o in occurrences(series, dt.date(2025, 3, 1), dt.date(2025, 3, 31))]
    assert dates == [dt.date(2025, 3, 26), dt.date(2025, 3, 27)]


def test_skipped_rule_dates_and_exceptions_count_as_regular() -> None:
    plan = parse_plan(
        text(
            "    breaks: [8]",
            "    exceptions: [2025-12-31, 2025-12-30]",
            "    holidays: {country: DE, subdiv: SN}",
            "    sessions:",
            "      2025-08-27: {topic: Sommer}",  # the rule's date in the break month
            "      2025-12-31: {topic: Silvester}",  # the rule's date, an exception
            "      2025-12-30: {topic: Ausnahme}",  # listed in exceptions
        ),
        "plan.yaml",
    )
    assert len(plan.series[0].sessions) == 3


def test_a_session_before_the_series_starts_is_refused() -> None:
    message = only(text("    sessions:", "      2025-01-29: {topic: Früh, extra: true}"))
    assert "2025-01-29 liegt vor dem Beginn der Reihe (Samstag, 1. Februar 2025" in message


def test_other_series_are_still_checked_when_one_is_invalid() -> None:
    second = [
        "  - id: zwei",
        '    title: "Zwei"',
        '    rrule: "FREQ=MONTHLY;BYDAY=-1WE"',
        "    starts_on: 2025-02-01",
        '    start: "12:30"',
        "    organiser: {name: Org, email: org@example.org}",
        "    sessions:",
        "      2025-03-27: {topic: Arbeit}",
    ]
    err = refused(text("    duration: eine Stunde", *second))
    assert [p.field for p in err.problems] == [
        "series[willkommen].duration",
        "series[zwei].sessions.2025-03-27",
    ]
