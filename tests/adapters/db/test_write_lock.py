"""The SQLite writers' lock across processes: a writer waits for another process's writer and
goes on the moment it ends (or dies), without SQLite's busy handler."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.write_lock import LOCK_SUFFIX, WriteLock

HOLDER = """
import sys
from pathlib import Path
from session_bot.adapters.db.write_lock import WriteLock
lock = WriteLock(Path(sys.argv[1]), 10.0)
with lock:
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def holder(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def enter_in_thread(lock: WriteLock) -> tuple[threading.Event, threading.Thread]:
    entered = threading.Event()

    def take() -> None:
        with lock:
            entered.set()

    thread = threading.Thread(target=take)
    thread.start()
    return entered, thread


def test_a_writer_waits_for_another_process_and_goes_on_when_it_ends(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    other = holder(db)
    lock = WriteLock(db, 10.0)
    entered, thread = enter_in_thread(lock)
    assert not entered.wait(0.3)  # the other process writes
    assert other.stdin is not None and other.stdout is not None
    other.stdin.write("\n")
    other.stdin.flush()
    assert entered.wait(5)
    thread.join()
    assert other.wait(5) == 0
    assert (db.with_name(db.name + LOCK_SUFFIX).stat().st_mode & 0o777) == 0o600
    lock.close()


def test_a_writer_that_dies_holding_the_lock_frees_it(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    other = holder(db)
    lock = WriteLock(db, 10.0)
    entered, thread = enter_in_thread(lock)
    assert not entered.wait(0.2)
    other.kill()
    other.wait()
    assert entered.wait(5)
    thread.join()
    lock.close()


def test_a_writer_that_never_ends_is_left_to_sqlite_after_the_wait(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    other = holder(db)
    lock = WriteLock(db, 0.2)
    entered, thread = enter_in_thread(lock)
    assert entered.wait(5)  # it goes on to SQLite, whose busy handler reports a stuck writer
    thread.join()
    other.kill()
    other.wait()
    lock.close()


def test_without_a_lock_file_the_writers_of_one_process_still_take_turns(tmp_path: Path) -> None:
    nowhere = tmp_path / "missing" / "bot.db"  # the lock file cannot be made (as read-only)
    lock = WriteLock(nowhere, 10.0)
    with lock:
        entered, thread = enter_in_thread(lock)
        assert not entered.wait(0.2)
    assert entered.wait(5)
    thread.join()
    assert not nowhere.parent.exists()


def test_two_processes_write_the_same_database_through_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    db = Database(url)
    with db.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (who TEXT, i INTEGER)")
    script = (
        "import sys\nfrom session_bot.adapters.db.database import Database\n"
        "db = Database(sys.argv[1])\n"
        "for i in range(300):\n"
        "    with db.writer(), db.begin() as c:\n"
        "        c.exec_driver_sql('INSERT INTO t VALUES (?, ?)', ('other', i))\n"
        "db.close()\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script, url])
    for i in range(300):
        with db.writer(), db.begin() as c:
            c.exec_driver_sql("INSERT INTO t VALUES (?, ?)", ("mine", i))
    assert other.wait(60) == 0
    with db.connect() as c:
        counts = dict(c.exec_driver_sql("SELECT who, count(*) FROM t GROUP BY who").all())
    assert counts == {"mine": 300, "other": 300}
    db.close()
