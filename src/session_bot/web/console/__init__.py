"""The organisers' console under /admin/ (sign-in, overview, sessions, runs, mailings,
subscribers, audit log): server-rendered pages in German and English, no JavaScript needed."""

from __future__ import annotations

from fastapi import APIRouter

from session_bot.web.console import auth, overview

router = APIRouter()
router.include_router(auth.router)
router.include_router(overview.router)
