"""kv.set_default: several processes fixing a value at once agree on one, none fails (the
calendar domain of four parallel `deliver` workers used to collide on the key)."""

from __future__ import annotations

import threading

from session_bot.adapters.db.store import Store


def test_concurrent_set_default_agrees_on_one_value(store: Store) -> None:
    stores = [Store(store.url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    answers: list[str] = []
    errors: list[BaseException] = []

    def fix(n: int) -> None:
        try:
            barrier.wait()
            answers.append(stores[n].kv.set_default("calendar.uid_domain:x", f"domain-{n}"))
        except BaseException as exc:  # the test wants to see any failure of any thread
            errors.append(exc)

    threads = [threading.Thread(target=fix, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    assert len(set(answers)) == 1 and len(answers) == len(stores)
    assert store.kv.get("calendar.uid_domain:x") == answers[0]
    assert store.kv.set_default("calendar.uid_domain:x", "other") == answers[0]
