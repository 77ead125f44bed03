"""Materials of a session in the plan (issue 17): slides, recordings and documentation as https
links, read and refused in the organiser's words with file:line."""

from __future__ import annotations

import pytest

from session_bot.core.errors import PlanError
from session_bot.core.plan import parse_plan
from session_bot.core.plan.model import Material
from session_bot.core.plan.problems import PlanProblems

HEAD = [
    "series:",
    "  - id: willkommen",
    '    title: "Willkommen"',
    '    rrule: "FREQ=MONTHLY;BYDAY=-1WE"',
    "    starts_on: 2025-02-01",
    '    start: "12:30"',
    "    organiser: {name: Org, email: org@example.org}",
    "    sessions:",
    "      2025-02-26:",
    "        topic: Zusammenarbeit",
]


def text(*lines: str) -> str:
    return "\n".join([*HEAD, *lines]) + "\n"


def only(plan: str) -> str:
    with pytest.raises(PlanError) as info:
        parse_plan(plan, "plan.yaml")
    err = info.value
    assert isinstance(err, PlanProblems)
    assert len(err.problems) == 1, str(err)
    return str(err)


def test_materials_are_read_with_their_kind() -> None:
    plan = parse_plan(
        text(
            "        materials:",
            "          - title: Folien des Impulses",
            "            url: https://beispiel.de/folien.pdf",
            "            kind: slides",
            "          - title: Linkliste",
            "            url: https://beispiel.de/links?x=1#a",
        ),
        "plan.yaml",
    )
    content = next(iter(plan.series[0].sessions.values()))
    assert content.materials == (
        Material(title="Folien des Impulses", url="https://beispiel.de/folien.pdf", kind="slides"),
        Material(title="Linkliste", url="https://beispiel.de/links?x=1#a", kind="other"),
    )


def test_a_session_without_materials_has_none() -> None:
    plan = parse_plan(text(), "plan.yaml")
    assert next(iter(plan.series[0].sessions.values())).materials == ()


def test_an_http_address_is_refused_in_german_at_its_line() -> None:
    message = only(
        text(
            "        materials:",
            "          - title: Folien",
            "            url: http://beispiel.de/folien.pdf",
        )
    )
    assert message == (
        "plan.yaml:13: series[willkommen].sessions.2025-02-26.materials[0].url: Adresse "
        "„http://beispiel.de/folien.pdf“: bitte eine sichere Adresse mit https:// angeben; "
        "http:// ist nicht möglich (meist genügt „https://beispiel.de/folien.pdf“)"
    )


@pytest.mark.parametrize(
    "url", ["beispiel.de/folien.pdf", "ftp://beispiel.de/f", "https://", "https://a b.de/"]
)
def test_other_addresses_ask_for_a_full_https_address(url: str) -> None:
    message = only(
        text("        materials:", "          - title: Folien", f'            url: "{url}"')
    )
    assert message.startswith(
        "plan.yaml:13: series[willkommen].sessions.2025-02-26.materials[0].url:"
    )
    assert "bitte eine vollständige Adresse mit https:// angeben" in message


def test_a_material_needs_a_title() -> None:
    message = only(text("        materials:", "          - url: https://beispiel.de/f.pdf"))
    assert message.startswith("plan.yaml:12: series[willkommen].sessions.2025-02-26.materials[0]")
    assert message.endswith("Titel fehlt: bitte `title: …` ergänzen (Pflichtangabe)")
    blank = only(
        text("        materials:", '          - title: "  "', "            url: https://b.de/f")
    )
    assert "Titel „  “: darf nicht leer sein" in blank


def test_an_unknown_kind_names_the_choices_in_german() -> None:
    message = only(
        text(
            "        materials:",
            "          - title: Mitschnitt",
            "            url: https://beispiel.de/video",
            "            kind: video",
        )
    )
    assert message.startswith("plan.yaml:14: ")
    assert message.endswith(
        "Art „video“: bitte „slides“ (Folien), „recording“ (Aufzeichnung), „documentation“ "
        "(Dokumentation) oder „other“ (sonstiges Material)"
    )


def test_a_bare_link_asks_for_title_and_url() -> None:
    message = only(text("        materials:", "          - https://beispiel.de/folien.pdf"))
    assert message.startswith("plan.yaml:12: ")
    assert "Materialien: jedes bitte mit `- title: …` und darunter `url: https://…`" in message
    assert "nicht nur „https://beispiel.de/folien.pdf“" in message


def test_at_most_twenty_materials() -> None:
    items = [
        line
        for i in range(21)
        for line in (f"          - title: Teil {i}", f"            url: https://b.de/{i}")
    ]
    message = only(text("        materials:", *items))
    assert message.startswith("plan.yaml:11: series[willkommen].sessions.2025-02-26.materials: ")
    assert message.endswith("Materialien: höchstens 20 Einträge (hier 21)")
