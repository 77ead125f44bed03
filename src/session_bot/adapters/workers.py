"""Worker processes for a large mailing: ``app.ports.delivery.DeliveryHelpers`` on this machine.

Each helper is a fresh ``python -m session_bot.adapters.workers`` (not ``multiprocessing``: that
re-runs the caller's main script in every child, and a daemon's threads must not be forked). It
reads ``(target, setup, job)`` pickled from its stdin and runs ``target(setup, job, stop)``, which
opens its own store and transport (``wiring``) and personalises with the caller's ready-made
``job.personalise`` (nothing is rendered twice), then writes its ``DeliveryReport`` (or
why it failed) pickled to its stdout. ``stop`` is set when its stdin closes — the caller stops
it (SIGTERM, lost leadership, Ctrl-C) or the caller died — or on SIGTERM: the helper finishes
the message in flight, like the caller's own connections. SIGINT is left to the caller.

A fresh helper spends about half a second of CPU importing its modules, as long as the caller
needs for thousands of messages. So after a mailing that used helpers, as many spares are started
with the target's module imported, waiting for an order: the next large mailing of this process
(the daemon's next run, a follow-up) starts at once. A spare nobody asks for ends after
``SPARE_IDLE_SECONDS``; a process that never sends a large mailing never starts one.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from session_bot.app.delivery_policy import DeliveryReport
from session_bot.app.ports.delivery import helper_name
from session_bot.core.errors import MailError, SessionBotError
from session_bot.core.records import DeliveryRow

log = logging.getLogger("session_bot.delivery")

SPARE_IDLE_SECONDS = 900.0
# Helpers are bulk work: at a lower priority than their caller (the daemon's web pages, the
# console) and than a mail server on the same host that must take what they send. Only when the
# cores are short does it matter: measured with two processes and smtp-sink on 2 cores, the
# sink got the CPU when a message came, instead of after a helper's time slice (≈ 10k → ≈ 12k
# messages/s). An idle core is used as fully as before.
HELPER_NICENESS = 10


@dataclass(frozen=True)
class HelperJob:
    mailing_id: int
    worker: str
    connections: int
    personalise: Callable[[DeliveryRow], bytes]  # the caller's, ready-made (it pickles)
    log_level: int = logging.WARNING


# target(setup, job, stop): a module-level function, so that it pickles by name.
HelperTarget = Callable[[Any, HelperJob, threading.Event], DeliveryReport]
_Outcome = tuple[DeliveryReport | None, str, str]  # report, error class, error message


class ProcessHelpers:
    """Starts helpers that each run ``target(setup, job, stop)`` (``wiring.deliver_as_helper``)."""

    def __init__(self, target: HelperTarget, setup: Any, *, processes: int, threshold: int) -> None:
        self._target = target
        self._setup = setup
        self.processes = processes
        self.threshold = threshold
        self.spare_idle = SPARE_IDLE_SECONDS

    def start(
        self,
        mailing_id: int,
        count: int,
        *,
        worker: str,
        connections: int,
        personalise: Callable[[DeliveryRow], bytes],
    ) -> ProcessHelperRun:
        level = logging.getLogger("session_bot").getEffectiveLevel()
        preload = self._target.__module__
        run = ProcessHelperRun(lambda: SPARES.top_up(count, preload, self.spare_idle))
        try:
            for index in range(1, count + 1):
                job = HelperJob(
                    mailing_id, helper_name(worker, index), connections, personalise, level
                )
                process = SPARES.take(preload, self.spare_idle)
                run.add(job, process, pickle.dumps((self._target, self._setup, job)))
        except BaseException:
            run.stop()
            raise
        return run


def _spawn(preload: str, idle: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", __name__, preload, str(idle)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


class _Spares:
    """Helpers started ahead, their modules imported, waiting for an order (one pool per
    process: runners come and go, the spares outlive them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[str, subprocess.Popen[bytes]]] = []

    def take(self, preload: str, idle: float) -> subprocess.Popen[bytes]:
        """A waiting spare for ``preload``, else a helper started now."""
        with self._lock:
            for entry in list(self._idle):
                self._idle.remove(entry)
                if entry[0] == preload and entry[1].poll() is None:
                    return entry[1]
                _discard(entry[1])
        return _spawn(preload, idle)

    def top_up(self, count: int, preload: str, idle: float) -> None:
        with self._lock:
            for entry in list(self._idle):
                if entry[1].poll() is not None:
                    self._idle.remove(entry)
                    _discard(entry[1])
            while len(self._idle) < count:
                process = _spawn(preload, idle)
                self._idle.append((preload, process))
                # Reaps a spare that ends unused, so no zombie waits for the next mailing.
                threading.Thread(
                    target=self._reap, args=(process,), daemon=True, name="helper-spare"
                ).start()

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        with self._lock:
            if any(p is process for _, p in self._idle):
                self._idle = [e for e in self._idle if e[1] is not process]
                _discard(process)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for _, p in self._idle]

    def close(self) -> None:
        """End every spare (their stdin closes: each exits)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, process in idle:
            _discard(process)
            process.wait()


def _discard(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


SPARES = _Spares()


class ProcessHelperRun:
    """The helpers of one mailing; ``wait`` collects what each reported."""

    def __init__(self, refill: Callable[[], None] = lambda: None) -> None:
        self._helpers: list[tuple[HelperJob, subprocess.Popen[bytes], threading.Thread]] = []
        self._output: dict[str, bytes] = {}
        self._refill = refill

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p, _ in self._helpers]

    def add(self, job: HelperJob, process: subprocess.Popen[bytes], order: bytes) -> None:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(order)
        process.stdin.flush()  # stdin stays open: closing it is the signal to stop
        out = process.stdout
        reader = threading.Thread(
            target=self._read, args=(job.worker, out), daemon=True, name=f"{job.worker}-out"
        )
        reader.start()
        self._helpers.append((job, process, reader))

    def _read(self, worker: str, out: IO[bytes]) -> None:
        # Read as it comes, so a long report never blocks the helper on a full pipe.
        self._output[worker] = out.read()

    def stop(self) -> None:
        for _, process, _ in self._helpers:
            if process.stdin is not None and not process.stdin.closed:
                with contextlib.suppress(OSError):  # it is gone already
                    process.stdin.close()

    def wait(self, stopping: threading.Event | None = None) -> list[DeliveryReport]:
        reports: list[DeliveryReport] = []
        failures: list[SessionBotError] = []
        for job, process, reader in self._helpers:
            while reader.is_alive():
                if stopping is not None and stopping.is_set():
                    self.stop()
                reader.join(0.2)
            code = process.wait()
            outcome = self._outcome(job, code)
            if outcome[0] is not None:
                reports.append(outcome[0])
                continue
            text = f"helper process {job.worker} of mailing {job.mailing_id}: {outcome[2]}"
            log.error("%s", text)
            failures.append(MailError(text) if outcome[1] == "MailError" else SessionBotError(text))
        self.stop()
        if failures:
            raise failures[0]
        if not (stopping is not None and stopping.is_set()):
            self._refill()  # after the mailing: the spares' imports never slow it down
        return reports

    def _outcome(self, job: HelperJob, code: int) -> _Outcome:
        data = self._output.get(job.worker, b"")
        try:
            outcome: _Outcome = pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, ValueError):
            return None, "exit", f"ended with exit code {code} before it reported"
        return outcome


def _child(preload: str, idle: float) -> None:
    """A helper's life: import, wait for the order, work until done or told to stop, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, which stops us
    with contextlib.suppress(OSError):
        os.nice(HELPER_NICENESS)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the report
    importlib.import_module(preload)
    # What the imports built stays for the helper's life: out of the collector's sight, so no
    # full collection walks it mid-mailing (measured: one took 72 ms, a tenth of a second of
    # 10,000 messages, with every connection of the process waiting).
    gc.collect()
    gc.freeze()
    stdin = sys.stdin.buffer
    if not select.select([stdin], [], [], idle)[0]:
        os._exit(0)  # a spare nobody needed
    try:
        target, setup, job = pickle.load(stdin)
    except EOFError:
        os._exit(0)  # the caller ended without an order for us
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch() -> None:
        stdin.read()  # returns when the caller closes our stdin, or dies
        stop.set()

    threading.Thread(target=watch, daemon=True, name="helper-stop").start()
    outcome: _Outcome
    try:
        outcome = (target(setup, job, stop), "", "")
    except BaseException as exc:  # handed to the caller, which raises it as ours
        outcome = (None, type(exc).__name__, str(exc) or repr(exc))
    out.write(pickle.dumps(outcome))
    out.close()
    logging.shutdown()
    # Not a normal exit: the watcher thread is blocked reading stdin, which finalisation trips on.
    os._exit(0)


if __name__ == "__main__":
    _child(sys.argv[1], float(sys.argv[2]))
