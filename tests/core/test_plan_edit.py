"""Editing a plan's text as the console does: what is not edited stays as it was written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib

from session_bot.core.plan import parse_plan
from session_bot.core.plan.edit import MaterialFields, PlanDocument, SpeakerFields
from tests.conftest import EXAMPLE_PLAN

TEXT = EXAMPLE_PLAN.read_text(encoding="utf-8")
MARCH = dt.date(2025, 3, 26)


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_saving_unchanged_fields_writes_the_file_back_byte_for_byte() -> None:
    doc = PlanDocument(TEXT)
    for day in (dt.date(2025, 2, 26), MARCH, dt.date(2025, 5, 28)):
        doc.set_session("willkommen", day, doc.session_fields("willkommen", day))
    doc.set_series("willkommen", doc.series_fields("willkommen"))
    assert doc.dump() == TEXT  # comments, quotes, folded paragraphs all kept


def test_one_speaker_fixed_changes_one_line_and_keeps_the_comments() -> None:
    doc = PlanDocument(TEXT)
    fields = doc.session_fields("willkommen", MARCH)
    fixed = (dataclasses.replace(fields.speakers[0], role="Leiterin Integration"),)
    doc.set_session(
        "willkommen", MARCH, dataclasses.replace(fields, speakers=fixed + fields.speakers[1:])
    )
    after = doc.dump()
    assert changed_lines(TEXT, after) == [
        "-            role: Leiterin Integrationsmanagement",
        "+            role: Leiterin Integration",
    ]
    assert "# One entry per session, keyed by its date." in after
    assert parse_plan(after).series[0].sessions[MARCH].speakers[0].role == "Leiterin Integration"


def test_a_new_session_lands_in_date_order_with_its_texts() -> None:
    doc = PlanDocument(TEXT)
    day = dt.date(2025, 4, 9)  # between March and April, off the rule: an extra session
    doc.set_session(
        "willkommen",
        day,
        dataclasses.replace(
            doc.session_fields("willkommen", day),
            topic="Sprachkurse vor Ort:\nwas wirkt",
            intro=("Erster Absatz.", "Zweiter Absatz."),
            speakers=(SpeakerFields("Aylin Kaya", "Referentin", "Stadt Halle"),),
            topic_en="Local language courses",
            extra=True,
            materials=(MaterialFields("Folien", "https://example.org/f.pdf", "slides"),),
        ),
    )
    after = doc.dump()
    keys = [line.strip() for line in after.splitlines() if line.startswith("      2025-")]
    assert keys == ["2025-02-26:", "2025-03-26:", "2025-04-09:", "2025-04-30:", "2025-05-28:"]
    session = parse_plan(after).series[0].sessions[day]
    assert session.topic_lines == ["Sprachkurse vor Ort:", "was wirkt"]
    assert session.intro == ("Erster Absatz.", "Zweiter Absatz.")
    assert session.translations["en"].topic == "Local language courses"
    assert session.materials[0].kind == "slides" and session.extra


def test_cancelling_writes_the_reason_and_taking_it_back_removes_both() -> None:
    doc = PlanDocument(TEXT)
    fields = doc.session_fields("willkommen", MARCH)
    doc.set_session(
        "willkommen",
        MARCH,
        dataclasses.replace(
            fields,
            cancelled=True,
            reason="Die Referentin ist erkrankt.",
            reason_en="The speaker is ill.",
        ),
    )
    cancelled = parse_plan(doc.dump()).series[0].sessions[MARCH]
    assert cancelled.cancelled and cancelled.reason == "Die Referentin ist erkrankt."
    assert cancelled.translations["en"].reason == "The speaker is ill."
    doc.set_session("willkommen", MARCH, fields)
    assert doc.dump() == TEXT


def test_series_texts_and_lead_times() -> None:
    doc = PlanDocument(TEXT)
    fields = doc.series_fields("willkommen")
    assert fields.invitation_days == 14 and fields.updates == "review"
    doc.set_series(
        "willkommen",
        dataclasses.replace(
            fields,
            invitation_days=10,
            updates="automatic",
            signature="Viele Grüße\nKristina Neumann",
        ),
    )
    series = parse_plan(doc.dump()).series[0]
    assert series.lead.invitation_days == 10 and series.updates == "automatic"
    assert series.signature == "Viele Grüße\nKristina Neumann\n"


def test_values_yaml_would_misread_are_quoted() -> None:
    doc = PlanDocument(TEXT)
    fields = doc.session_fields("willkommen", MARCH)
    doc.set_session(
        "willkommen",
        MARCH,
        dataclasses.replace(
            fields,
            start="13:00",  # YAML 1.1 reads a bare 13:00 as the number 780
            speakers=(SpeakerFields("Yes", "Leitung: Integration", "2025"),),
        ),
    )
    session = parse_plan(doc.dump()).series[0].sessions[MARCH]
    assert session.start == "13:00"
    assert session.speakers[0].model_dump() == {
        "name": "Yes",
        "role": "Leitung: Integration",
        "organisation": "2025",
    }
