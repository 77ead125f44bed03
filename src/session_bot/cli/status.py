"""`session-bot status`: what is planned, what happened, what needs the organiser."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from session_bot import wiring
from session_bot.adapters.db.advisory import instances, is_postgresql
from session_bot.adapters.db.store import Store
from session_bot.app.console.overview import overview
from session_bot.app.runner import state_from_store
from session_bot.cli.status_words import TEXTS, day, moment, run_lines, skip_words
from session_bot.core.changes import changed_fields
from session_bot.core.errors import PlanError
from session_bot.core.plan import Plan
from session_bot.core.timeline import due_actions, next_due, upcoming
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
    ov = overview(store, plan, now, [])  # the console's use case: states and next steps
    sessions = []
    held: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for view in ov.sessions:
        occ = view.occurrence
        row = store.sessions.get(occ.key)
        mailings = store.mailings.of_session(row.id) if row else []
        entry: dict[str, Any] = {
            "key": occ.key,
            "start": occ.start.isoformat(),
            "timezone": occ.series.timezone,
            "topic": occ.content.topic_one_line if occ.content else None,
            "state": view.state,
            "reason": view.reason,
            "skipped": occ.skip_reason,
            "cancelled": occ.cancelled,
            "meeting_id": view.meeting_id,
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
    due = due_actions(now, plan, state)
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
        "timezone": plan.series[0].timezone if plan.series else "UTC",
        "sessions": sessions,
        "orphaned": orphaned_sessions(store, plan, now),
        "held": held,
        "skipped": skipped,
        "due_now": [a.describe() for a in due],
        "due_now_actions": [
            {
                "kind": a.kind,
                "session": a.occurrence.key,
                "due": a.due.astimezone(dt.UTC).isoformat(),
                "note": a.note,
            }
            for a in due
        ],
        "next_steps": [
            {
                "at": s.at.astimezone(dt.UTC).isoformat(),
                "kind": s.kind,
                "session": s.session.key,
                "recipients": s.recipients,
            }
            for s in ov.next_steps
        ],
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


def _session_lines(s: dict[str, Any], lang: str) -> list[str]:
    t, zone = TEXTS[lang], s["timezone"]
    state = t[s["state"]]
    if s["state"] == "skipped":
        return [
            f"  {day(s['start'], lang)}: {state} – {skip_words(s['skipped'], dt.date.fromisoformat(s['start'][:10]), lang)}"
        ]
    if s["reason"]:
        state += f" – {s['reason']}"
    lines = [f"  {moment(s['start'], lang, zone)}: {state}", f"      {s['topic'] or t['no_topic']}"]
    sent = {m["kind"]: m["deliveries"].get("sent", 0) for m in s["mailings"]}
    mails = []
    for kind in ("invitation", "reminder"):
        at = s[f"{kind}_at"]
        if at is not None:
            done = f" ({t['sent_to'].format(n=sent[kind])})" if kind in sent else ""
            mails.append(t["mail_at"].format(kind=t[kind], when=moment(at, lang, zone)) + done)
    mails += [
        f"{t[k]} {t['sent_to'].format(n=n)}"
        for k, n in sent.items()
        if k not in ("invitation", "reminder")
    ]
    meeting = t["meeting"].format(id=s["meeting_id"]) if s["meeting_id"] else t["no_meeting"]
    lines.append(f"      {'; '.join(mails)}; {meeting}")
    if s.get("changed_since"):
        fields = ", ".join(t[f] for f in s["changed_since"])
        lines.append("      " + t["changed"].format(fields=fields))
    return lines


def format_status(data: dict[str, Any], language: str = "de") -> str:
    """The status as the organiser reads it: local times with weekdays, states in words."""
    t, zone = TEXTS[language], data["timezone"]
    by_key = {s["key"]: s for s in data["sessions"]}

    def session(key: str) -> str:
        return t["for"].format(day=day(key.rsplit("/", 1)[-1], language))

    lines = [
        t["as_of"].format(now=moment(data["now"], language, zone), zone=zone),
        "",
        t["upcoming"],
    ]
    for s in data["sessions"]:
        lines.extend(_session_lines(s, language))
    if not data["sessions"]:
        lines.append(t["none"])
    if data.get("orphaned"):
        lines += ["", t["orphaned"]] + [
            f"  {day(k.rsplit('/', 1)[-1], language)}" for k in data["orphaned"]
        ]
    lines.append("")
    confirmed = data["subscribers"]["confirmed"]
    due = []
    for a in data["due_now_actions"]:
        kind = a["kind"]
        if kind in ("invitation", "reminder"):
            what = t["to_n"].format(kind=t[kind], n=confirmed)
        elif kind == "cancellation" and a["note"].startswith("meeting only"):
            what = t["do_meeting_only"]
        else:
            what = t[f"do_{kind}"]
        late = t["late"] if a["note"].startswith("late") else ""
        due.append(f"  {what} {session(a['session'])}{late}")
    lines += [t["due"], *due] if due else [t["nothing_due"]]
    steps = []
    for st in data["next_steps"]:
        if st["at"] <= data["now"] and due:
            continue  # already listed as due now
        what = t["to_n"].format(kind=t[st["kind"]], n=st["recipients"])
        when = moment(st["at"], language, zone)
        text = t["step"].format(what=what, when=when, session=session(st["session"]))
        if by_key.get(st["session"], {}).get("state") in ("waiting", "held"):
            text += t["after_topic"]
        steps.append(f"  {text}")
    lines += [t["next"], *steps] if steps else [t["nothing_next"]]
    for w in data.get("waiting", []):
        n = f"{w['owed']} {t['one'] if w['owed'] == 1 else t['many']}"
        text = t["owed"].format(n=n, kind=t[w["kind"]], session=session(w["session"]))
        if w["next_attempt_at"]:
            text += t["attempt"].format(when=moment(w["next_attempt_at"], language, zone))
        if w["last_answer"]:
            text += t["said"].format(answer=w["last_answer"])
        lines.append(text)
    lines.extend(run_lines(data["last_run"], language, zone))
    counts = data["deliveries"]
    lines.append(
        t["messages"].format(
            counts=", ".join(f"{v} {t.get('d_' + k, k)}" for k, v in sorted(counts.items()))
            or t["nothing"]
        )
    )
    lines.append(
        t["subscribers"].format(
            counts=", ".join(f"{v} {t[k]}" for k, v in data["subscribers"].items())
        )
    )
    if data.get("bounced"):
        lines.append(t["bounced_list"])
        for b in data["bounced"]:
            since = t["since"].format(day=day(b["bounced_at"], language)) if b["bounced_at"] else ""
            answer = f": {b['last_response']}" if b["last_response"] else ""
            lines.append(f"  {b['email']}{since}{answer}")
    lines.append(t["zoom"].format(n=sum(data["zoom_calls_today"].values())))
    lines.extend(format_instances(data.get("instances", []), language, zone))
    return "\n".join(lines)


_DAEMON = {
    "de": ("Dienst: läuft nicht (kein `session-bot serve` hält die Sperre)", "Dienst-Instanzen:",
           {"leader": "aktiv", "standby": "in Bereitschaft"}, " auf {host}", " seit {since}"),
    "en": ("Daemon: not running (no `session-bot serve` holds the lock)", "Daemon instances:",
           {}, " on {host}", " since {since}"),
}  # fmt: skip


def format_instances(
    found: list[dict[str, Any]], language: str = "en", zone: str | None = None
) -> list[str]:
    """The daemon instances; ``since`` in ``zone``'s local time when given (else as stored)."""
    idle, header, roles, on, since = _DAEMON[language]
    if not found:
        return [idle]
    lines = [header]
    for i in found:
        host = on.format(host=i["host"]) if i.get("host") else ""
        when = i.get("since")
        if when and zone:
            when = moment(when, language, zone)
        shown = since.format(since=when) if when else ""
        lines.append(f"  {roles.get(i['role'], i['role']):<8} pid {i['pid']}{host}{shown}")
    return lines


DEMO_HINT = {
    "de": "Dies ist die Demo ({folder}), Stand ihres letzten Laufs. Ihre eigene Planung: "
    "SESSION_BOT_PLAN bzw. --plan setzen.",
    "en": "This is the demo ({folder}), as of its last run. For your own plan set "
    "SESSION_BOT_PLAN or --plan.",
}
DEMO_MISSING = (
    "{plan}: plan file not found. The demo keeps its own folder; to look at it: "
    "SESSION_BOT_VAR_DIR={folder} SESSION_BOT_PLAN={demo_plan} session-bot status"
)


def demo_instead(settings: Settings, plan: Path | None, demo_plan: Path) -> Settings | None:
    """The demo's settings when `status` is asked without a plan of its own right after
    `make demo` (no plan file, but ./var/demo with the demo's database); else None.

    Raises ``PlanError`` with the way to look at the demo when its plan is not here either."""
    from session_bot.cli.demo import demo_file, demo_settings
    from session_bot.preflight import PURPOSE_KEY

    if plan is not None or settings.plan.exists() or settings.database_url:
        return None
    demo = demo_settings(settings)
    if not (demo.var_dir / "session-bot.db").exists():
        return None
    store = wiring.open_store(demo, purpose="look")
    try:
        if store.kv.get(PURPOSE_KEY) != "demo":
            return None
    finally:
        store.close()
    demo_plan = demo_file(demo_plan)  # ./examples/, else the copy shipped with session-bot
    if not demo_plan.exists():
        raise PlanError(
            DEMO_MISSING.format(plan=settings.plan, folder=demo.var_dir, demo_plan=demo_plan)
        )
    return demo.model_copy(update={"plan": demo_plan})


def demo_moment(settings: Settings) -> dt.datetime | None:
    """When the demo last ran (on its own clock, e.g. 12 February 2025), if ``settings`` open the
    demo's database: its status is shown as of then. None for any other database."""
    from session_bot.preflight import PURPOSE_KEY

    store = wiring.open_store(settings, purpose="look")
    try:
        last = store.runs.last() if store.kv.get(PURPOSE_KEY) == "demo" else None
    finally:
        store.close()
    started = last["started_at"] if last else None
    if not isinstance(started, dt.datetime):
        return None
    return started if started.tzinfo else started.replace(tzinfo=dt.UTC)


def demo_line(settings: Settings, language: str) -> str:
    folder = settings.var_dir
    return DEMO_HINT[language].format(folder=folder if folder.is_absolute() else f"./{folder}")
