"""The organisers' console under /admin/ (sign-in, overview, sessions, the plan, runs, mailings,
subscribers, audit log): server-rendered pages in German and English, no JavaScript needed."""

from __future__ import annotations

from fastapi import APIRouter

from session_bot.web.console import (
    announcements,
    audit,
    auth,
    mailings,
    overview,
    plan_edit,
    plan_history,
    run,
    series_edit,
    sessions,
    subscribers,
    updates,
)

router = APIRouter()
router.include_router(auth.router)
router.include_router(overview.router)
# Before sessions: its /admin/sessions/{date} would take /admin/sessions/new.
router.include_router(plan_edit.router)
router.include_router(sessions.router)
router.include_router(run.router)
router.include_router(mailings.router)
router.include_router(announcements.router)
router.include_router(subscribers.router)
router.include_router(audit.router)
router.include_router(series_edit.router)
router.include_router(plan_history.router)
router.include_router(updates.router)
