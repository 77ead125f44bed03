"""What a run did, in the organiser's words: the console shows these instead of the log's line.

A run recorded before its numbers were kept (``counts`` is None) still has only its English
summary; the pages show that one as technical detail."""

from __future__ import annotations

from collections.abc import Mapping

# In the order a reader wants them: what went out first, what went wrong last.
_ORDER = (
    "sent",
    "mailings_frozen",
    "meetings_created",
    "meetings_adopted",
    "held",
    "temporary",
    "failed",
    "stuck",
)


def run_words(counts: Mapping[str, int] | None, t: Mapping[str, str]) -> str:
    """``{"sent": 5, "mailings_frozen": 1}`` → "5 Nachrichten verschickt, 1 Aussendung
    vorbereitet." (texts ``rw_<key>_one`` / ``rw_<key>_many`` with ``{n}``)."""
    if counts is None:
        return ""
    parts = []
    for key in _ORDER:
        n = int(counts.get(key, 0))
        if n:
            parts.append(t[f"rw_{key}_{'one' if n == 1 else 'many'}"].replace("{n}", str(n)))
    if counts.get("stopped"):
        parts.append(t["rw_stopped"])
    return (", ".join(parts) if parts else t["rw_nothing"]) + "."
