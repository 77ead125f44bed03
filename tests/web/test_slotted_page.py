"""The page after a sign-up is rendered once with the address as a slot and filled in per
request (``pages.slotted_message_page``): byte for byte the page a full rendering gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from markupsafe import escape
from starlette.requests import Request

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.core.plan import Plan, load_plan
from session_bot.settings import load_settings
from session_bot.web import pages
from session_bot.web.deps import WebContext
from session_bot.web.pages import message_page, slotted_message_page
from tests.conftest import EXAMPLE_PLAN

PARAGRAPHS = ("sent_body", "sent_hint")


def _request(path: str = "/subscribe") -> Request:
    return Request({"type": "http", "method": "POST", "path": path, "query_string": b"",
                    "headers": [], "server": ("example.org", 443), "scheme": "https"})  # fmt: skip


def _ctx(tmp_path: Path, plan: Plan) -> WebContext:
    settings = load_settings(None, var_dir=tmp_path / "var", secret_key="s" * 32)
    return WebContext(
        settings=settings,
        store=Store(settings.resolved_database_url),
        clock=ManualClock(dt.datetime(2025, 3, 1, tzinfo=dt.UTC)),
        plan=lambda: plan,
        transport=lambda: pytest.fail("no mail here"),
        secret_key="s" * 32,
    )


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize(
    "address",
    ["neu@example.org", "o'brien&co@example.org", '"<b>{title}"@example.org', "jörg@müller.de"],
)
def test_the_filled_in_page_is_the_full_rendering(tmp_path: Path, lang: str, address: str) -> None:
    ctx = _ctx(tmp_path, load_plan(EXAMPLE_PLAN))
    for path in ("/subscribe", "/subscribe"):  # the first renders, the second fills in
        slotted = slotted_message_page(
            _request(path), ctx, lang, "sent_title", *PARAGRAPHS, slot="email", value=address
        )
        full = message_page(
            _request(path), ctx, lang, "sent_title", *PARAGRAPHS, fill={"email": address}
        )
        assert slotted.body == full.body and slotted.status_code == 200
        assert dict(slotted.headers) == dict(full.headers)
    assert str(escape(address)) in slotted.body.decode()
    # The page was kept as a slot, not rendered in full each time.
    assert [parts for parts in pages._slotted.values() if parts is not None]


def test_a_series_title_with_markup_and_slots_still_gives_the_full_rendering(
    tmp_path: Path,
) -> None:
    plan = load_plan(EXAMPLE_PLAN)
    series = plan.series[0].model_copy(update={"title": 'A & B <i>{email}</i> "{title}"'})
    odd = plan.model_copy(update={"series": [series]})
    ctx = _ctx(tmp_path, odd)
    for _ in range(2):
        slotted = slotted_message_page(
            _request(), ctx, "de", "sent_title", *PARAGRAPHS, slot="email", value="x&y@example.org"
        )
        full = message_page(
            _request(), ctx, "de", "sent_title", *PARAGRAPHS, fill={"email": "x&y@example.org"}
        )
        assert slotted.body == full.body
