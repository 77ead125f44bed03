"""The documents the Zoom sandbox answers with: users, meeting settings, dial-in numbers, lists and
the invitation text, shaped like Zoom's."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from session_bot.sandbox.zoom_wire import b64url, parse_zulu, zulu

LIST_AGENDA_MAX = 250

# Zoom's published German numbers (the first is the seed invitation's).
DIAL_IN_TABLE: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    "DE": (
        "Germany",
        (
            ("Frankfurt am Main", "+49 69 5050 0952", "toll"),
            ("Frankfurt am Main", "+49 69 5050 0951", "toll"),
            ("Berlin", "+49 30 5679 5800", "toll"),
            ("Frankfurt am Main", "+49 69 3807 9883", "toll"),
            ("", "+49 800 724 3138", "tollfree"),
        ),
    ),
    "AT": ("Austria", (("Wien", "+43 12 535 501", "toll"), ("Wien", "+43 12 535 502", "toll"))),
    "CH": (
        "Switzerland",
        (("Bern", "+41 31 528 0988", "toll"), ("Zürich", "+41 43 210 7042", "toll")),
    ),
    "US": (
        "US",
        (("New York", "+1 646 558 8656", "toll"), ("San Jose", "+1 669 900 6833", "toll")),
    ),
}
_PREFIX_COUNTRY = {"+49": "DE", "+43": "AT", "+41": "CH", "+1": "US"}


def user_id(email: str) -> str:
    return b64url(hashlib.sha256(email.lower().encode()).digest())[:22]


def user_json(email: str, timezone: str, now: dt.datetime) -> dict[str, Any]:
    local = email.split("@", 1)[0]
    first, _, last = local.replace("_", ".").partition(".")
    uid = user_id(email)
    pmi = int(hashlib.sha256(email.encode()).hexdigest(), 16) % 9_000_000_000 + 1_000_000_000
    return {
        "id": uid,
        "first_name": first.capitalize(),
        "last_name": last.capitalize(),
        "display_name": f"{first.capitalize()} {last.capitalize()}".strip(),
        "email": email,
        "type": 2,
        "role_name": "Admin",
        "pmi": pmi,
        "use_pmi": False,
        "personal_meeting_url": f"https://zoom.us/j/{pmi}",
        "timezone": timezone,
        "verified": 1,
        "dept": "",
        "created_at": "2020-01-06T09:00:00Z",
        "user_created_at": "2020-01-06T09:00:00Z",
        "last_login_time": zulu(now - dt.timedelta(days=1)),
        "last_client_version": "6.3.0.44805(mac)",
        "pic_url": "",
        "language": "de-DE",
        "phone_number": "",
        "status": "active",
        "role_id": "1",
        "account_id": "sandbox-account",
        "account_number": 10009239,
        "cluster": "eu01",
        "jid": f"{uid.lower()}@xmpp.zoom.us",
        "group_ids": [],
        "im_group_ids": [],
        "login_types": [100],
    }


def default_settings() -> dict[str, Any]:
    return {
        "host_video": False,
        "participant_video": False,
        "cn_meeting": False,
        "in_meeting": False,
        "join_before_host": False,
        "jbh_time": 0,
        "mute_upon_entry": False,
        "watermark": False,
        "use_pmi": False,
        "approval_type": 2,
        "audio": "both",
        "auto_recording": "none",
        "enforce_login": False,
        "enforce_login_domains": "",
        "alternative_hosts": "",
        "alternative_hosts_email_notification": True,
        "close_registration": False,
        "show_share_button": False,
        "allow_multiple_devices": False,
        "registrants_confirmation_email": True,
        "waiting_room": False,
        "request_permission_to_unmute_participants": False,
        "global_dial_in_countries": [],
        "global_dial_in_numbers": [],
        "registrants_email_notification": True,
        "meeting_authentication": False,
        "encryption_type": "enhanced_encryption",
        "approved_or_denied_countries_or_regions": {"enable": False},
        "breakout_room": {"enable": False},
        "internal_meeting": False,
        "participant_focused_meeting": False,
        "push_change_to_calendar": False,
        "email_notification": True,
        "host_save_video_order": False,
        "device_testing": False,
        "focus_mode": False,
        "private_meeting": False,
        "show_join_info": False,
    }


def dial_in_numbers(countries: Sequence[str], first: str | None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    if first:
        country = next((c for p, c in _PREFIX_COUNTRY.items() if first.startswith(p)), "")
        name, table = DIAL_IN_TABLE.get(country, ("", ()))
        city = next((city for city, num, _ in table if digits(num) == digits(first)), "")
        out.append(
            {
                "country": country,
                "country_name": name,
                "city": city,
                "number": first,
                "type": "toll",
            }
        )
        seen.add(digits(first))
    for c in countries:
        name, table = DIAL_IN_TABLE.get(c.upper(), ("", ()))
        for city, number, kind in table:
            if digits(number) in seen:
                continue
            seen.add(digits(number))
            out.append(
                {
                    "country": c.upper(),
                    "country_name": name,
                    "city": city,
                    "number": number,
                    "type": kind,
                }
            )
    return out


def digits(number: str) -> str:
    return re.sub(r"[^\d+]", "", number)


def list_item(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "uuid": m["uuid"],
        "id": m["id"],
        "host_id": m["host_id"],
        "topic": m["topic"],
        "type": m["type"],
        "start_time": m["start_time"],
        "duration": m["duration"],
        "timezone": m["timezone"],
        "agenda": str(m.get("agenda", ""))[:LIST_AGENDA_MAX],
        "created_at": m["created_at"],
        "join_url": m["join_url"],
    }


def _group(mid: int) -> str:
    s = str(mid)
    if len(s) == 11:
        return f"{s[:3]} {s[3:7]} {s[7:]}"
    if len(s) in (9, 10):
        return f"{s[:3]} {s[3:6]} {s[6:]}"
    return s


def invitation(m: dict[str, Any]) -> str:
    """Zoom's English invitation template ([M] example), lines ending in CRLF."""
    start = parse_zulu(m["start_time"]).astimezone(ZoneInfo(m["timezone"]))
    numbers = m["settings"].get("global_dial_in_numbers", [])
    lines = [
        f"{m['host_email']} is inviting you to a scheduled Zoom meeting.",
        "",
        f"Topic: {m['topic']}",
        f"Time: {start:%b %d, %Y %I:%M %p} {m['timezone']}",
        "",
        "Join Zoom Meeting",
        m["join_url"],
        "",
        f"Meeting ID: {_group(m['id'])}",
        f"Passcode: {m['password']}",
        "",
        "---",
        "",
        "One tap mobile",
    ]
    for n in numbers[:2]:
        label = f"{n['country_name']} ({n['city']})" if n["city"] else n["country_name"]
        lines.append(f"{digits(n['number'])},,{m['id']}#,,,,*{m['pstn_password']}# {label}")
    lines += ["", "---", "", "Dial by your location"]
    for n in numbers:
        lines.append(f"• {n['number']} {n['country_name']}".rstrip())
    lines += [
        "",
        f"Meeting ID: {_group(m['id'])}",
        f"Passcode: {m['pstn_password']}",
        "",
        f"Find your local number: https://{m['join_url'].split('/')[2]}/u/sandbox",
        "",
    ]
    return "\r\n".join(lines)
