"""Shared builders for the invitation tests (plan variants, meetings, renderer). No tests here."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

from session_bot.adapters.render.invitations import MailConfig, Recipient, Renderer
from session_bot.adapters.zoom import DialIn, Meeting
from session_bot.core.plan import Occurrence, Plan, find_occurrence, parse_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "willkommen.yaml"
SEED = ROOT / "tests" / "data" / "invitation-2025-02-26.txt"
NOW = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)
SEED_JOIN_URL = "https://bertelsmann-stiftung-de.zoom.us/j/66547677759"

# Sessions right before/after the switches to and from summer time (30 March / 26 October 2025).
DST_SESSIONS = {
    dt.date(2025, 3, 26): dt.datetime(2025, 3, 26, 11, 30, tzinfo=dt.UTC),  # CET, from the rule
    dt.date(2025, 4, 2): dt.datetime(2025, 4, 2, 10, 30, tzinfo=dt.UTC),  # CEST, extra session
    dt.date(2025, 10, 22): dt.datetime(2025, 10, 22, 10, 30, tzinfo=dt.UTC),  # CEST, extra
    dt.date(2025, 10, 29): dt.datetime(2025, 10, 29, 11, 30, tzinfo=dt.UTC),  # CET, from the rule
}


def plan(**series_changes: Any) -> Plan:
    """The example plan plus extra sessions around the DST changes; ``series_changes`` patch it."""
    data = yaml.safe_load(EXAMPLE_PLAN.read_text(encoding="utf-8"))
    series = data["series"][0]
    for day in (dt.date(2025, 4, 2), dt.date(2025, 10, 22)):
        series["sessions"][day] = {
            "topic": f"Zusatztermin am {day.isoformat()}",
            "extra": True,
            "speakers": [{"name": "Ada Beispiel", "role": "Referentin", "organisation": "Testamt"}],
        }
    series.update(series_changes)
    return parse_plan(yaml.safe_dump(data, allow_unicode=True), "test-plan.yaml")


def occurrence(day: dt.date, **series_changes: Any) -> Occurrence:
    return find_occurrence(plan(**series_changes), day)


def meeting(occ: Occurrence, meeting_id: int = 66547677759, passcode: str = "717531") -> Meeting:
    """What the Zoom sandbox hands out for the seed session."""
    join = SEED_JOIN_URL if meeting_id == 66547677759 else f"https://zoom.example/j/{meeting_id}"
    return Meeting(
        id=meeting_id,
        topic=occ.series.title,
        agenda=occ.key,
        start_time=occ.start.astimezone(dt.UTC),
        duration=occ.duration,
        timezone=occ.series.timezone,
        join_url=join,
        password=passcode,
        pstn_password=passcode,
        dial_in=(
            DialIn("DE", "Germany", "Frankfurt", "+49 69 5050 0952", "toll"),
            DialIn("DE", "Germany", "", "+49 800 000 0000", "tollfree"),
        ),
        host_email="host@example.org",
    )


def config(**changes: Any) -> MailConfig:
    values: dict[str, Any] = {
        "public_url": "https://sb.example.org",
        "list_id": "willkommen.sb.example.org",
        "from_name": "Kristina Neumann",
        "from_email": "kristina.neumann@bertelsmann-stiftung.de",
        "reply_to": "kristina.neumann@bertelsmann-stiftung.de",
        "message_id_domain": "sb.example.org",
    }
    values.update(changes)
    return MailConfig(**values)


def renderer(**changes: Any) -> Renderer:
    return Renderer(config(**changes))


def recipient(
    name: str | None = None, email_: str = "anna@example.org", token: str = "tok1"
) -> Recipient:
    return Recipient(
        email=email_,
        name=name,
        language="de",
        unsubscribe_url=f"https://sb.example.org/unsubscribe/{token}",
        unsubscribe_mailto=f"mailto:unsubscribe@sb.example.org?subject=unsubscribe-{token}",
    )


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_part(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_part(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def calendar_part(msg: EmailMessage) -> tuple[EmailMessage, bytes]:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "exactly one calendar part"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return parts[0], payload  # type: ignore[return-value]
