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


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
@pytest.mark.browser
def test_console_after_the_demo_shows_the_story(tmp_path, artifacts):
    """After the demo the console (served by the service) lists the story's alerts."""
    import os
    import re
    import socket

    from govsoc.events import utcnow
    from govsoc.passwords import hash_password
    from store.base import Role, User

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_demo(tmp_path / "demo", console_port=port, serve=True,
                      progress=lambda _: None)
    service = result.__dict__["service"]
    try:
        service.store.create_user(User("soc1", hash_password("demo-password-1"), Role.MANAGER,
                                       utcnow(), language="en"))
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20000)
            base = f"http://127.0.0.1:{service.web_port}"
            page.goto(base + "/login")
            page.fill('[data-testid="username"]', "soc1")
            page.fill('[data-testid="password"]', "demo-password-1")
            page.click('[data-testid="sign-in"]')
            page.wait_for_url(re.compile(r".*/$"))
            page.goto(base + "/alerts")
            text = page.inner_text("body")
            for fragment in ("Webshell Execution", "SSH Brute Force", "Port Scan",
                             "DNS Tunnelling", "Beaconing", "New Admin"):
                assert fragment in text, fragment
            page.screenshot(path=str(artifacts / "demo-alert-queue.png"), full_page=True)
            page.goto(base + "/admin/sensors")
            assert "syslog" in page.inner_text('[data-testid="inputs"]')
            browser.close()
    finally:
        service.stop()
        service.store.close()


@pytest.mark.slow
@pytest.mark.cluster
def test_demo_story_on_the_search_cluster(tmp_path):
    """The same story through the same service, stored in a real OpenSearch node."""
    import uuid

    from tests.cluster import ClusterUnavailable, ensure_cluster

    try:
        url = ensure_cluster("opensearch")
    except ClusterUnavailable as exc:
        pytest.skip(exc.reason)
    prefix = f"demo{uuid.uuid4().hex[:8]}"
    store_yaml = (f"store:\n  engine: opensearch\n  url: {url}\n  index_prefix: {prefix}\n"
                  f"  replicas: 0\n")
    result = run_demo(tmp_path / "demo", serve=False, progress=lambda _: None,
                      store_yaml=store_yaml)
    try:
        assert result.missing == []
        assert result.background_noise == []
        assert result.cases >= 1
    finally:
        from store.elastic import connect_for_tests

        connect_for_tests("opensearch", url, prefix=prefix).drop_all()
