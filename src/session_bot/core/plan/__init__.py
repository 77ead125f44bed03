"""The series plan: a YAML file the organiser edits, validated into immutable models.

One package, one seam per module; new code imports from the module it needs:

- ``plan.model``: the models (``Series``, ``SessionContent``, ``Texts``, ``Plan``, …), pure.
- ``plan.occurrences``: when sessions happen (``Occurrence``, ``occurrences``,
  ``find_occurrence``), pure: takes dates, reads no clock.
- ``plan.localize``: a series and session in a subscriber's language, pure.
- ``plan.rule``: which RRULEs a series may use, and a bounded check that one produces dates.
- ``plan.reader``: the YAML subset a plan may use (no anchors/aliases/tags, no keys written
  twice, dates on the calendar, at most 1 MB), with the line of every key.
- ``plan.file``: ``parse_plan`` (YAML text → ``Plan`` with file/line/field errors) and
  ``load_plan``, the only function of the plan that reads a file.

This module re-exports all of them so ``from session_bot.core.plan import …`` keeps working.
"""

from __future__ import annotations

from session_bot.core.plan.file import load_plan, parse_plan
from session_bot.core.plan.localize import localize
from session_bot.core.plan.model import (
    ContentTranslation,
    HolidayRule,
    Lead,
    Person,
    Plan,
    Series,
    SessionContent,
    Speaker,
    Texts,
    TextsTranslation,
)
from session_bot.core.plan.occurrences import Occurrence, find_occurrence, occurrences

__all__ = [
    "ContentTranslation",
    "HolidayRule",
    "Lead",
    "Occurrence",
    "Person",
    "Plan",
    "Series",
    "SessionContent",
    "Speaker",
    "Texts",
    "TextsTranslation",
    "find_occurrence",
    "load_plan",
    "localize",
    "occurrences",
    "parse_plan",
]
