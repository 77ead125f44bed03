"""Worker processes for a large mailing: ``app.ports.delivery.DeliveryHelpers`` on this machine.

Each helper is a fresh ``python -m session_bot.adapters.workers`` (not ``multiprocessing``: that
re-runs the caller's main script in every child, and a daemon's threads must not be forked). It
reads ``(target, setup, job)`` pickled from its stdin and runs ``target(setup, job, stop)``, which
builds its own store, renderer and transport (``wiring``), then writes its ``DeliveryReport`` (or
why it failed) pickled to its stdout. ``stop`` is set when its stdin closes — the caller stops
it (SIGTERM, lost leadership, Ctrl-C) or the caller died — or on SIGTERM: the helper finishes
the message in flight, like the caller's own connections. SIGINT is left to the caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
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

log = logging.getLogger("session_bot.delivery")


@dataclass(frozen=True)
class HelperJob:
    mailing_id: int
    worker: str
    connections: int
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

    def start(
        self, mailing_id: int, count: int, *, worker: str, connections: int
    ) -> ProcessHelperRun:
        level = logging.getLogger("session_bot").getEffectiveLevel()
        run = ProcessHelperRun()
        try:
            for index in range(1, count + 1):
                job = HelperJob(mailing_id, helper_name(worker, index), connections, level)
                run.add(job, pickle.dumps((self._target, self._setup, job)))
        except BaseException:
            run.stop()
            raise
        return run


class ProcessHelperRun:
    """The helpers of one mailing; ``wait`` collects what each reported."""

    def __init__(self) -> None:
        self._helpers: list[tuple[HelperJob, subprocess.Popen[bytes], threading.Thread]] = []
        self._output: dict[str, bytes] = {}

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p, _ in self._helpers]

    def add(self, job: HelperJob, order: bytes) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
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
        return reports

    def _outcome(self, job: HelperJob, code: int) -> _Outcome:
        data = self._output.get(job.worker, b"")
        try:
            outcome: _Outcome = pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, ValueError):
            return None, "exit", f"ended with exit code {code} before it reported"
        return outcome


def _child() -> None:
    """A helper's life: read the order, work until done or told to stop, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, which stops us
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the report
    stdin = sys.stdin.buffer
    target, setup, job = pickle.load(stdin)
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
    _child()
