"""Issue 14, finding 5: /healthz reports what the daemon knows is wrong although it answers."""

from __future__ import annotations

from pathlib import Path

import requests

from session_bot.core.plan import Plan
from tests.web.hardening_support import hardening_settings, serve

PROBLEM = "the plan on disk is invalid: plan.yaml:3: series: missing"


def test_problems_make_healthz_503(tmp_path: Path, example_plan: Plan) -> None:
    found: list[str] = []
    with serve(hardening_settings(tmp_path), example_plan, problems=lambda: list(found)) as s:
        healthy = requests.get(s.url + "/healthz", timeout=10)
        assert healthy.status_code == 200 and healthy.json()["ok"] is True
        assert "problems" not in healthy.json()
        found.append(PROBLEM)
        sick = requests.get(s.url + "/healthz", timeout=10)
        assert sick.status_code == 503
        body = sick.json()
        assert body["ok"] is False and body["problems"] == [PROBLEM]
        assert body["role"] == "leader" and "next_due" in body  # the rest is still reported


def test_without_a_problems_source_healthz_is_as_before(tmp_path: Path, example_plan: Plan) -> None:
    with serve(hardening_settings(tmp_path), example_plan) as s:
        resp = requests.get(s.url + "/healthz", timeout=10)
        assert resp.status_code == 200 and resp.json()["ok"] is True
