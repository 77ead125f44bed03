"""The languages the series speaks: plans, templates, mails and pages all offer exactly these."""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

Language = Literal["de", "en"]

# Derived from the Literal so that adding a language is a one-place change; order is the
# order mails are rendered and listed in ("de" first, the series' default).
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)


def is_language(value: str) -> TypeGuard[Language]:
    return value in LANGUAGES
