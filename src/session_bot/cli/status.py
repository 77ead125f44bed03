"""`session-bot status`: what is planned, what happened, what needs the organiser."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from session_bot import wiring
from session_bot.adapters.db.advisory import instances, is_postgresql
from session_bot.adapters.db.store import Store
from session_bot.app.runner import state_from_store
from session_bot.core.changes import changed_fields
from session_bot.core.plan import Plan
from session_bot.core.timeline import SessionState, due_actions, next_due, upcoming
from session_bot.settings import Settings

HELD_REASON = "no topic in the plan yet: invitation held, the organiser is alerted daily"
_LOCK_TEXT = re.compile(r"pid (?P<pid>\d+)(?: on (?P<host>\S+))?(?: since (?P<since>\S+))?")


def daemon_instances(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """The running `serve` processes: on PostgreSQL every leader and standby connected to the
    database; on SQLite the one holding the daemon lock (empty: no daemon runs)."""
    if is_postgresql(settings.resolved_database_url):
        return [i.as_dict() for i in instances(store.engine)]
    holder = wiring.daemon_lock(settings).holder()
    if holder is None:
        return []
    m = _LOCK_TEXT.match(holder)
    return [
        {
            "role": "leader",
            "host": m["host"] if m else None,
            "pid": int(m["pid"]) if m else None,
            "since": m["since"] if m else None,
        }
    ]


def orphaned_sessions(store: Store, plan: Plan, now: dt.datetime) -> list[str]:
    """Upcoming sessions subscribers were invited to that the plan no longer lists (or lists
    without its topic — a rule date whose entry was deleted).

    Nothing is sent for them automatically: a deleted entry may be a mistake as well as a
    cancellation, so the organiser decides (and `status` keeps saying so until they do).
    """
    listed = {o.key for o in upcoming(now, plan, 400) if o.has_topic or o.cancelled}
    return [
        row.key
        for row in store.sessions.all()
        if row.announced is not None
        and row.cancelled_at is None
        and row.date >= now.date().isoformat()
        and row.key not in listed
    ]


def collect_status(settings: Settings, plan: Plan, now: dt.datetime) -> dict[str, Any]:
    store = wiring.open_store(settings, purpose="look")
    state = state_from_store(store)
    sessions = []
    held: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for occ in upcoming(now, plan, 120):
        st = state.get(occ.key, SessionState())
        row = store.sessions.get(occ.key)
        mailings = store.mailings.of_session(row.id) if row else []
        entry: dict[str, Any] = {
            "key": occ.key,
            "start": occ.start.isoformat(),
            "topic": occ.content.topic_one_line if occ.content else None,
            "skipped": occ.skip_reason,
            "cancelled": occ.cancelled,
            "meeting_id": st.meeting_id,
            "invitation_at": occ.invitation_at.isoformat(),
            "reminder_at": occ.reminder_at.isoformat() if occ.reminder_at else None,
            "mailings": [
                {
                    "kind": m.kind,
                    "sequence": m.sequence,
                    "frozen_at": m.created_at.isoformat(),
                    "finished": m.finished_at is not None,
                    "deliveries": store.mailings.delivery_counts(m.id),
                }
                for m in mailings
            ],
        }
        if row is not None and row.announced is not None:
            # What subscribers were last told, and what the plan says differently since.
            entry["announced"] = {**row.announced, "sequence": row.sequence}
            entry["changed_since"] = changed_fields(row.announced, occ)
        if not occ.skip_reason and not occ.has_topic and not occ.cancelled:
            entry["held"] = now >= occ.invitation_at
        sessions.append(entry)
        if entry.get("held"):
            held.append(
                {
                    "key": occ.key,
                    "start": occ.start.isoformat(),
                    "invitation_due": occ.invitation_at.isoformat(),
                    "reason": HELD_REASON,
                }
            )
        if occ.skip_reason:
            skipped.append(
                {"key": occ.key, "start": occ.start.isoformat(), "reason": occ.skip_reason}
            )
    nd = next_due(now, plan, state)
    last = store.runs.last()
    waiting = []
    for m in store.mailings.open():
        counts = store.mailings.delivery_counts(m.id)
        retry_at, answer = store.mailings.waiting(m.id)
        if not counts.get("pending", 0) + counts.get("sending", 0):
            continue
        waiting.append(
            {
                "mailing": m.id,
                "kind": m.kind,
                "session": m.session_key,
                "owed": counts.get("pending", 0) + counts.get("sending", 0),
                "next_attempt_at": retry_at.isoformat() if retry_at else None,
                "last_answer": answer,
            }
        )
    return {
        "now": now.isoformat(),
        "sessions": sessions,
        "orphaned": orphaned_sessions(store, plan, now),
        "held": held,
        "skipped": skipped,
        "due_now": [a.describe() for a in due_actions(now, plan, state)],
        "waiting": waiting,
        "next_due": nd.isoformat() if nd else None,
        "last_run": {
            k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in last.items()
        }
        if last
        else None,
        "deliveries": store.mailings.delivery_counts(),
        "subscribers": {
            s: store.subscribers.count(s)
            for s in ("pending", "confirmed", "unsubscribed", "bounced")
        },
        "bounced": [
            {
                "email": b.email,
                "hard_bounces": b.hard_bounces,
                "bounced_at": b.bounced_at.isoformat() if b.bounced_at else None,
                "last_response": b.last_response,
            }
            for b in store.subscribers.bounced()
        ],
        "zoom_calls_today": store.counters.zoom_calls_on(now.astimezone(dt.UTC).date()),
        "instances": daemon_instances(settings, store),
    }


def format_status(data: dict[str, Any]) -> str:
    lines = [f"As of {data['now']}"]
    lines.append("")
    lines.append("Upcoming sessions:")
    for s in data["sessions"]:
        if s["skipped"]:
            state = f"skipped ({s['skipped']})"
        elif s["cancelled"]:
            state = "cancelled"
        else:
            kinds = (
                ", ".join(
                    f"{m['kind']} {m['deliveries'].get('sent', 0)} sent" for m in s["mailings"]
                )
                or "nothing sent yet"
            )
            meeting = f"meeting {s['meeting_id']}" if s["meeting_id"] else "no meeting yet"
            state = f"{meeting}; {kinds}"
            if s.get("held"):
                state += "; HELD: no topic in the plan"
            if s.get("changed_since"):
                changed = ", ".join(s["changed_since"])
                state += f"; CHANGED since the last mail ({changed}): an update goes out next run"
        lines.append(f"  {s['start'][:16]}  {s['topic'] or '(no topic yet)'}")
        lines.append(f"      {state}")
    if data.get("orphaned"):
        lines.append("")
        lines.append(
            "Announced but no longer in the plan (mark them `cancelled: true` with a reason):"
        )
        for key in data["orphaned"]:
            lines.append(f"  {key}")
    if data.get("held"):
        lines.append("")
        lines.append("Held (need the organiser):")
        for h in data["held"]:
            lines.append(
                f"  {h['start'][:16]}  {h['key']}: {h['reason']} (due since {h['invitation_due'][:16]})"
            )
    if data.get("skipped"):
        lines.append("")
        lines.append("Skipped:")
        for k in data["skipped"]:
            lines.append(f"  {k['start'][:10]}  {k['reason']}")
    lines.append("")
    lines.append("Due now: " + ("; ".join(data["due_now"]) if data["due_now"] else "nothing"))
    for w in data.get("waiting", []):
        when = f", next attempt {w['next_attempt_at'][:16]}" if w["next_attempt_at"] else ""
        said = f"; the server last said: {w['last_answer']}" if w["last_answer"] else ""
        lines.append(
            f"NOT DELIVERED YET: {w['owed']} message(s) of the {w['kind']} for {w['session']} "
            f"(mailing {w['mailing']}){when}{said}"
        )
    lines.append(f"Next due: {data['next_due'] or 'nothing planned'}")
    run = data["last_run"]
    if run is None:
        lines.append("Last run: never")
    else:
        outcome = (run["outcome"] or "unfinished").upper()
        lines.append(
            f"Last run: {outcome} at {run['started_at']} ({run['trigger']}): {run['summary'] or ''}"
        )
    d = data["deliveries"]
    lines.append("Deliveries: " + (", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"))
    subs = data["subscribers"]
    lines.append("Subscribers: " + ", ".join(f"{k} {v}" for k, v in subs.items()))
    if data.get("bounced"):
        lines.append("Bounced subscribers (they get no more mail):")
        for b in data["bounced"]:
            since = f" since {b['bounced_at'][:10]}" if b["bounced_at"] else ""
            answer = f": {b['last_response']}" if b["last_response"] else ""
            lines.append(f"  {b['email']}{since}{answer}")
    calls = data["zoom_calls_today"]
    lines.append(f"Zoom create/update calls today (UTC): {sum(calls.values())} of 100")
    lines.extend(format_instances(data.get("instances", [])))
    return "\n".join(lines)


def format_instances(found: list[dict[str, Any]]) -> list[str]:
    if not found:
        return ["Daemon: not running (no `session-bot serve` holds the lock)"]
    lines = ["Daemon instances:"]
    for i in found:
        host = f" on {i['host']}" if i.get("host") else ""
        since = f" since {i['since']}" if i.get("since") else ""
        lines.append(f"  {i['role']:<8} pid {i['pid']}{host}{since}")
    return lines
