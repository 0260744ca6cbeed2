"""The demo scenario end to end through ``govsoc run``'s service on SQLite: each
stage of the story raises its alert, playbooks open cases, the background stays
quiet above "low"."""

from __future__ import annotations

import pytest

from govsoc.demo.runner import run_demo
from govsoc.demo.scenario import build


def test_scenario_is_deterministic():
    first, second = build(), build()
    assert first.syslog == second.syslog
    assert first.iis_log == second.iis_log
    assert [bytes(p) for _, p in first.packets[:500]] == [bytes(p) for _, p in
                                                          second.packets[:500]]


@pytest.mark.slow
def test_demo_story_raises_every_alert_and_nothing_else(tmp_path):
    result = run_demo(tmp_path / "demo", serve=False, progress=lambda _: None)
    assert result.missing == []
    assert result.background_noise == []
    assert result.events > 3000
    assert result.cases >= 1
    names = {a.rule_name for a in result.alerts}
    assert any("Webshell Execution" in n for n in names)
    assert any(a.source == "yara" for a in result.alerts)
