"""Delivery benchmark: session-bot's real sending path against raw smtplib, to a local SMTP sink.

- Sink: Postfix's ``smtp-sink`` (from PATH, else ``apt-get download postfix`` into .cache/postfix/
  and ``dpkg-deb -x``); an aiosmtpd sink only if that fails, and the output says so.
- session-bot: a mailing frozen in a SQLite store (WAL) with 10,000 delivery rows; then what
  ``Runner._deliver`` does — render the invitation once per language (HTML + text + .ics), and
  ``deliver_mailing`` claims rows in batches, personalises each (unsubscribe token, Message-ID,
  ATTENDEE), sends over 4 SMTP connections, and records every answer.
- Baseline: the same 10,000 messages pre-built as bytes, pushed with plain ``smtplib.sendmail``
  over 4 connections (threads) — the wire and nothing else. Unlike smtplib, session-bot uses SMTP
  PIPELINING (RFC 2920) when the server offers it (smtp-sink and most MTAs do): one round trip
  per message instead of four. The output says whether it was offered.
- Pairs are interleaved (raw, session-bot, raw, …); the figures are medians.
- Peak RSS: a fresh process delivers a frozen mailing of 1,000 and of 100,000 recipients to the
  sink through the same path (setup happens in the parent; the child only opens the store, renders
  and delivers), and reports its ru_maxrss.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from session_bot import wiring
from session_bot.adapters.db.schema import subscribers
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.adapters.zoom import DialIn, Meeting
from session_bot.app.delivery import DeliveryPolicy, deliver_mailing
from session_bot.core.plan import Occurrence, Plan, find_occurrence, load_plan
from session_bot.core.records import DeliveryRow, MailingRow
from session_bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "postfix"
EXAMPLE_PLAN = ROOT / "examples" / "willkommen.yaml"
SESSION_DAY = dt.date(2025, 2, 26)
NOW = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)
CONNECTIONS = 4
BATCH = DeliveryPolicy().batch


def clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the sink ---------------------------------------------------------------------------------
@dataclass
class Sink:
    port: int
    name: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _smtp_sink_command() -> tuple[list[str], dict[str, str]] | None:
    found = shutil.which("smtp-sink")
    if found:
        return [found], {}
    exe = CACHE / "root" / "usr" / "sbin" / "smtp-sink"
    if not exe.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["apt-get", "download", "postfix"], cwd=CACHE, check=True, capture_output=True
            )
            deb = sorted(CACHE.glob("postfix_*.deb"))[-1]
            subprocess.run(
                ["dpkg-deb", "-x", str(deb), str(CACHE / "root")], check=True, capture_output=True
            )
        except (OSError, subprocess.CalledProcessError, IndexError) as exc:
            print(f"note: cannot fetch Postfix's smtp-sink ({exc})", file=sys.stderr)
            return None
    libs = CACHE / "root" / "usr" / "lib" / "postfix"
    return [str(exe)], {"LD_LIBRARY_PATH": str(libs)}


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return s.recv(100).startswith(b"220")
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def smtp_sink() -> Iterator[Sink]:
    port = _free_port()
    sink: Sink | None = None
    command = _smtp_sink_command()
    if command is not None:
        exe, env = command
        privs = ["-u", "nobody"] if os.geteuid() == 0 else []
        proc = subprocess.Popen(
            [*exe, *privs, f"127.0.0.1:{port}", "256"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if _wait_listening(port, proc):
            sink = Sink(port, "postfix smtp-sink", proc)
        else:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace").strip()
            print(f"note: smtp-sink did not start ({err})", file=sys.stderr)
    if sink is None:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--fallback-sink", str(port)], stdout=subprocess.DEVNULL
        )
        if not _wait_listening(port, proc):
            proc.kill()
            raise SystemExit("no SMTP sink could be started")
        sink = Sink(port, "aiosmtpd (FALLBACK: Postfix smtp-sink unavailable)", proc)
    try:
        yield sink
    finally:
        sink.process.terminate()
        sink.process.wait(timeout=10)


def fallback_sink(port: int) -> None:
    """An aiosmtpd server that accepts and discards everything, until SIGTERM."""
    import signal

    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 Ok: discarded"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port, server_hostname="sink")
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


# --- a store with a frozen mailing -------------------------------------------------------------
@dataclass
class World:
    settings: Settings
    plan: Plan
    occ: Occurrence
    store: Store
    session_id: int


def meeting(occ: Occurrence) -> Meeting:
    return Meeting(
        id=66547677759,
        topic=occ.series.title,
        agenda=occ.key,
        start_time=occ.start.astimezone(dt.UTC),
        duration=occ.duration,
        timezone=occ.series.timezone,
        join_url="https://bertelsmann-stiftung-de.zoom.us/j/66547677759",
        password="717531",
        pstn_password="717531",
        dial_in=(
            DialIn("DE", "Germany", "Frankfurt", "+49 69 5050 0952", "toll"),
            DialIn("DE", "Germany", "", "+49 800 000 0000", "tollfree"),
        ),
        host_email="host@example.org",
    )


def world(folder: Path, recipients: int, database_url: str = "") -> World:
    settings = load_settings(
        None,
        database_url=database_url,
        var_dir=folder,
        plan=EXAMPLE_PLAN,
        secret_key="bench-secret-key-0123456789abcdef",
        public_url="https://session-bot.example.org",
    )
    store = wiring.open_store(settings)
    plan = load_plan(EXAMPLE_PLAN)
    occ = find_occurrence(plan, SESSION_DAY)
    with store.engine.begin() as c:  # bulk set-up; the measured path is deliver_mailing
        for start in range(0, recipients, 5000):
            c.execute(
                insert(subscribers),
                [
                    {
                        "email": f"teilnehmer.{i:06d}@example.org",
                        "email_key": f"teilnehmer.{i:06d}@example.org",
                        "name": f"Jürgen Müller-{i}" if i % 3 else None,
                        "language": "en" if i % 10 == 0 else "de",
                        "status": "confirmed",
                        "created_at": NOW,
                        "updated_at": NOW,
                        "hard_bounces": 0,
                    }
                    for i in range(start, min(start + 5000, recipients))
                ],
            )
    row = store.sessions.ensure(
        occ.key, occ.series.id, occ.date.isoformat(), occ.start, occ.duration, NOW
    )
    store.sessions.record_meeting(row.id, meeting(occ).to_json(), NOW)
    return World(settings, plan, occ, store, row.id)


def freeze(w: World, sequence: int) -> MailingRow:
    mailing_id, _ = w.store.mailings.freeze(w.session_id, "invitation", sequence, NOW)
    return w.store.mailings.get(mailing_id)


def runner_personalise(w: World, mailing: MailingRow) -> Callable[[DeliveryRow], bytes]:
    """What ``Runner._deliver`` builds: every language rendered once, then bytes per recipient."""
    renderer = wiring.renderer_factory(w.settings)(w.occ.series)
    recipient_for = wiring.recipient_factory(w.settings, w.plan)
    now = clock()
    m = meeting(w.occ)
    rendered = {
        lang: renderer.render(
            mailing.kind, w.occ, m, sequence=mailing.sequence, now=now, language=lang
        )
        for lang in ("de", "en")
    }
    domain = wiring._domain(wiring.envelope_sender(w.settings, w.plan))

    def personalise(d: DeliveryRow) -> bytes:
        lang = d.language if d.language in rendered else w.occ.series.language
        mid = f"<{mailing.id}.{d.id}.{mailing.kind}@{domain}>"
        return rendered[lang].personalise(recipient_for(d, mailing), message_id=mid, date=now)

    return personalise


def sender(w: World) -> str:
    return wiring.envelope_sender(w.settings, w.plan)


# --- the two contenders ------------------------------------------------------------------------
def run_session_bot(w: World, sequence: int, port: int, expected: int) -> float:
    mailing = freeze(w, sequence)
    transport = SmtpTransport("127.0.0.1", port, tls="none")
    started = time.perf_counter()
    report = deliver_mailing(
        w.store,
        transport,
        mailing.id,
        runner_personalise(w, mailing),
        sender=sender(w),
        clock=clock,
        connections=CONNECTIONS,
    )
    elapsed = time.perf_counter() - started
    transport.close()
    if report.sent != expected:
        raise SystemExit(f"session-bot sent {report.sent} of {expected}: {report.failures[:3]}")
    return elapsed


def prebuilt_messages(w: World) -> list[tuple[str, bytes]]:
    """The same personalised messages, built before the clock starts."""
    mailing = freeze(w, 0)
    personalise = runner_personalise(w, mailing)
    claim = w.store.deliveries.claim(mailing.id, clock=clock, worker="bench", limit=10**9)
    return [(row.email, personalise(row)) for row in claim.rows]


def run_raw(messages: list[tuple[str, bytes]], port: int, envelope_from: str) -> float:
    import smtplib

    def push(part: list[tuple[str, bytes]]) -> None:
        conn = smtplib.SMTP("127.0.0.1", port)
        for rcpt, data in part:
            conn.sendmail(envelope_from, [rcpt], data)
        conn.quit()

    threads = [
        threading.Thread(target=push, args=(messages[i::CONNECTIONS],)) for i in range(CONNECTIONS)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


# --- peak memory -------------------------------------------------------------------------------
def rss_child(folder: str, port: int) -> None:
    """In a fresh process: open the store, deliver its one open mailing, print peak RSS (MiB)."""
    settings = load_settings(
        None,
        var_dir=Path(folder),
        plan=EXAMPLE_PLAN,
        secret_key="bench-secret-key-0123456789abcdef",
        public_url="https://session-bot.example.org",
    )
    store = wiring.open_store(settings)
    plan = load_plan(EXAMPLE_PLAN)
    occ = find_occurrence(plan, SESSION_DAY)
    session = store.sessions.get(occ.key)
    assert session is not None
    w = World(settings, plan, occ, store, session.id)
    (mailing,) = store.mailings.open()
    transport = SmtpTransport("127.0.0.1", port, tls="none")
    report = deliver_mailing(
        store, transport, mailing.id, runner_personalise(w, mailing), sender=sender(w),
        clock=clock, connections=CONNECTIONS,
    )  # fmt: skip
    transport.close()
    print(json.dumps({"sent": report.sent, "rss_mb": round(peak_rss_mb(), 1)}))


def peak_rss_mb() -> float:
    """VmHWM of this process. Not ru_maxrss: Linux carries that over execve from the parent, so a
    child of a large parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_rss(recipients: int, port: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-rss-") as folder:
        w = world(Path(folder), recipients)
        freeze(w, 0)
        w.store.close()
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", folder, str(port)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["rss_mb"]), int(result["sent"])


def measure_postgresql(
    folder: Path,
    n: int,
    pairs: int,
    port: int,
    messages: list[tuple[str, bytes]],
    envelope_from: str,
) -> dict[str, float]:
    """The same interleaved pairs with the store on a fresh PostgreSQL database (dropped after)."""
    import uuid

    import psycopg

    admin = os.environ.get("SESSION_BOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"sb_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    try:
        w = world(folder / "pg", n, url)
        ratios, rates = [], []
        for i in range(pairs):
            raw = n / run_raw(messages, port, envelope_from)
            bot = n / run_session_bot(w, i + 1, port, n)
            ratios.append(bot / raw)
            rates.append(bot)
            print(f"postgresql pair {i + 1}: raw {raw:7.0f}/s   session-bot {bot:7.0f}/s   "
                  f"ratio {bot / raw:.2f}")  # fmt: skip
        w.store.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result = {
        "rate_session_bot_postgresql": round(statistics.median(rates), 1),
        "ratio_postgresql": round(statistics.median(ratios), 3),
    }
    print(f"median on PostgreSQL: session-bot {result['rate_session_bot_postgresql']:.0f}/s, "
          f"ratio {result['ratio_postgresql']:.2f}")  # fmt: skip
    return result


# --- main --------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--rss-sizes", default="1000,100000")
    ap.add_argument("--rss-child", nargs=2, metavar=("FOLDER", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--fallback-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: also measure the rate with the store on PostgreSQL (127.0.0.1:5432)",
    )
    args = ap.parse_args()
    if args.fallback_sink:
        fallback_sink(args.fallback_sink)
        return
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return
    n = args.recipients
    with smtp_sink() as sink, tempfile.TemporaryDirectory(prefix="sb-bench-") as folder:
        print(f"sink: {sink.name} on 127.0.0.1:{sink.port}")
        w = world(Path(folder), n)
        messages = prebuilt_messages(w)
        size = sum(len(m) for _, m in messages) / len(messages)
        print(f"{n} personalised invitations (HTML + text + .ics), mean {size / 1024:.1f} KiB, "
              f"{CONNECTIONS} connections, claim batch {BATCH}, SQLite WAL in {folder}")  # fmt: skip
        envelope_from = sender(w)
        probe = SmtpTransport("127.0.0.1", sink.port, tls="none")
        probe.check()
        conn = probe._connect()
        pipelining = conn.has_extn("pipelining")
        conn.quit()
        print(f"sink offers PIPELINING: {pipelining} (session-bot uses it, smtplib.sendmail not)")
        run_raw(messages[:200], sink.port, envelope_from)  # warm-up: connections, caches
        pairs: list[tuple[float, float]] = []
        for i in range(args.pairs):
            raw = n / run_raw(messages, sink.port, envelope_from)
            bot = n / run_session_bot(w, i + 1, sink.port, n)
            pairs.append((raw, bot))
            print(f"pair {i + 1}: raw {raw:7.0f}/s   session-bot {bot:7.0f}/s   "
                  f"ratio {bot / raw:.2f}")  # fmt: skip
        rate_raw = statistics.median(p[0] for p in pairs)
        rate_bot = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        print(f"median: raw {rate_raw:.0f}/s, session-bot {rate_bot:.0f}/s, "
              f"ratio {ratio:.2f} (median of the pair ratios)")  # fmt: skip
        w.store.close()
        pg: dict[str, float] = {}
        if args.database == "postgresql":
            pg = measure_postgresql(Path(folder), n, args.pairs, sink.port, messages, envelope_from)
        del messages
        rss: dict[int, float] = {}
        for size_n in (int(s) for s in args.rss_sizes.split(",")):
            started = time.perf_counter()
            rss[size_n], sent = measure_rss(size_n, sink.port)
            print(f"peak RSS delivering {size_n} recipients to the sink in a fresh process: "
                  f"{rss[size_n]:.1f} MiB ({sent} sent, {time.perf_counter() - started:.0f} s)")  # fmt: skip
    sizes = sorted(rss)
    result = {
        "rate_session_bot": round(rate_bot, 1),
        "rate_baseline": round(rate_raw, 1),
        "ratio": round(ratio, 3),
        "connections": CONNECTIONS,
        "batch": BATCH,
        "recipients": n,
        "pairs": args.pairs,
        "sink": sink.name,
        **pg,
        "pipelining": pipelining,
        "rss_1k_mb": rss.get(1000),
        "rss_100k_mb": rss.get(100_000),
        "rss_ratio": round(rss[sizes[-1]] / rss[sizes[0]], 3) if len(sizes) > 1 else None,
        "rss_measures": "peak RSS of a fresh process delivering the whole mailing to the sink",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
