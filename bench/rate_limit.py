"""The subscribe form's rate-limit bookkeeping at 4k and at 400k live counter rows.

A hit is one upsert; at most once a minute a hit also clears the expired counters. Both must
cost the same whatever number of live counters the day has produced (issue 18): the median hit,
and the median hit that clears (a minute apart, so each clears). Prints the figures and ends
with one JSON line.

    .venv/bin/python bench/rate_limit.py [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time

from sqlalchemy import insert

from session_bot.adapters.db.schema import kv
from session_bot.adapters.db.store import Store

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=1)


def fill(store: Store, rows: int) -> None:
    """``rows`` live counters (clients seen within the hour), as a busy day leaves them."""
    batch = [
        {"key": f"rl:fill-{i:07d}", "value": "1", "expires_at": NOW + WINDOW} for i in range(rows)
    ]
    with store.db.begin() as c:
        for start in range(0, rows, 10_000):
            c.execute(insert(kv), batch[start : start + 10_000])


def per_hit_ms(store: Store, hits: int) -> float:
    """Median milliseconds of a hit that opens a new window (a new client)."""
    times = []
    for i in range(hits):
        t0 = time.perf_counter()
        store.counters.hit_rate_limit(f"new-client-{i}", NOW, WINDOW, 10)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def clearing_hit_ms(store: Store, hits: int) -> float:
    """Median milliseconds of a hit that also clears expired counters (one a minute, within
    the hour in which the filled counters stay live)."""
    times = []
    for i in range(min(hits, 50)):
        now = NOW + dt.timedelta(seconds=61 * (i + 1))
        t0 = time.perf_counter()
        store.counters.hit_rate_limit(f"clearing-client-{i}", now, WINDOW, 10)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure_both(url_for: str, rows: int, hits: int) -> tuple[float, float]:
    """(median hit, median clearing hit) in milliseconds with ``rows`` live counters."""
    with tempfile.TemporaryDirectory() as tmp:
        url = url_for.format(tmp=tmp)
        store = Store(url)
        store.create_schema()
        fill(store, rows)
        ms = per_hit_ms(store, hits)
        clearing = clearing_hit_ms(store, hits)
        store.close()
        return ms, clearing


def measure(url_for: str, rows: int, hits: int) -> float:
    return measure_both(url_for, rows, hits)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--hits", type=int, default=300)
    args = parser.parse_args()
    if args.database == "postgresql":
        raise SystemExit("postgresql: point a scratch database at it first (not automated here)")
    url = "sqlite:///{tmp}/bench.db"
    small, small_clearing = measure_both(url, 4_000, args.hits)
    large, large_clearing = measure_both(url, 400_000, args.hits)
    print(f"new-window hit, median: {small:.3f} ms at 4k live counters, {large:.3f} ms at 400k")
    print(f"ratio 400k/4k: {large / small:.2f} (flat is about 1)")
    print(
        f"hit that clears, median: {small_clearing:.3f} ms at 4k, {large_clearing:.3f} ms at "
        f"400k (ratio {large_clearing / small_clearing:.2f})"
    )
    result = {
        "hit_ms_4k": round(small, 3),
        "hit_ms_400k": round(large, 3),
        "ratio": round(large / small, 2),
        "clearing_hit_ms_4k": round(small_clearing, 3),
        "clearing_hit_ms_400k": round(large_clearing, 3),
        "clearing_ratio": round(large_clearing / small_clearing, 2),
        "database": args.database,
        "hits": args.hits,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
