"""Plan texts for tests."""

from __future__ import annotations


def automatic_updates(text: str) -> str:
    """The plan with every series on ``updates: automatic`` (changes mailed by the next run,
    without the organiser's review): for tests of the mailing itself."""
    return text.replace("    language: ", "    updates: automatic\n    language: ")
