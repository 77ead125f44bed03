"""A second store in a process that has the SQLite database open must not cost the first one
its locks: closing any descriptor of a file drops all of a process's POSIX locks on it, and a
process without them lets the next one that closes the database delete the WAL under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from session_bot.adapters.db.store import Store

# Another process opens the database, reads, and closes it: the last one out, as it believes.
_OTHER = """
import sys
from session_bot.adapters.db.store import Store
s = Store(sys.argv[1])
s.ensure_schema()
print(s.kv.get("written") or "")
s.close()
"""


def _other_process_reads(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER, url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_second_store_keeps_the_first_ones_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'session-bot.db'}"
    first = Store(url)
    first.upgrade()
    first.kv.set("written", "before")
    # The daemon with the plan in the database: its plan source opens a store of its own.
    second = Store(url)
    second.ensure_schema()
    try:
        first.kv.set("written", "one")
        assert _other_process_reads(url) == "one"
        first.kv.set("written", "two")  # the WAL the other process must not have deleted
        assert first.kv.get("written") == "two"
        assert _other_process_reads(url) == "two"
        assert second.kv.get("written") == "two"
    finally:
        second.close()
        first.close()
