"""schemathesis against the subscribe pages' OpenAPI document on a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    status_code_conformance,
)

from session_bot.app.subscriptions import unsubscribe_token
from session_bot.web.subscribe import router
from tests.support.web_subscribe import SECRET, World, world


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("schema"), run_first=False) as w:
        yield w


def _document() -> dict[str, Any]:
    app = FastAPI()
    app.include_router(router)
    return app.openapi()


# Loaded from the router itself (schemathesis' from_fixture does not work with pytest 9); the
# live server is checked to serve the very same document.
schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_error_and_documented_answers(live: World, case: schemathesis.Case) -> None:
    case.call_and_validate(
        base_url=live.url,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance],
    )


def test_schema_documents_every_route(live: World) -> None:
    doc = httpx.get(f"{live.url}/openapi.json").json()
    assert doc == _document()
    assert {(p, m) for p, ops in doc["paths"].items() for m in ops} == {
        ("/subscribe", "get"),
        ("/subscribe", "post"),
        ("/confirm/{token}", "get"),
        ("/confirm/{token}", "post"),
        ("/unsubscribe/{token}", "get"),
        ("/unsubscribe/{token}", "post"),
    }
    # A valid token with odd bodies and headers still answers without a server error.
    row = live.store.subscribers.get("early@example.org")
    assert row is not None
    url = f"{live.url}/unsubscribe/{unsubscribe_token(SECRET, row['id'])}"
    for body, ctype in (
        (b"\x00\xff", "application/octet-stream"),
        (b"{", "application/json"),
        (b"List-Unsubscribe=One-Click", "multipart/form-data; boundary=x"),
    ):
        assert httpx.post(url, content=body, headers={"Content-Type": ctype}).status_code == 200
