"""Text fields of a form, read as FastAPI's ``Annotated[str, Form()] = ""`` parameters would
give them, for the one route where FastAPI's own reading cost too much (``POST /subscribe``,
issue 18: in alternating runs of ``bench/web.py`` ≈ 975 → 1,180 requests/s on average).

The same in every case ``tests/web/test_form_fields.py`` compares with FastAPI's: urlencoded or
multipart; a missing or empty field, or an empty file input, is ``""``; of a repeated field
the last counts; a file where text belongs is a 422 with FastAPI's error; a body that cannot be
parsed is FastAPI's 400; uploaded files are closed. ``openapi_body`` documents the fields as
FastAPI would (inline instead of a named schema).

Such a route may read its optional text query parameters itself as well
(``request.query_params.get``: of a repeated one the last counts, as FastAPI's
``name: str | None = None`` gives it); ``openapi_query`` documents them, and
``VALIDATION_ERROR`` the 422 FastAPI documents for a route with parameters it reads.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

_TEXT = TypeAdapter(str)


async def read_form(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    try:
        form = await request.form()
    except HTTPException:
        raise  # a body over the limit (413), a malformed multipart body (400)
    except Exception as exc:  # as FastAPI answers whatever else its reading raises
        raise HTTPException(400, "There was an error parsing the body") from exc
    try:
        values: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        for name in fields:
            value = form.get(name)
            if value is None or value == "" or _empty_file(value):
                values[name] = ""
                continue
            try:
                values[name] = _TEXT.validate_python(value)
            except ValidationError as exc:
                errors.extend(
                    {**e, "loc": ("body", name, *e["loc"])} for e in exc.errors(include_url=False)
                )
    finally:
        await form.close()
    if errors:
        raise RequestValidationError(errors)
    return values


def _empty_file(value: object) -> bool:
    """A file input left empty, which browsers send as a nameless empty part."""
    return isinstance(value, UploadFile) and value.filename == "" and value.size == 0


def openapi_body(fields: tuple[str, ...]) -> dict[str, Any]:
    """The ``requestBody`` FastAPI documents for these fields as ``Form()`` parameters."""
    properties = {
        name: {"type": "string", "title": name.replace("_", " ").title(), "default": ""}
        for name in fields
    }
    schema = {"properties": properties, "type": "object"}
    return {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def openapi_query(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The ``parameters`` FastAPI documents for these ``name: str | None = None`` parameters."""
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "title": name.replace("_", " ").title(),
            },
        }
        for name in names
    ]


VALIDATION_ERROR: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Validation Error",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }
}
