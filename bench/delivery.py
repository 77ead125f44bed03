"""Delivery benchmark: session-bot against the limits, in the same run, to Postfix's smtp-sink.

Contenders, each sending the same 10,000 personalised invitations (~13 KB, HTML + text + .ics)
over 4 connections to the same sink:

- ``smtp-source``: Postfix's C load generator (``-d``: it keeps its connections, as every other
  contender does; it does not pipeline). It sends one of the messages, pre-built, each time.
- ``pipelined``: a bare Python sender on raw sockets, one thread per connection, with the SMTP
  scheme session-bot uses (PIPELINING, RFC 2920: the envelope rides with the previous message's
  data, one round trip per message) and the messages pre-built: the ceiling for Python.
- ``smtplib``: ``smtplib.sendmail`` per message (four round trips), messages pre-built.
- ``session-bot``: what a run does with an open mailing: ``Runner.deliver`` renders the mailing
  once per language, claims rows from the SQLite ledger (WAL), personalises each message, sends it
  over the SMTP transport and records every answer; for a large mailing that is several worker
  processes (``SESSION_BOT_DELIVERY_WORKERS``; by default one per core, one fewer when the mail
  server is on this host, as the sink is: ``worker_processes``). ``session-bot-1p``: the same in
  one process, when the default is more; ``session-bot-all-cores``: one process per core, when
  the default is fewer. The first session-bot round starts its helpers cold (≈ 0.5 s of imports);
  before each later round (and before every other contender) the bench waits until the spares
  the previous mailing started have their modules imported, as a daemon's next mailing finds
  them: else their imports would run in the next contender's timed window.

The sink is Postfix's ``smtp-sink`` from ``scripts/ensure-postfix.sh`` (``apt-get download
postfix`` into .cache/postfix/); if that cannot be had, an aiosmtpd sink is used, smtp-source is
left out and the output says so. Rounds are rotated (no contender always first); figures are the
medians of the rounds, ratios the medians of the per-round ratios.

Peak RSS: a fresh process delivers a frozen mailing of 1,000 and of 100,000 recipients to the sink
through the same path (set-up happens in the parent); the figure is the largest peak of that
process and its worker processes.

Where the time goes: for each contender, the machine's CPU time a message less the sink's, and
the sink's (from /proc; medians of the rounds). Run on an otherwise idle machine.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import resource
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
from typing import Any

from _procs import busy_seconds, cpu_seconds
from sqlalchemy import insert

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.adapters.db.schema import subscribers
from session_bot.adapters.db.store import Store
from session_bot.adapters.zoom import DialIn, Meeting
from session_bot.core.plan import Occurrence, Plan, find_occurrence, load_plan
from session_bot.core.records import MailingRow
from session_bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
ENSURE_POSTFIX = ROOT / "scripts" / "ensure-postfix.sh"
EXAMPLE_PLAN = ROOT / "examples" / "willkommen.yaml"
SESSION_DAY = dt.date(2025, 2, 26)
NOW = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)
CONNECTIONS = 4


# --- Postfix's programs and the sink ------------------------------------------------------------
@dataclass
class Postfix:
    sbin: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "LD_LIBRARY_PATH": str(self.sbin.parent / "lib" / "postfix")}


def find_postfix() -> Postfix | None:
    try:
        out = subprocess.run(
            ["sh", str(ENSURE_POSTFIX)], check=True, capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError) as exc:
        err = getattr(exc, "stderr", "") or exc
        print(f"note: Postfix's smtp-sink/smtp-source unavailable: {str(err).strip()}")
        return None
    return Postfix(Path(out.stdout.strip().splitlines()[-1]))


@dataclass
class Sink:
    port: int
    name: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
def smtp_sink(postfix: Postfix | None) -> Iterator[Sink]:
    port = _free_port()
    sink: Sink | None = None
    if postfix is not None:
        privs = ["-u", "nobody"] if os.geteuid() == 0 else []
        proc = subprocess.Popen(
            [str(postfix.sbin / "smtp-sink"), *privs, f"127.0.0.1:{port}", "256"],
            env=postfix.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if _wait_listening(port, proc):
            sink = Sink(port, "postfix smtp-sink", proc)
        else:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace").strip()
            print(f"note: smtp-sink did not start ({err})")
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


def bench_settings(folder: Path, port: int, database_url: str = "", **extra: Any) -> Settings:
    return load_settings(
        None,
        database_url=database_url,
        var_dir=folder,
        plan=EXAMPLE_PLAN,
        secret_key="bench-secret-key-0123456789abcdef",
        public_url="https://session-bot.example.org",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_connections=CONNECTIONS,
        **extra,
    )


def world(settings: Settings, recipients: int) -> World:
    store = wiring.open_store(settings)
    plan = load_plan(EXAMPLE_PLAN)
    occ = find_occurrence(plan, SESSION_DAY)
    with store.engine.begin() as c:  # bulk set-up; the measured path is the runner's delivery
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


def sender(w: World) -> str:
    return wiring.envelope_sender(w.settings, w.plan)


def prebuilt_messages(w: World) -> list[tuple[str, bytes]]:
    """The same personalised messages session-bot sends, built before any clock starts."""
    mailing = freeze(w, 0)
    captured: list[tuple[str, bytes]] = []

    class Capture:
        description = "capture"

        def send_many(self, sender: str, messages: Any) -> Iterator[Any]:
            from session_bot.app.ports.mail import SendResult

            for rcpt, data in messages:
                captured.append((rcpt, data))
                yield SendResult("sent", 250, "ok")

        def send(self, sender: str, recipient: str, message: bytes) -> Any:
            return next(self.send_many(sender, [(recipient, message)]))

        def check(self) -> None: ...

        def clone(self) -> Capture:
            return self

        def close(self) -> None: ...

    settings = w.settings.model_copy(update={"smtp_connections": 1})
    single = _with_workers(settings, 1)
    runner = wiring.build_runner(single, w.plan, w.store, None, system_clock, Capture())
    runner.connections = 1
    runner.deliver(mailing)
    return captured


def _with_workers(settings: Settings, workers: int) -> Settings:
    if "delivery_workers" in type(settings).model_fields:
        return settings.model_copy(update={"delivery_workers": workers})
    return settings


# --- the contenders ----------------------------------------------------------------------------
def run_session_bot(w: World, sequence: int, workers: int | None, expected: int) -> float:
    """The runner's delivery of a freshly frozen mailing (rendering included)."""
    mailing = freeze(w, sequence)
    settings = w.settings if workers is None else _with_workers(w.settings, workers)
    runner = wiring.build_runner(settings, w.plan, w.store, None, system_clock)
    started = time.perf_counter()
    report = runner.deliver(mailing)
    elapsed = time.perf_counter() - started
    runner.transport.close()
    if report.sent != expected:
        raise SystemExit(f"session-bot sent {report.sent} of {expected}: {report.failures[:3]}")
    return elapsed


def wait_for_spares(timeout: float = 20.0) -> None:
    """Until every spare helper waits for an order: asleep, its CPU time no longer moving."""
    from session_bot.adapters.workers import SPARES

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = {pid: _cpu_ticks(pid) for pid in SPARES.pids}
        time.sleep(0.05)
        if all(_cpu_ticks(pid) == ticks for pid, ticks in before.items()):
            return


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1  # gone: nothing to wait for
    return int(fields[11]) + int(fields[12])


def run_smtplib(messages: list[tuple[str, bytes]], port: int, envelope_from: str) -> float:
    import smtplib

    def push(part: list[tuple[str, bytes]]) -> None:
        conn = smtplib.SMTP("127.0.0.1", port)
        for rcpt, data in part:
            conn.sendmail(envelope_from, [rcpt], data)
        conn.quit()

    return _threads(push, messages)


def _threads(push: Callable[[list[tuple[str, bytes]]], None], messages: list[Any]) -> float:
    threads = [
        threading.Thread(target=push, args=(messages[i::CONNECTIONS],)) for i in range(CONNECTIONS)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


class _Replies:
    """SMTP replies read from a socket (multi-line replies joined)."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def code(self) -> int:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("sink closed the connection")
            if line[3:4] != b"-":
                return int(line[:3])


def run_pipelined(messages: list[tuple[str, bytes]], port: int, envelope_from: str) -> float:
    """One round trip per message: MAIL, RCPT, DATA go out with the previous message's data."""

    def envelope(rcpt: str, data: bytes) -> bytes:
        return (
            f"MAIL FROM:<{envelope_from}> SIZE={len(data)}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
        ).encode()

    def push(part: list[tuple[str, bytes]]) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            replies = _Replies(sock)
            replies.code()
            sock.sendall(b"EHLO bench.example.org\r\n")
            replies.code()
            sock.sendall(envelope(*part[0]))
            for i, (_, data) in enumerate(part):
                codes = (replies.code(), replies.code(), replies.code())
                if codes != (250, 250, 354):
                    raise SystemExit(f"pipelined sender: envelope answered {codes}")
                if data.startswith(b".") or b"\n." in data:
                    data = data.replace(b"\n.", b"\n..")
                tail = envelope(*part[i + 1]) if i + 1 < len(part) else b"QUIT\r\n"
                sock.sendall(data + b".\r\n" + tail)
                if replies.code() != 250:
                    raise SystemExit("pipelined sender: message refused")

    return _threads(push, messages)


def run_smtp_source(postfix: Postfix, port: int, eml: Path, n: int, envelope_from: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            *(str(postfix.sbin / "smtp-source"), "-d", "-s", str(CONNECTIONS), "-m", str(n)),
            *("-F", str(eml), "-f", envelope_from, "-t", "teilnehmer@example.org"),
            f"127.0.0.1:{port}",
        ],
        env=postfix.env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


# --- peak memory -------------------------------------------------------------------------------
def rss_child(folder: str, port: int) -> None:
    """In a fresh process: open the store, deliver its one open mailing, print peak RSS (MiB)."""
    settings = bench_settings(Path(folder), port)
    store = wiring.open_store(settings)
    plan = load_plan(EXAMPLE_PLAN)
    runner = wiring.build_runner(settings, plan, store, None, system_clock)
    (mailing,) = store.mailings.open()
    report = runner.deliver(mailing)
    runner.transport.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = peak_rss_mb()
    print(json.dumps({"sent": report.sent, "rss_mb": round(max(own, children), 1)}))


def peak_rss_mb() -> float:
    """VmHWM of this process. Not ru_maxrss: Linux carries that over execve from the parent, so a
    child of a large parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_rss(recipients: int, port: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-rss-") as folder:
        w = world(bench_settings(Path(folder), port), recipients)
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


# --- main --------------------------------------------------------------------------------------
def postgresql_url(folder: Path) -> tuple[str, Callable[[], None]]:
    import uuid

    import psycopg

    admin = os.environ.get("SESSION_BOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"sb_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    return url, drop


@dataclass
class Rounds:
    rates: dict[str, list[float]]  # messages per second
    # CPU a message (µs), of the machine less the sink, and of the sink: where the time goes.
    cpu_us: dict[str, list[float]]
    sink_us: dict[str, list[float]]


def rounds(contenders: dict[str, Callable[[], float]], n: int, count: int, sink_pid: int) -> Rounds:
    """``count`` rounds, the order rotated by one each round."""
    names = list(contenders)
    out = Rounds({k: [] for k in names}, {k: [] for k in names}, {k: [] for k in names})
    for r in range(count):
        order = names[r % len(names) :] + names[: r % len(names)]
        line = []
        for name in order:
            wait_for_spares()
            busy, sink = busy_seconds(), cpu_seconds(sink_pid)
            rate = n / contenders[name]()
            sink = cpu_seconds(sink_pid) - sink
            out.rates[name].append(rate)
            out.cpu_us[name].append((busy_seconds() - busy - sink) / n * 1e6)
            out.sink_us[name].append(sink / n * 1e6)
            line.append(f"{name} {rate:6.0f}/s")
        print(f"round {r + 1}: " + "   ".join(line), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rss-sizes", default="1000,100000", help="'' to skip the RSS figures")
    ap.add_argument("--rss-child", nargs=2, metavar=("FOLDER", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--fallback-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the ledger's database (postgresql: a fresh database at 127.0.0.1:5432, dropped)",
    )
    args = ap.parse_args()
    if args.fallback_sink:
        fallback_sink(args.fallback_sink)
        return
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return
    n = args.recipients
    postfix = find_postfix()
    drop: Callable[[], None] | None = None
    with smtp_sink(postfix) as sink, tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        folder = Path(tmp)
        print(f"sink: {sink.name} on 127.0.0.1:{sink.port}")
        url = ""
        if args.database == "postgresql":
            url, drop = postgresql_url(folder)
        try:
            w = world(bench_settings(folder, sink.port, url), n)
            messages = prebuilt_messages(w)
            size = sum(len(m) for _, m in messages) / len(messages)
            envelope_from = sender(w)
            eml = folder / "one.eml"
            # smtp-source appends CRLF to every line of its -F file: give it LF line ends.
            eml.write_bytes(messages[1][1].replace(b"\r\n", b"\n"))
            # As `serve` does once started (and every helper after its imports): what the set-up
            # built is kept out of the collector's sight, for every contender alike.
            gc.collect()
            gc.freeze()
            cores = os.cpu_count() or 1
            # The runner's own choice (``wiring.delivery_helpers``), not a copy of its rule.
            workers = wiring.delivery_helpers(w.settings, w.plan, system_clock).processes
            print(
                f"{n} personalised invitations, mean {size / 1024:.1f} KiB, {CONNECTIONS} "
                f"connections each, ledger on {args.database}, {os.cpu_count()} cores, "
                f"session-bot processes by default: {workers} (the sink is on this host)"
            )
            contenders: dict[str, Callable[[], float]] = {}
            if postfix is not None and sink.name == "postfix smtp-sink":
                contenders["smtp-source"] = lambda: run_smtp_source(
                    postfix, sink.port, eml, n, envelope_from
                )
            contenders["pipelined"] = lambda: run_pipelined(messages, sink.port, envelope_from)
            contenders["smtplib"] = lambda: run_smtplib(messages, sink.port, envelope_from)
            sequence = iter(range(1, 10**6))
            contenders["session-bot"] = lambda: run_session_bot(w, next(sequence), None, n)
            if workers > 1:
                contenders["session-bot-1p"] = lambda: run_session_bot(w, next(sequence), 1, n)
            if workers < cores:
                contenders["session-bot-all-cores"] = lambda: run_session_bot(
                    w, next(sequence), cores, n
                )
            # Warm-up: connections, caches, the sink's first sessions.
            run_pipelined(messages[:400], sink.port, envelope_from)
            run_smtplib(messages[:400], sink.port, envelope_from)
            measured = rounds(contenders, n, args.rounds, sink.process.pid)
            rates = measured.rates
            w.store.close()
        finally:
            if drop is not None:
                drop()
        messages.clear()
        rss: dict[int, float] = {}
        for size_n in (int(s) for s in args.rss_sizes.split(",") if s):
            started = time.perf_counter()
            rss[size_n], sent = measure_rss(size_n, sink.port)
            print(f"peak RSS delivering {size_n} recipients in a fresh process (and its workers): "
                  f"{rss[size_n]:.1f} MiB ({sent} sent, {time.perf_counter() - started:.0f} s)")  # fmt: skip
    med = {name: statistics.median(r) for name, r in rates.items()}

    def ratio(to: str, of: str = "session-bot") -> float | None:
        if to not in rates:
            return None
        return round(statistics.median(a / b for a, b in zip(rates[of], rates[to], strict=True)), 3)

    cpu = {name: round(statistics.median(v), 1) for name, v in measured.cpu_us.items()}
    sink_cpu = {name: round(statistics.median(v), 1) for name, v in measured.sink_us.items()}
    for name in rates:
        print(
            f"median {name}: {med[name]:.0f}/s; CPU a message: {cpu[name]:.0f} µs, "
            f"the sink's {sink_cpu[name]:.0f} µs"
        )
    for to in ("smtp-source", "pipelined", "smtplib"):
        if to in rates:
            print(f"session-bot / {to}: {ratio(to):.2f}")
        else:
            print(f"session-bot / {to}: not measured")
    sizes = sorted(rss)
    result = {
        "rate_session_bot": round(med["session-bot"], 1),
        "rate_session_bot_1p": round(med["session-bot-1p"], 1) if "session-bot-1p" in med else None,
        "rate_session_bot_all_cores": round(med["session-bot-all-cores"], 1)
        if "session-bot-all-cores" in med
        else None,
        "rate_smtp_source": round(med["smtp-source"], 1) if "smtp-source" in med else None,
        "rate_pipelined": round(med["pipelined"], 1),
        "rate_smtplib": round(med["smtplib"], 1),
        "ratio_vs_smtp_source": ratio("smtp-source"),
        "ratio_vs_pipelined": ratio("pipelined"),
        "ratio_vs_smtplib": ratio("smtplib"),
        "ratio_1p_vs_smtp_source": ratio("smtp-source", "session-bot-1p")
        if "session-bot-1p" in rates
        else None,
        "workers": workers,
        "connections": CONNECTIONS,
        "recipients": n,
        "rounds": args.rounds,
        "database": args.database,
        "sink": sink.name,
        "rss_1k_mb": rss.get(1000),
        "rss_100k_mb": rss.get(100_000),
        "rss_ratio": round(rss[sizes[-1]] / rss[sizes[0]], 3) if len(sizes) > 1 else None,
        "cpu_us_per_message": cpu,
        "sink_cpu_us_per_message": sink_cpu,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
