"""`POST /subscribe` under a bounded load, against the same FastAPI + uvicorn stack with an empty
route (issue 18).

Starts a real `session-bot serve` (SQLite, the Maildir outbox: the embedded default deployment)
in a throw-away directory, and a reference process serving the same stack (FastAPI, uvicorn in
a thread with the daemon's settings) whose `POST /subscribe` does nothing. Each round sends
``--requests`` form posts at ``--concurrency`` to each, every post a new visitor: a new
connection, a distinct address and a distinct client address (X-Forwarded-For, believed because
the daemon runs with SESSION_BOT_TRUSTED_PROXIES=127.0.0.1). Rounds alternate which server goes
first. The client is a plain asyncio HTTP/1.1 client; its CPU share during the empty-route
rounds shows whether it, not the server, is the limit.

After each /subscribe round the next waits until the outbox holds every mail asked for so far
(the mails go out after the answers, and a backlog being written would slow the next round,
the empty route's too); how long the last mail took is reported. Afterwards the outbox is
counted: every address must have its confirmation exactly once. Then
the rate-limit bookkeeping is measured at 4k and 400k live counters (``bench/rate_limit.py``).

Targets: /subscribe >= 0.4x the empty route's requests/s, p99 <= 250 ms, rate-limit cost flat.

    .venv/bin/python bench/web.py [--requests 2000] [--concurrency 20] [--rounds 3]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _procs import cpu_seconds, daemon_env

HERE = Path(__file__).resolve().parent
RPS_TARGET = 0.4
P99_TARGET_MS = 250.0


class ServerProcess:
    """A server subprocess that logs ``listening on http://host:port`` once it is up."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.url = ""
        self._up = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "listening on http://" in line and not self.url:
                self.url = line.split("listening on ", 1)[1].split()[0].rstrip(".,")
            if self.url and ("next due" in line or "reference ready" in line):
                self._up.set()

    def wait_ready(self, timeout: float = 60) -> None:
        if not self._up.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise SystemExit("server did not start:\n" + "\n".join(self.lines[-30:]))

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_daemon(workdir: Path) -> ServerProcess:
    env = daemon_env(workdir, SESSION_BOT_TRUSTED_PROXIES="127.0.0.1")
    cmd = [sys.executable, "-m", "session_bot.cli", "serve", "--port", "0"]
    return ServerProcess(cmd, workdir, env)


def start_reference(workdir: Path) -> ServerProcess:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-empty"]
    return ServerProcess(cmd, workdir, dict(os.environ))


def serve_empty() -> None:
    """The reference: the daemon's web stack (uvicorn in a thread, the same config) serving an
    empty `POST /subscribe`, a plain (threadpool) route as the real one is."""
    import socket

    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    from session_bot.daemon.lifecycle import QuietServer

    app = FastAPI()

    @app.post("/subscribe")
    def subscribe() -> HTMLResponse:
        return HTMLResponse("")

    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=3,
        proxy_headers=False,
    )
    server = QuietServer(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web")
    thread.start()
    while not server.started:
        time.sleep(0.05)
    print(f"listening on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    print("reference ready", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.should_exit = True
    thread.join(timeout=5)


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def client_ip(i: int) -> str:
    """A distinct address per visitor, from the benchmarking range 198.18.0.0/15 (only ever a
    header value here: no traffic goes there)."""
    return f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}"


def address(tag: str, i: int) -> str:
    return f"bench-{tag}-{i:06d}@example.org"


def form_request(host: str, port: int, tag: str, i: int, ip: int) -> bytes:
    name = "Jörg Müller" if i % 2 else "Ana Łukasiewicz"
    body = urlencode(
        {"email": address(tag, i), "name": name, "language": "de" if i % 3 else "en"}
    ).encode()
    head = (
        f"POST /subscribe HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nX-Forwarded-For: {client_ip(ip)}\r\n"
        "User-Agent: bench-web/1\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def one(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if length is None:
            await reader.read()
        else:
            await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def drive(host: str, port: int, tag: str, ip_base: int, count: int, conc: int) -> Load:
    load = Load()
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            request = form_request(host, port, tag, i, ip_base + i)
            t0 = time.perf_counter()
            try:
                status = await one(host, port, request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                load.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            load.latencies_ms.append((time.perf_counter() - t0) * 1000)
            load.statuses[status] = load.statuses.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    load.seconds = time.perf_counter() - t0
    return load


def run_load(server: ServerProcess, tag: str, ip_base: int, count: int, conc: int) -> Load:
    """``count`` visitors ``tag``-0.. from client addresses ``ip_base``.. (distinct per run)."""
    host, port = server.host_port
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    server0 = cpu_seconds(server.proc.pid)
    load = asyncio.run(drive(host, port, tag, ip_base, count, conc))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    load.client_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    load.server_cpu = cpu_seconds(server.proc.pid) - server0
    return load


def profiler(path: Path | None, rnd: int, server: ServerProcess) -> subprocess.Popen[bytes] | None:
    """py-spy (if asked for and installed) sampling the thread holding the GIL in a round."""
    if path is None:
        return None
    spy = Path(sys.executable).parent / "py-spy"
    out = path.with_name(f"{path.stem}-{rnd}{path.suffix}")
    cmd = [str(spy), "record", "-p", str(server.proc.pid), "-o", str(out), "-f", "raw"]
    proc = subprocess.Popen(
        [*cmd, "-r", "250", "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return proc


# --- the outbox --------------------------------------------------------------------------------


def outbox_recipients(outbox: Path) -> list[str]:
    found = []
    for sub in ("new", "cur"):
        folder = outbox / sub
        if not folder.is_dir():
            continue
        for file in folder.iterdir():
            with file.open("rb") as f:
                for raw in f:
                    if raw.startswith(b"Delivered-To:"):
                        found.append(raw.split(b":", 1)[1].strip().decode())
                        break
                    if raw in (b"\r\n", b"\n"):
                        break
    return found


def settle_outbox(outbox: Path, mails: int, timeout: float = 120) -> float:
    """Waits until the outbox holds ``mails`` messages, so the mails a /subscribe round left
    to be sent after its answers do not load the machine while the next round is measured.
    Returns the seconds waited: how long the last mail came after the last answer."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        folders = [outbox / sub for sub in ("new", "cur")]
        if sum(len(os.listdir(f)) for f in folders if f.is_dir()) >= mails:
            break
        time.sleep(0.02)
    return time.monotonic() - started


def count_outbox(outbox: Path, expected: set[str], timeout: float = 120) -> dict[str, int]:
    """Waits until the outbox stops growing (the sends after the responses), then counts."""
    deadline = time.monotonic() + timeout
    last, still = -1, 0
    while time.monotonic() < deadline:
        n = len(outbox_recipients(outbox))
        if n >= len(expected):
            still += 1
        if n == last and n >= len(expected) and still >= 2:
            break
        last = n
        time.sleep(0.5)
    got = outbox_recipients(outbox)
    seen: dict[str, int] = {}
    for r in got:
        seen[r] = seen.get(r, 0) + 1
    return {
        "expected": len(expected),
        "found": len(got),
        "missing": len(expected - seen.keys()),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "unexpected": len(seen.keys() - expected),
    }


# --- the rate limit ----------------------------------------------------------------------------


def rate_limit_flatness(hits: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    import rate_limit

    url = "sqlite:///{tmp}/bench.db"
    small, small_clearing = rate_limit.measure_both(url, 4_000, hits)
    large, large_clearing = rate_limit.measure_both(url, 400_000, hits)
    return {
        "ms_4k": small,
        "ms_400k": large,
        "ratio": large / small,
        "clearing_ms_4k": small_clearing,
        "clearing_ms_400k": large_clearing,
        "clearing_ratio": large_clearing / small_clearing,
    }


# --- main --------------------------------------------------------------------------------------


def summary(loads: list[Load]) -> dict[str, float]:
    all_ms = [ms for load in loads for ms in load.latencies_ms]
    merged = Load(latencies_ms=all_ms)
    return {
        "rps": statistics.median(load.rps for load in loads),
        "p50_ms": merged.pct(0.50),
        "p99_ms": merged.pct(0.99),
        "client_cpu_share": sum(x.client_cpu for x in loads) / sum(x.seconds for x in loads),
        "server_cpu_share": sum(x.server_cpu for x in loads) / sum(x.seconds for x in loads),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="per server and round")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100, help="per server, not measured")
    parser.add_argument("--rate-limit-hits", type=int, default=300)
    parser.add_argument(
        "--profile", type=Path, help="py-spy's collapsed stacks of the daemon's rounds here"
    )
    parser.add_argument("--serve-empty", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_empty:
        serve_empty()
        return 0

    n, conc = args.requests, args.concurrency
    loads: dict[str, list[Load]] = {"empty": [], "subscribe": []}
    mail_lags: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        daemon = start_daemon(work)
        reference = start_reference(work)
        try:
            daemon.wait_ready()
            reference.wait_ready()
            servers = {"empty": reference, "subscribe": daemon}
            for name, server in servers.items():
                warm = run_load(server, "w", 0, args.warmup, conc)
                if warm.errors or set(warm.statuses) != {200}:
                    raise SystemExit(f"warm-up of {name}: {warm.statuses} {warm.errors[:3]}")
            outbox_dir, mails_due = work / "var" / "outbox", args.warmup
            settle_outbox(outbox_dir, mails_due)
            for rnd in range(args.rounds):
                order = ["empty", "subscribe"] if rnd % 2 == 0 else ["subscribe", "empty"]
                for name in order:
                    ip_base = args.warmup + rnd * n
                    spy = (
                        profiler(args.profile, rnd, servers[name]) if name == "subscribe" else None
                    )
                    load = run_load(servers[name], f"r{rnd}", ip_base, n, conc)
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(timeout=60)
                    loads[name].append(load)
                    lag = ""
                    if name == "subscribe":
                        mails_due += n
                        mail_lags.append(settle_outbox(outbox_dir, mails_due))
                        lag = f", last mail {mail_lags[-1]:.1f} s after the last answer"
                    print(
                        f"round {rnd + 1} {name:9s}: {load.rps:7.0f} req/s, p50 "
                        f"{load.pct(0.5):6.1f} ms, p99 {load.pct(0.99):7.1f} ms, statuses "
                        f"{load.statuses}, errors {len(load.errors)}, client CPU "
                        f"{load.client_cpu / load.seconds:.0%}, server CPU "
                        f"{load.server_cpu / load.seconds:.0%}{lag}",
                        flush=True,
                    )
            expected = {address("w", i) for i in range(args.warmup)}
            expected |= {address(f"r{r}", i) for r in range(args.rounds) for i in range(n)}
            outbox = count_outbox(work / "var" / "outbox", expected)
        finally:
            daemon_exit = daemon.stop()
            reference.stop()
    errors = sum(len(x.errors) for xs in loads.values() for x in xs)
    not_ok = sum(c for xs in loads.values() for x in xs for s, c in x.statuses.items() if s != 200)
    empty, sub = summary(loads["empty"]), summary(loads["subscribe"])
    rl = rate_limit_flatness(args.rate_limit_hits)
    rps_ratio = sub["rps"] / empty["rps"]
    for name, s in (("empty route", empty), ("/subscribe", sub)):
        print(
            f"{name:12s}: {s['rps']:7.0f} req/s (median of rounds), p50 {s['p50_ms']:.1f} ms, "
            f"p99 {s['p99_ms']:.1f} ms; client CPU {s['client_cpu_share']:.0%}, server CPU "
            f"{s['server_cpu_share']:.0%} of one core"
        )
    print(
        f"ratio /subscribe / empty: {rps_ratio:.3f}x requests/s (target >= {RPS_TARGET}), "
        f"p99 {sub['p99_ms']:.0f} ms (target <= {P99_TARGET_MS:.0f})"
    )
    print(
        f"outbox: {outbox['found']} mails for {outbox['expected']} addresses, "
        f"{outbox['missing']} missing, {outbox['duplicates']} duplicates, "
        f"{outbox['unexpected']} unexpected; daemon exit {daemon_exit}"
    )
    print(
        f"rate limit, new-window hit: {rl['ms_4k']:.3f} ms at 4k live counters, "
        f"{rl['ms_400k']:.3f} ms at 400k (ratio {rl['ratio']:.2f}); a hit that clears "
        f"expired ones: {rl['clearing_ms_4k']:.3f} ms, {rl['clearing_ms_400k']:.3f} ms "
        f"(ratio {rl['clearing_ratio']:.2f})"
    )
    once = outbox["missing"] == outbox["duplicates"] == outbox["unexpected"] == 0
    result: dict[str, Any] = {
        "requests": n,
        "concurrency": conc,
        "rounds": args.rounds,
        "empty_rps": round(empty["rps"], 1),
        "empty_p50_ms": round(empty["p50_ms"], 2),
        "empty_p99_ms": round(empty["p99_ms"], 2),
        "subscribe_rps": round(sub["rps"], 1),
        "subscribe_p50_ms": round(sub["p50_ms"], 2),
        "subscribe_p99_ms": round(sub["p99_ms"], 2),
        "rps_ratio": round(rps_ratio, 3),
        "p99_ratio": round(sub["p99_ms"] / empty["p99_ms"], 2),
        "client_cpu_share_empty": round(empty["client_cpu_share"], 2),
        "server_cpu_share_subscribe": round(sub["server_cpu_share"], 2),
        "errors": errors,
        "non_200": not_ok,
        "outbox": outbox,
        "confirmations_exactly_once": once,
        "mail_lag_s_max": round(max(mail_lags, default=0.0), 2),
        "rate_limit_ms_4k": round(rl["ms_4k"], 3),
        "rate_limit_ms_400k": round(rl["ms_400k"], 3),
        "rate_limit_ratio": round(rl["ratio"], 2),
        "rate_limit_clearing_ms_4k": round(rl["clearing_ms_4k"], 3),
        "rate_limit_clearing_ms_400k": round(rl["clearing_ms_400k"], 3),
        "rate_limit_clearing_ratio": round(rl["clearing_ratio"], 2),
        "target_rps_ratio_met": rps_ratio >= RPS_TARGET,
        "target_p99_met": sub["p99_ms"] <= P99_TARGET_MS,
        "target_rate_limit_flat": max(rl["ratio"], rl["clearing_ratio"]) <= 1.5,
    }
    print(json.dumps(result))
    return 0 if once and not errors and not not_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
