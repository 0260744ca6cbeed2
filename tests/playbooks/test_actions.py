"""Each action against real things: firewall files checked by nft/iptables-restore, the
asset inventory and intel lists, YARA over files on disk, a hunt over stored events."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govsoc.errors import ActionError
from playbooks.actions import ACTIONS, ActionContext
from tests.playbooks.conftest import raise_alert


def ctx_for(config, store, step="s1", case_id=None, timeout=30.0):
    return ActionContext(run_id="run-1", step_id=step, actor="ana", config=config, store=store,
                         idempotency_key=f"key-{step}", deadline=time.monotonic() + timeout,
                         case_id=case_id)


def _nft_can_check() -> str | None:
    """Why ``nft -c`` cannot run here, or None when it can."""
    if not shutil.which("nft"):
        return "nft is not installed (Debian package nftables)"
    probe = subprocess.run(["nft", "-c", "-f", "-"], input="table inet probe {}\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"nft -c cannot check rules here: {probe.stderr.strip()[:200]}"
    return None


def test_block_ip_writes_rules_the_firewall_tools_accept(pb_config, pb_store, http_receiver):
    action = ACTIONS["block_ip"]
    ctx = ctx_for(pb_config, pb_store)
    out = action.run({"ip": ["198.51.100.7", "203.0.113.0/24", "2001:db8::66"],
                      "reason": "test"}, ctx)
    files = out["files"]
    nft = Path(files["nftables"]).read_text()
    assert "elements = { 198.51.100.7, 203.0.113.0/24 }" in nft
    assert "elements = { 2001:db8::66 }" in nft
    v4 = Path(files["iptables_v4"]).read_text()
    assert "-A GOVSOC-BLOCK -s 198.51.100.7/32 -j DROP" in v4
    assert "2001:db8::66" in Path(files["iptables_v6"]).read_text()
    # the firewall API got one call per address
    assert sorted(c["json"]["address"] for c in http_receiver.calls_to("/fw/block")) == \
        ["198.51.100.7/32", "2001:db8::66/128", "203.0.113.0/24"]

    reason = _nft_can_check()
    if reason:
        pytest.skip(reason)
    checked = subprocess.run(["nft", "-c", "-f", files["nftables"]], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stderr
    # the check is real: a broken file is refused
    broken = Path(files["nftables"]).with_name("broken.nft")
    broken.write_text(nft.replace("ipv4_addr", "ipv4_adr"))
    assert subprocess.run(["nft", "-c", "-f", str(broken)], capture_output=True).returncode != 0
    if shutil.which("iptables-restore"):
        for key, tool in (("iptables_v4", "iptables-restore"),
                          ("iptables_v6", "ip6tables-restore")):
            test = subprocess.run([tool, "--test", "--noflush", files[key]], capture_output=True,
                                  text=True)
            if test.returncode != 0 and "Permission denied" in test.stderr:
                pytest.skip(f"{tool} --test needs CAP_NET_ADMIN: {test.stderr.strip()}")
            assert test.returncode == 0, test.stderr


def test_block_ip_is_idempotent_and_keeps_earlier_blocks(pb_config, pb_store):
    action = ACTIONS["block_ip"]
    first = action.run({"ip": "198.51.100.7", "via": ["files"]}, ctx_for(pb_config, pb_store))
    nft_path = Path(first["files"]["nftables"])
    before = nft_path.read_text()
    action.run({"ip": ["198.51.100.7"], "via": ["files"]}, ctx_for(pb_config, pb_store, "s2"))
    assert nft_path.read_text() == before
    action.run({"ip": "192.0.2.44", "via": ["files"]}, ctx_for(pb_config, pb_store, "s3"))
    after = nft_path.read_text()
    assert "198.51.100.7" in after and "192.0.2.44" in after


@pytest.mark.parametrize("target,words", [
    ("10.10.1.15", "never_block"),        # an internal server
    ("127.0.0.1", "never_block"),
    ("0.0.0.0/0", "wider than /16"),
    ("8.0.0.0/8", "wider than /16"),
    ("not-an-ip", "not an IP address"),
    ([], "no IP address"),
])
def test_block_ip_refuses_dangerous_targets(pb_config, pb_store, target, words):
    with pytest.raises(ActionError, match=words):
        ACTIONS["block_ip"].run({"ip": target, "via": ["files"]}, ctx_for(pb_config, pb_store))
    assert not (pb_config.data_path("playbook-outputs") / "firewall" / "govsoc-block.nft").exists()


def test_block_ip_dry_run_writes_nothing(pb_config, pb_store, http_receiver):
    plan = ACTIONS["block_ip"].plan({"ip": "198.51.100.7"}, ctx_for(pb_config, pb_store))
    assert plan["would_block"] == ["198.51.100.7/32"] and plan["via"] == ["files", "api"]
    assert "198.51.100.7" in plan["nftables_preview"]
    assert not (pb_config.data_path("playbook-outputs") / "firewall").exists()
    assert http_receiver.calls == []


def test_enrich_finds_assets_and_intel(pb_config, pb_store):
    out = ACTIONS["enrich_observables"].run({"observables": {
        "ip": ["10.10.1.15", "198.51.100.99", "192.0.2.1"],
        "domain": ["a.b.evil-c2.example", "evil-c2.example.org"],
        "hash": ["44D88612FEA8A8F36DE82E1278ABB02F"],
        "host": ["portal.tinh.gov.vn"]}}, ctx_for(pb_config, pb_store))
    by_value = {o["value"]: o for o in out["observables"]}
    assert by_value["10.10.1.15"]["asset"]["system"] == "Cổng thông tin điện tử tỉnh"
    assert by_value["portal.tinh.gov.vn"]["asset"]["name"] == "portal-web-01"
    assert by_value["198.51.100.99"]["intel"] == [{"list": "bad-ips", "label": "known scanner"}]
    assert by_value["192.0.2.1"]["intel"] == [] and by_value["192.0.2.1"]["asset"] is None
    assert by_value["a.b.evil-c2.example"]["intel"][0]["label"] == "c2"
    assert by_value["evil-c2.example.org"]["intel"] == []
    assert by_value["44D88612FEA8A8F36DE82E1278ABB02F"]["intel"][0]["label"] == "eicar"
    assert out["malicious"] == sorted(["198.51.100.99", "a.b.evil-c2.example",
                                       "44D88612FEA8A8F36DE82E1278ABB02F"])


def test_enrich_reads_a_csv_inventory(pb_config, pb_store, tmp_path):
    csv_path = tmp_path / "assets.csv"
    csv_path.write_text("name,ips,hostnames,owner,unit,system,security_level\n"
                        "motcua-app,10.10.2.5;10.10.2.6,motcua.tinh.gov.vn,Lê C,VP UBND,"
                        "Hệ thống một cửa,4\n", encoding="utf-8")
    pb_config.values["playbooks"]["inventory"]["path"] = str(csv_path)
    out = ACTIONS["enrich_observables"].run({"observables": [{"type": "ip", "value": "10.10.2.6"}]},
                                            ctx_for(pb_config, pb_store))
    assert out["observables"][0]["asset"]["system"] == "Hệ thống một cửa"
    pb_config.values["playbooks"]["inventory"]["path"] = str(tmp_path / "missing.yml")
    with pytest.raises(ActionError, match="cannot read the inventory"):
        ACTIONS["enrich_observables"].run({"observables": {"ip": ["1.2.3.4"]}},
                                          ctx_for(pb_config, pb_store))


def test_yara_scan_finds_the_webshell(pb_config, pb_store, tmp_path):
    rules = tmp_path / "webshell.yar"
    rules.write_text('rule aspx_eval_webshell : webshell { strings: $a = "eval(Request" '
                     'condition: $a }\n')
    webroot = tmp_path / "wwwroot"
    (webroot / "upload").mkdir(parents=True)
    (webroot / "index.html").write_text("<html>Cổng thông tin</html>", encoding="utf-8")
    (webroot / "upload" / "x.aspx").write_text('<%@ Page %><% eval(Request["c"]) %>')
    (webroot / "big.bin").write_bytes(b"eval(Request" + b"\0" * (2 * 1024 * 1024))
    out = ACTIONS["yara_scan"].run({"path": str(webroot), "rules": [str(rules)],
                                    "max_file_mb": 1}, ctx_for(pb_config, pb_store))
    assert out["matched_files"] == [str(webroot / "upload" / "x.aspx")]
    assert out["matches"][0]["rule"] == "aspx_eval_webshell"
    assert out["matches"][0]["tags"] == ["webshell"]
    assert out["scanned"] == 2 and out["skipped"] == 1
    rules.write_text("rule broken { condition: nothing_here }")
    with pytest.raises(ActionError, match="do not compile"):
        ACTIONS["yara_scan"].run({"path": str(webroot), "rules": [str(rules)]},
                                 ctx_for(pb_config, pb_store))


def test_hunt_searches_stored_events(pb_config, pb_store):
    from govsoc.events import event_id, new_event

    now = datetime.now(UTC)
    events = []
    for i, ip in enumerate(["198.51.100.7", "198.51.100.7", "192.0.2.3"]):
        event = new_event("sshd", now - timedelta(minutes=i), source__ip=ip,
                          host__name=f"vpn-{i}", event__outcome="success")
        event["event"]["id"] = event_id("test", i)
        events.append(event)
    pb_store.insert_events(events)
    out = ACTIONS["hunt"].run({"filters": {"source.ip": ["198.51.100.7"],
                                           "event.outcome": "success"}, "hours": 1},
                              ctx_for(pb_config, pb_store))
    assert out["matches"] == 2
    assert out["hosts"] == ["vpn-0", "vpn-1"]
    nothing = ACTIONS["hunt"].run({"filters": {"source.ip": []}}, ctx_for(pb_config, pb_store))
    assert nothing["matches"] == 0 and "skipped" in nothing


def test_update_case_is_idempotent(pb_config, pb_store):
    from store.base import NewCase

    alert = raise_alert(pb_store, fields={"source.ip": "198.51.100.7"})
    case = pb_store.create_case(NewCase(title="c", created_by="ana", alert_ids=[alert.id]))
    params = {"add_tags": ["contained"], "add_observables": {"ip": ["198.51.100.7"]},
              "comment": "Đã chặn / blocked", "severity": "high"}
    first = ACTIONS["update_case"].run(params, ctx_for(pb_config, pb_store, case_id=case.id))
    again = ACTIONS["update_case"].run(params, ctx_for(pb_config, pb_store, case_id=case.id))
    assert set(first["changed"]) == {"tags", "observables", "severity", "comment"}
    assert again["changed"] == []
    stored = pb_store.get_case(case.id)
    assert stored.tags == ["contained"] and len(stored.observables) == 1
    assert len(pb_store.list_comments("case", case.id)) == 1


def test_remote_containment_needs_a_configured_webhook(pb_config, pb_store, http_receiver):
    out = ACTIONS["disable_account"].run({"user": ["nva", "nva", "ttb"]},
                                         ctx_for(pb_config, pb_store))
    assert [r["user"] for r in out["results"]] == ["nva", "ttb"]
    assert [c["json"]["user"] for c in http_receiver.calls_to("/idm/disable")] == ["nva", "ttb"]
    del pb_config.values["playbooks"]["webhooks"]["isolate_host"]
    with pytest.raises(ActionError, match="no webhook 'isolate_host' configured"):
        ACTIONS["isolate_host"].run({"host": "pc-1"}, ctx_for(pb_config, pb_store))


def test_notify_email_refuses_header_injection(pb_config, pb_store, smtp_sink):
    with pytest.raises(ActionError, match="not an e-mail address"):
        ACTIONS["notify_email"].run({"to": "a@b.vn\r\nBcc: x@evil.example", "subject": "s",
                                     "body": "b"}, ctx_for(pb_config, pb_store))
    out = ACTIONS["notify_email"].run({"subject": "Cảnh báo\r\nBcc: x@evil.example",
                                       "body": "Nội dung"}, ctx_for(pb_config, pb_store))
    assert out["sent_to"] == ["lanhdao@tinh.gov.vn"]
    assert smtp_sink.messages[0]["to"] == ["lanhdao@tinh.gov.vn"]
    assert b"\nBcc:" not in smtp_sink.messages[0]["data"]


def test_sigma_hunt_runs_the_shipped_rules_over_stored_events(pb_config, pb_store):
    from govsoc.events import event_id, new_event

    rules = Path(__file__).resolve().parents[2] / "rules" / "sigma" / "windows"
    if not any(rules.glob("*.yml")):
        pytest.skip("no shipped Windows Sigma rules")
    events = []
    for i, (group, sid) in enumerate([("Administrators", "S-1-5-32-544"),
                                      ("Print Operators", "S-1-5-32-550")]):
        event = new_event("windows.security", datetime.now(UTC) - timedelta(minutes=i),
                          module="windows", host__name=f"dc0{i + 1}")
        event["event"].update({"id": event_id("tests/playbooks/hunt", i), "code": "4732"})
        event["winlog"] = {"event_id": 4732, "channel": "Security",
                           "provider_name": "Microsoft-Windows-Security-Auditing",
                           "event_data": {"TargetUserName": group, "TargetSid": sid}}
        events.append(event)
    pb_store.insert_events(events)
    out = ACTIONS["sigma_hunt"].run({"rules": [str(rules)], "hours": 1},
                                    ctx_for(pb_config, pb_store, timeout=120))
    assert out["detections"] == 1
    assert out["rules"][0]["rule_name"] == "New Admin - Account Added to a Privileged Group"
    assert out["hosts"] == ["dc01"]
    assert out["event_ids"] == [event_id("tests/playbooks/hunt", 0)]
    none = ACTIONS["sigma_hunt"].run({"rules": [str(rules)], "hours": 1,
                                      "rule_ids": ["not-a-rule"]},
                                     ctx_for(pb_config, pb_store, timeout=120))
    assert none["detections"] == 0
