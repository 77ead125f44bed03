"""The Zoom sandbox's users and meetings API: the operations behind the ``/v2`` routes.

Every operation runs with the state lock held (``ZoomApi.dispatch`` takes it) and either returns
its ``Reply`` or raises one.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

from session_bot.sandbox.zoom_documents import (
    default_settings,
    dial_in_numbers,
    invitation,
    list_item,
    user_id,
    user_json,
)
from session_bot.sandbox.zoom_model import QueuedMeeting, SandboxConfig, SandboxState
from session_bot.sandbox.zoom_schema import json_body, parse_start, validate
from session_bot.sandbox.zoom_wire import UTC, Reply, invalid, parse_zulu, zoom_error, zulu

PAGE_TOKEN_TTL = dt.timedelta(minutes=15)
LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")


class Meetings:
    """Users (looked up, never stored) and meetings (created, read, changed, listed, deleted)."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state

    # --- users ---------------------------------------------------------------------------------

    def user(self, raw_id: str) -> dict[str, Any]:
        users = self.config.users
        key = raw_id.strip().lower()
        if key == "me":
            key = users[0] if users else "host@example.org"
        if users is not None:
            by_id = {user_id(u): u for u in users}
            email = key if key in users else by_id.get(raw_id.strip())
        else:
            email = key if "@" in key else self._email_for_id(raw_id.strip())
        if not email:
            raise zoom_error(404, 1001, f"User does not exist: {raw_id}.")
        return user_json(email, self.config.default_timezone, self.config.clock())

    def _email_for_id(self, uid: str) -> str | None:
        for m in self.state.meetings.values():
            if m.get("host_id") == uid:
                return str(m.get("host_email"))
        return None

    def op_user(self, raw_id: str, **_: Any) -> Reply:
        return Reply(200, self.user(raw_id))

    # --- meetings ------------------------------------------------------------------------------

    def op_create(self, raw_id: str, *, body: bytes, headers: dict[str, str], **_: Any) -> Reply:
        user = self.user(raw_id)
        data = json_body(body, headers)
        validate(data, creating=True)
        self._count_daily(user["email"])
        now = self.config.clock()
        tz = data.get("timezone") or user["timezone"]
        mtype = int(data.get("type", 2))
        start = now
        if mtype != 1 and data.get("start_time"):
            start = max(parse_start(str(data["start_time"]), tz), now)  # past -> now
        state, join_host = self.state, self.config.join_host
        queued = state.queue.pop(0) if state.queue else None
        mid = queued.id if queued else state.new_id()
        if mid in state.meetings:
            raise zoom_error(400, 3000, f"Meeting {mid} already exists.")  # sandbox-only guard
        password = queued.password if queued else str(data.get("password") or state.digits(6))
        pstn = (
            queued.pstn_password
            if queued
            else (password if password.isdigit() else state.digits(6))
        )
        encrypted = state.token_text(32)
        join_url = f"https://{join_host}/j/{mid}"
        if self.config.embed_passcode:
            join_url += f"?pwd={encrypted}.1"
        meeting = {
            "uuid": base64.b64encode(state.rng.randbytes(16)).decode(),
            "id": mid,
            "host_id": user["id"],
            "host_email": user["email"],
            "topic": str(data.get("topic", "Zoom Meeting")),
            "type": mtype,
            "status": "waiting",
            "start_time": zulu(start),
            "duration": int(data.get("duration", 60)),
            "timezone": tz,
            "agenda": str(data.get("agenda", "")),
            "created_at": zulu(now),
            "start_url": f"https://{join_host}/s/{mid}?zak={state.token_text(40)}",
            "join_url": join_url,
            "password": password,
            "h323_password": pstn,
            "pstn_password": pstn,
            "encrypted_password": encrypted,
            "settings": self._new_settings(data, queued),
            "pre_schedule": False,
            "creation_source": "open_api",
        }
        state.meetings[mid] = meeting
        state.save()
        return Reply(201, copy.deepcopy(meeting))

    def _new_settings(self, data: dict[str, Any], queued: QueuedMeeting | None) -> dict[str, Any]:
        settings_in = dict(data.get("settings") or {})
        countries = [c.upper() for c in settings_in.get("global_dial_in_countries") or ()] or list(
            self.config.default_dial_in_countries
        )
        settings = default_settings()
        settings.update({k: v for k, v in settings_in.items() if k in settings})
        settings["global_dial_in_countries"] = countries
        settings["global_dial_in_numbers"] = dial_in_numbers(
            countries, queued.dial_in if queued else None
        )
        return settings

    def meeting(self, raw_id: str) -> dict[str, Any]:
        meeting = self.state.meetings.get(int(raw_id)) if raw_id.isdigit() else None
        if meeting is None:
            raise zoom_error(404, 3001, f"Meeting does not exist: {raw_id}.")
        return meeting

    def op_get(self, mid: str, **_: Any) -> Reply:
        return Reply(200, copy.deepcopy(self.meeting(mid)))

    def op_update(self, mid: str, *, body: bytes, headers: dict[str, str], **_: Any) -> Reply:
        meeting = self.meeting(mid)
        data = json_body(body, headers)
        validate(data, creating=False)
        self._count_daily(str(meeting["host_email"]))
        now = self.config.clock()
        tz = str(data.get("timezone") or meeting["timezone"])
        for key in ("topic", "agenda", "duration", "type", "password"):
            if key in data:
                meeting[key] = data[key]
        meeting["timezone"] = tz
        if data.get("start_time"):
            start = parse_start(str(data["start_time"]), tz)
            if start > now:  # a past start_time is ignored ([M])
                meeting["start_time"] = zulu(start)
        if "password" in data:
            pw = str(data["password"])
            meeting["pstn_password"] = meeting["h323_password"] = (
                pw if pw.isdigit() else self.state.digits(6)
            )
        settings_in = data.get("settings") or {}
        settings = meeting["settings"]
        settings.update({k: v for k, v in settings_in.items() if k in settings})
        if "global_dial_in_countries" in settings_in:
            countries = [c.upper() for c in settings_in["global_dial_in_countries"]]
            first = settings["global_dial_in_numbers"][:1]
            keep = first[0]["number"] if first else None
            settings["global_dial_in_countries"] = countries
            settings["global_dial_in_numbers"] = dial_in_numbers(countries, keep)
        self.state.save()
        return Reply(204)

    def op_delete(self, mid: str, **_: Any) -> Reply:
        del self.state.meetings[self.meeting(mid)["id"]]
        self.state.save()
        return Reply(204)

    def op_invitation(self, mid: str, **_: Any) -> Reply:
        m = self.meeting(mid)
        return Reply(200, {"invitation": invitation(m), "sip_links": []})

    def op_list(self, raw_id: str, *, query: dict[str, list[str]], **_: Any) -> Reply:
        user = self.user(raw_id)
        q = {k: v[-1] for k, v in query.items()}
        now = self.config.clock()
        kind, size, offset = self._page(q, now)
        chosen = sorted(
            (
                m
                for m in self.state.meetings.values()
                if m["host_id"] == user["id"] and m["type"] != 1 and _listed(m, kind, now)
            ),
            key=lambda m: (m["start_time"], m["id"]),
        )
        page_items = chosen[offset : offset + size]
        next_token = ""
        if offset + size < len(chosen):
            next_token = self.state.token_text(32)
            self.state.pages[next_token] = {
                "type": kind,
                "page_size": size,
                "offset": offset + size,
                "expires_at": zulu(now + PAGE_TOKEN_TTL),
            }
        return Reply(
            200,
            {
                "page_size": size,
                "total_records": len(chosen),
                "next_page_token": next_token,
                "meetings": [list_item(m) for m in page_items],
            },
        )

    def _page(self, q: dict[str, str], now: dt.datetime) -> tuple[str, int, int]:
        """The listing's type, page size and offset: from a page token, else from the query."""
        token = q.get("next_page_token", "")
        if token:
            page = self.state.pages.get(token)
            if page is None or parse_zulu(page["expires_at"]) <= now:
                # Unverified: Zoom's exact answer to an unknown or expired page token.
                raise zoom_error(400, 300, "The next page token is invalid or expired.")
            return page["type"], page["page_size"], page["offset"]
        kind = q.get("type", "scheduled")
        if kind not in LIST_TYPES:
            raise zoom_error(400, 300, f"Invalid parameter: type ({kind}).")
        try:
            size = int(q.get("page_size", "30"))
        except ValueError:
            raise invalid("page_size") from None
        return kind, min(max(size, 1), 300, self.config.max_page_size), 0

    def _count_daily(self, email: str) -> None:
        key = f"{email.lower()}|{self.config.clock().astimezone(UTC).date().isoformat()}"
        used = self.state.daily.get(key, 0)
        if used >= self.config.daily_limit:
            # As captured (devforum.zoom.us/t/18928): no Retry-After, no X-RateLimit-Type.
            raise zoom_error(
                429,
                429,
                f"You have exceeded the daily rate limit ({self.config.daily_limit}) of Meeting "
                "Create/Update API requests permitted for this particular user. You may resume "
                "these requests at GMT 00:00:00.",
            )
        self.state.daily[key] = used + 1


def _listed(m: dict[str, Any], kind: str, now: dt.datetime) -> bool:
    start = parse_zulu(m["start_time"])
    end = start + dt.timedelta(minutes=int(m["duration"]))
    if kind in ("upcoming", "upcoming_meetings"):
        return end >= now
    if kind == "previous_meetings":
        return end < now
    if kind == "live":
        return m.get("status") == "started"
    # scheduled: everything not yet expired (one-off ids expire 30 days after their date).
    return now <= end + dt.timedelta(days=30)
