"""``web/form_fields.read_form`` against FastAPI's own ``Form()`` parameters: the same values,
status codes and errors for the bodies a browser, a script or an attacker may send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form, Request

from session_bot.web.body_limit import BodyLimit
from session_bot.web.form_fields import VALIDATION_ERROR, openapi_body, openapi_query, read_form
from tests.support.web_subscribe import LiveServer

FIELDS = ("email", "name", "language", "page_lang")


def _apps() -> tuple[FastAPI, FastAPI]:
    theirs = FastAPI()

    @theirs.post("/form")
    async def by_fastapi(
        email: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        language: Annotated[str, Form()] = "",
        page_lang: Annotated[str, Form()] = "",
        lang: str | None = None,
    ) -> dict[str, str | None]:
        fields = {"email": email, "name": name, "language": language, "page_lang": page_lang}
        return {**fields, "lang": lang}

    ours = FastAPI()

    @ours.post(
        "/form",
        responses=VALIDATION_ERROR,
        openapi_extra={"requestBody": openapi_body(FIELDS), "parameters": openapi_query(("lang",))},
    )
    async def by_read_form(request: Request) -> dict[str, str | None]:
        lang = request.query_params.get("lang")
        return {**await read_form(request, FIELDS), "lang": lang}

    for app in (theirs, ours):
        app.add_middleware(BodyLimit, max_bytes=4096)
    return theirs, ours


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    theirs, ours = _apps()
    with LiveServer(theirs) as a, LiveServer(ours) as b:
        yield a.url, b.url


URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}
CASES: list[tuple[str, dict[str, Any]]] = [
    ("a browser's form", {"data": {"email": "a@example.org", "name": "Jörg Müller"}}),
    ("nothing", {}),
    ("empty fields", {"data": {"email": "", "name": "", "language": ""}}),
    ("a repeated field", {"content": b"email=a%40x.org&email=b%40x.org", "headers": URLENCODED}),
    ("plus and percent", {"content": b"name=J%C3%B6rg+M%C3%BCller&email=x", "headers": URLENCODED}),
    ("not utf-8", {"content": b"name=J%F6rg&email=%FF", "headers": URLENCODED}),
    ("semicolons, no values", {"content": b"email;name=&&language", "headers": URLENCODED}),
    ("unknown fields", {"data": {"email": "a@example.org", "other": "x", "lang": "en"}}),
    ("multipart", {"data": {"email": "a@example.org"}, "files": {"x": ("f.txt", b"...")}}),
    ("an empty file input", {"data": {"name": "n"}, "files": {"email": ("", b"")}}),
    ("a file as the address", {"files": {"email": ("a.txt", b"a@example.org")}}),
    ("JSON", {"json": {"email": "a@example.org"}}),
    ("plain text", {"content": b"email=a@example.org", "headers": {"Content-Type": "text/plain"}}),
    (
        "multipart without a boundary",
        {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}},
    ),
    (
        "a broken multipart body",
        {"content": b"garbage", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
    ),
    ("over the body limit", {"data": {"email": "a" * 5000}}),
]


@pytest.mark.parametrize(("what", "request_kw"), CASES, ids=[c[0] for c in CASES])
def test_read_form_answers_as_fastapi_does(
    servers: tuple[str, str], what: str, request_kw: dict[str, Any]
) -> None:
    theirs, ours = (httpx.post(f"{url}/form?lang=de", timeout=10, **request_kw) for url in servers)
    assert ours.status_code == theirs.status_code, (what, theirs.text, ours.text)
    assert ours.text == theirs.text, what


QUERIES = ["", "?lang=en", "?lang=", "?lang=de&lang=en", "?lang=%C3%BC+x", "?LANG=en&x=1"]


@pytest.mark.parametrize("query", QUERIES)
def test_the_query_parameter_is_read_as_fastapi_reads_it(
    servers: tuple[str, str], query: str
) -> None:
    form = {"data": {"email": "a@example.org"}}
    theirs, ours = (httpx.post(f"{url}/form{query}", timeout=10, **form) for url in servers)
    assert (ours.status_code, ours.text) == (theirs.status_code, theirs.text)


def test_the_fields_are_documented_as_fastapi_documents_form_parameters() -> None:
    their_app, our_app = _apps()
    theirs, ours = (app.openapi()["paths"]["/form"]["post"] for app in (their_app, our_app))
    ref = theirs["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["$ref"]
    their_schema = their_app.openapi()["components"]["schemas"][ref.rsplit("/", 1)[1]]
    their_schema = {k: v for k, v in their_schema.items() if k != "title"}
    documented = ours["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert documented == their_schema
    assert ours["parameters"] == theirs["parameters"]
    assert ours["responses"]["422"] == theirs["responses"]["422"]
    assert ours["responses"].keys() == theirs["responses"].keys()
