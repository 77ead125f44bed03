"""The daemon at rest: CPU over an idle minute, memory, and the start-up time of `--help`.

Starts `session-bot serve` twice in throw-away directories, each with a plan whose first session
is weeks ahead (so nothing falls due): once as in production (Zoom credentials set; they are
never used because nothing is due) and once with `--sandbox` (which adds the in-process Zoom
sandbox). After start-up settles, it reads each process's CPU time from /proc over the idle
window. Targets: idle CPU <= 0.1 % of one core, `session-bot --help` <= 0.3 s.

Usage: python bench/idle.py [--seconds 60]
The last line printed is one JSON object: idle_cpu_percent, rss_mb, help_seconds (production
daemon), plus the sandbox daemon's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _procs import cpu_seconds, daemon_env, rss_mb

BIN = Path(sys.executable).parent


class Daemon:
    def __init__(self, workdir: Path, *, sandbox: bool) -> None:
        env = daemon_env(workdir, zoom=not sandbox)
        cmd = [sys.executable, "-m", "session_bot.cli", "serve", "--port", "0"]
        self.proc = subprocess.Popen(
            cmd + (["--sandbox"] if sandbox else []),
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any("next due:" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("daemon did not start:\n" + "\n".join(self.lines))
            time.sleep(0.1)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=30)


def help_seconds(runs: int = 7) -> float:
    exe = BIN / "session-bot"
    cmd = (
        [str(exe), "--help"]
        if exe.exists()
        else [sys.executable, "-m", "session_bot.cli", "--help"]
    )
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the idle window")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as prod_dir, tempfile.TemporaryDirectory() as sb_dir:
        daemons = {
            "production": Daemon(Path(prod_dir), sandbox=False),
            "sandbox": Daemon(Path(sb_dir), sandbox=True),
        }
        try:
            for d in daemons.values():
                d.wait_ready()
            time.sleep(3)  # let start-up work (the catch-up run, first imports) settle
            before = {k: cpu_seconds(d.proc.pid) for k, d in daemons.items()}
            t0 = time.monotonic()
            time.sleep(args.seconds)
            wall = time.monotonic() - t0
            used = {k: cpu_seconds(d.proc.pid) - before[k] for k, d in daemons.items()}
            rss = {k: rss_mb(d.proc.pid) for k, d in daemons.items()}
        finally:
            codes = {k: d.stop() for k, d in daemons.items()}
    helps = help_seconds()

    result: dict[str, Any] = {}
    for name in daemons:
        pct = 100 * used[name] / wall
        print(
            f"{name:10s} idle CPU {pct:.3f} % of one core over {wall:.0f} s "
            f"({used[name]:.2f} s CPU), RSS {rss[name]:.1f} MB, exit {codes[name]}"
        )
        suffix = "" if name == "production" else "_sandbox"
        result[f"idle_cpu_percent{suffix}"] = round(pct, 4)
        result[f"rss_mb{suffix}"] = round(rss[name], 1)
    print(f"session-bot --help: {helps:.3f} s (median of 7)")
    result["help_seconds"] = round(helps, 3)
    result["window_seconds"] = round(wall, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
