"""A run's numbers in the organiser's words (the console never shows the log's English line)."""

from __future__ import annotations

from session_bot.web.console.base import look
from session_bot.web.console.run_words import run_words

DE, EN = look().texts["de"], look().texts["en"]


def test_singular_plural_and_order() -> None:
    counts = {"sent": 1, "mailings_frozen": 2, "temporary": 3, "failed": 0, "actions": 4}
    assert run_words(counts, DE) == (
        "1 Nachricht verschickt, 2 Aussendungen vorbereitet, "
        "3 Nachrichten werden später erneut versucht."
    )
    assert run_words(counts, EN) == (
        "1 message sent, 2 mailings prepared, 3 messages will be tried again later."
    )


def test_a_stopped_run_and_an_idle_one() -> None:
    assert run_words({"stuck": 1, "stopped": 1}, DE) == (
        "1 Aussendung konnte nicht verschickt werden, der Lauf wurde vorzeitig beendet."
    )
    assert run_words({"sent": 0, "stopped": 0}, DE) == "Es war nichts zu tun."
    assert run_words({}, EN) == "Nothing was due."


def test_a_run_recorded_before_the_numbers_were_kept() -> None:
    assert run_words(None, DE) == ""
