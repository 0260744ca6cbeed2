"""The engine against the real SQLite store and real peers on loopback: tasks,
approvals by role, dry runs, retries, timeouts, failures, audit and resume."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from govsoc.errors import PlaybookError
from playbooks.engine import PlaybookEngine
from playbooks.loader import load_library
from tests.playbooks.conftest import raise_alert

WEBSHELL_FIELDS = {"source.ip": "198.51.100.7", "destination.ip": "10.10.1.15",
                   "host.name": "portal-web-01", "url.path": "/upload/shell.aspx"}


def webshell_alert(store):
    return raise_alert(store, rule_id="web-webshell-exec", rule_name="Webshell command execution",
                       severity="critical", tags=["attack.persistence", "attack.t1505.003"],
                       dataset="iis.access", fields=WEBSHELL_FIELDS)


SHIPPED_CASES = [
    ("webshell-portal", dict(tags=["attack.t1505.003"], fields=WEBSHELL_FIELDS)),
    ("brute-force-ssh-vpn", dict(tags=["attack.credential_access", "attack.t1110.001"],
                                 fields={"source.ip": "198.51.100.9", "host.name": "vpn-gw",
                                         "user.name": "admin"})),
    ("malware-c2-beaconing", dict(tags=["attack.command_and_control", "attack.t1071.001"],
                                  fields={"source.ip": "10.20.0.5",
                                          "destination.ip": "192.0.2.66",
                                          "host.name": "pc-ketoan-02"})),
    ("phishing-attachment", dict(tags=["attack.initial_access", "attack.t1566.001"],
                                 fields={"email.from.address": "x@evil.example",
                                         "file.hash.md5": "44d88612fea8a8f36de82e1278abb02f"})),
    ("web-defacement", dict(tags=["attack.impact", "attack.t1491.002"],
                            fields={"host.name": "portal-web-01", "source.ip": "192.0.2.10"})),
    ("ddos-public-services", dict(tags=["attack.impact", "attack.t1498"],
                                  fields={"source.ip": "192.0.2.200",
                                          "destination.ip": "10.10.1.15"})),
    ("compromised-account", dict(tags=["attack.persistence", "attack.t1136.002"],
                                 fields={"user.name": "backup_adm", "host.name": "dc01"})),
    ("recon-port-scan", dict(tags=["attack.discovery", "attack.t1046"],
                             fields={"source.ip": "192.0.2.77", "destination.ip": "10.10.1.15"})),
    ("dns-exfiltration", dict(tags=["attack.exfiltration", "attack.t1048.003"],
                              fields={"dns.question.name": "aGVsbG8.x.evil-c2.example",
                                      "host.name": "pc-vanthu-01", "source.ip": "10.20.0.9"})),
]


def steps_of(run):
    return {k: v.status for k, v in run.steps.items()}


def audit_actions(store, run_id):
    from store.base import AuditFilter

    entries = store.list_audit(AuditFilter(target_type="playbook_run"), limit=1000).items
    return [e.action for e in reversed(entries) if e.target_id.split("/")[0] == run_id]


def write_playbook(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "pb"
    folder.mkdir(exist_ok=True)
    (folder / "custom.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def custom_engine(store, config, tmp_path, text):
    library = load_library([write_playbook(tmp_path, text)])
    assert not library.errors, library.errors
    return PlaybookEngine(store, config, library, sleep=lambda s: None)


def test_webshell_run_waits_for_people_and_approvals_then_completes(
        engine, users, smtp_sink, http_receiver, pb_config):
    store = users
    alert = webshell_alert(store)
    assert [p.id for p in engine.suggest(alert_id=alert.id)] == ["webshell-portal"]

    run = engine.start("webshell-portal", actor="ana", alert_id=alert.id)
    # the case was opened, enrichment ran, the verify task waits for a person
    assert run.status == "waiting"
    assert run.case_id
    assert store.get_alert(alert.id).case_id == run.case_id
    assert steps_of(run)["verify"] == "waiting_task"
    enrich = run.steps["enrich"].output
    ip = next(o for o in enrich["observables"] if o["value"] == "198.51.100.7")
    assert ip["intel"] == [{"list": "bad-ips", "label": "known scanner"}]
    server = next(o for o in enrich["observables"] if o["value"] == "10.10.1.15")
    assert server["asset"]["security_level"] == 3
    assert server["asset"]["owner"] == "Nguyễn Văn An"

    with pytest.raises(PlaybookError, match="needs evidence"):
        engine.complete_task(run.id, "verify", "ana")
    run = engine.complete_task(run.id, "verify", "ana", notes="shell.aspx in /upload",
                               evidence=["sha256:ab12"])
    # blocking the attacker is destructive: it waits for a manager
    assert steps_of(run)["block-attacker"] == "waiting_approval"
    assert run.steps["block-attacker"].inputs["ip"] == ["198.51.100.7"]
    assert not http_receiver.calls_to("/fw/block")
    assert [s.id for _, s in engine.pending_approvals("minh")] == ["block-attacker"]
    assert engine.pending_approvals("ana") == []
    with pytest.raises(PlaybookError, match="may not approve"):
        engine.decide(run.id, "block-attacker", "ana", approve=True)
    with pytest.raises(PlaybookError, match="may not approve"):
        engine.decide(run.id, "block-attacker", "mallory", approve=True)

    run = engine.decide(run.id, "block-attacker", "minh", approve=True, comment="ok")
    block = run.steps["block-attacker"]
    assert block.status == "succeeded"
    assert block.approval["by"] == "minh" and block.approval["role"] == "manager"
    nft = Path(block.output["files"]["nftables"]).read_text()
    assert "198.51.100.7" in nft
    api = http_receiver.calls_to("/fw/block")
    assert [c["json"]["address"] for c in api] == ["198.51.100.7/32"]
    assert api[0]["headers"]["Idempotency-Key"]

    # isolating the server: a manager rejects it, the run goes on without it
    assert steps_of(run)["isolate-server"] == "waiting_approval"
    run = engine.decide(run.id, "isolate-server", "quan", approve=False, comment="not now")
    assert steps_of(run)["isolate-server"] == "rejected"
    assert not http_receiver.calls_to("/edr/isolate")

    run = engine.complete_task(run.id, "remove-webshell", "ana")
    run = engine.complete_task(run.id, "restore", "ana")
    assert steps_of(run)["national-notification"] == "succeeded"
    assert steps_of(run)["notify-management"] == "succeeded"
    assert len(smtp_sink.messages) == 1
    message = email.message_from_bytes(smtp_sink.messages[0]["data"], policy=email.policy.default)
    assert "Sự cố webshell" in message["Subject"]
    assert run.case_id in message.get_content()
    assert smtp_sink.messages[0]["to"] == ["lanhdao@tinh.gov.vn"]
    run = engine.complete_task(run.id, "lessons", "minh")
    assert run.status == "completed"

    # every step left audit entries, in order
    actions = audit_actions(store, run.id)
    assert actions[0] == "playbook.run.start" and actions[-1] == "playbook.run.complete"
    for needed in ("playbook.task.open", "playbook.task.done", "playbook.approval.request",
                   "playbook.approval.refused", "playbook.approval.approved",
                   "playbook.approval.rejected", "playbook.action.start",
                   "playbook.action.done"):
        assert needed in actions, needed
    # the case carries the run
    case = store.get_case(run.case_id)
    [entry] = case.extra["playbook_runs"]
    assert entry["id"] == run.id and entry["playbook"] == "webshell-portal"
    assert entry["status"] == "completed" and entry["finished_at"]


@pytest.mark.parametrize("playbook_id,alert_kwargs", SHIPPED_CASES)
def test_each_shipped_playbook_fits_its_alert_and_its_dry_run_completes(
        engine, users, http_receiver, smtp_sink, playbook_id, alert_kwargs):
    store = users
    alert = raise_alert(store, rule_id=f"r-{playbook_id}", rule_name="rule", **alert_kwargs)
    fitting = [p.id for p in engine.suggest(alert_id=alert.id)]
    assert fitting == [playbook_id]
    run = engine.start(playbook_id, actor="ana", alert_id=alert.id, dry_run=True)
    assert run.status == "completed"
    problems = {k: v.error for k, v in run.steps.items() if v.status == "failed"}
    assert problems == {}
    assert set(steps_of(run).values()) <= {"planned", "skipped"}
    assert any(v.status == "planned" for v in run.steps.values())
    # nothing happened outside: no case, no mail, no webhook, no firewall files
    assert store.get_alert(alert.id).case_id is None
    assert smtp_sink.messages == [] and http_receiver.calls == []


@pytest.mark.slow
@pytest.mark.parametrize("playbook_id,alert_kwargs", SHIPPED_CASES)
def test_each_shipped_playbook_runs_to_the_end_for_real(
        engine, users, http_receiver, smtp_sink, playbook_id, alert_kwargs):
    """People do every task and an admin approves every action: each playbook completes
    with no failed step, against the real peers."""
    alert = raise_alert(users, rule_id=f"r-{playbook_id}", rule_name="rule", **alert_kwargs)
    run = engine.start(playbook_id, actor="ana", alert_id=alert.id)
    for _ in range(40):
        if run.status != "waiting":
            break
        record = next(r for r in run.steps.values()
                      if r.status in ("waiting_task", "waiting_approval"))
        if record.status == "waiting_task":
            run = engine.complete_task(run.id, record.id, "quan", notes="ok", evidence=["e"])
        else:
            run = engine.decide(run.id, record.id, "quan", approve=True)
    failed = {k: v.error for k, v in run.steps.items() if v.status == "failed"}
    assert failed == {}
    assert run.status == "completed"
    assert users.get_case(run.case_id).extra["playbook_runs"][0]["status"] == "completed"


def test_a_failing_webhook_is_retried_recorded_and_pauses_the_run(
        users, pb_config, tmp_path, http_receiver):
    http_receiver.status["/idm/disable"] = 503
    engine = custom_engine(users, pb_config, tmp_path, """\
        id: lock
        version: 1
        name: {vi: Khóa, en: Lock}
        triggers: [{tags: [x]}]
        phases:
          - phase: containment
            steps:
              - id: disable
                type: action
                action: disable_account
                title: {vi: Khóa, en: Disable}
                with: {user: "{{ observables.user }}"}
                retries: 2
                approval: {roles: [admin]}
              - id: after
                type: task
                title: {vi: Sau, en: After}
        """)
    alert = raise_alert(users, fields={"user.name": "nva"})
    run = engine.start("lock", actor="ana", alert_id=alert.id)
    run = engine.decide(run.id, "disable", "quan", approve=True)
    step = run.steps["disable"]
    assert run.status == "paused"
    assert step.status == "failed" and step.attempts == 3
    assert "HTTP 503" in step.error
    assert len(step.errors) == 3 and len(http_receiver.calls_to("/idm/disable")) == 3
    assert "disable" in run.reason
    assert steps_of(run)["after"] == "pending"
    # the peer recovers; a person resumes the run; the same idempotency key is sent
    http_receiver.status["/idm/disable"] = 200
    run = engine.retry(run.id, "ana")
    assert run.steps["disable"].status == "succeeded"
    keys = {c["headers"]["Idempotency-Key"] for c in http_receiver.calls_to("/idm/disable")}
    assert len(keys) == 1
    assert run.steps["disable"].errors  # earlier failures are kept
    assert steps_of(run)["after"] == "waiting_task"


def test_an_unreachable_smtp_server_is_recorded_and_the_run_continues(
        users, pb_config, tmp_path):
    from govsoc.config import load_config

    data = pb_config.values
    data["playbooks"]["smtp"]["port"] = _closed_port()
    config = load_config(None, data_dir=pb_config.data_dir, env={})
    config.values.update(data)
    engine = custom_engine(users, config, tmp_path, """\
        id: mail
        version: 1
        name: {vi: Thư, en: Mail}
        triggers: [{tags: [x]}]
        phases:
          - phase: post_incident
            steps:
              - id: mail
                type: action
                action: notify_email
                title: {vi: Gửi thư, en: Send mail}
                with: {subject: "Thử / Test", body: "Nội dung"}
                retries: 1
                on_error: continue
              - id: note
                type: action
                action: update_case
                title: {vi: Ghi chú, en: Note}
                with: {comment: "đã gửi / sent"}
        """)
    alert = raise_alert(users)
    from store.base import NewCase

    case = users.create_case(NewCase(title="c", created_by="ana", alert_ids=[alert.id]))
    run = engine.start("mail", actor="ana", case_id=case.id)
    assert run.status == "completed"
    assert run.steps["mail"].status == "failed"
    assert "cannot send through 127.0.0.1" in run.steps["mail"].error
    assert run.steps["mail"].attempts == 2
    assert run.steps["note"].status == "succeeded"
    assert [c.body for c in users.list_comments("case", case.id)] == ["đã gửi / sent"]


def test_a_timeout_mid_run_pauses_and_nothing_is_lost(users, pb_config, tmp_path,
                                                      http_receiver):
    http_receiver.delay["/chat"] = 3
    engine = custom_engine(users, pb_config, tmp_path, """\
        id: slow
        version: 1
        name: {vi: Chậm, en: Slow}
        triggers: [{tags: [x]}]
        phases:
          - phase: detection_analysis
            steps:
              - id: enrich
                type: action
                action: enrich_observables
                title: {vi: Tra cứu, en: Enrich}
                with: {observables: "{{ observables }}"}
              - id: tell
                type: action
                action: notify_webhook
                title: {vi: Báo, en: Tell}
                with: {webhook: soc_chat, message: hello}
                timeout: 0.5
              - id: last
                type: action
                action: update_case
                title: {vi: Cuối, en: Last}
                with: {add_tags: [done]}
        """)
    alert = raise_alert(users, fields={"source.ip": "198.51.100.20"})
    started = time.monotonic()
    run = engine.start("slow", actor="ana", alert_id=alert.id)
    assert time.monotonic() - started < 2.5
    assert run.status == "paused"
    assert run.steps["tell"].status == "failed"
    assert "timed out after 0.5s" in run.steps["tell"].error
    assert run.steps["enrich"].status == "succeeded"
    assert run.steps["enrich"].output["intel_hits"] == 1
    assert run.steps["last"].status == "pending"
    # after a restart (a new engine and store on the same file) the record is all there
    from store import open_store

    with open_store(pb_config) as other:
        again = PlaybookEngine(other, pb_config, engine.library).runs.get(run.id)
        assert again.steps["enrich"].output == run.steps["enrich"].output
        assert again.steps["tell"].error == run.steps["tell"].error


def test_unknown_action_in_a_stored_run_is_a_step_error(users, pb_config, tmp_path):
    engine = custom_engine(users, pb_config, tmp_path, """\
        id: gone
        version: 1
        name: {vi: Mất, en: Gone}
        triggers: [{tags: [x]}]
        phases:
          - phase: detection_analysis
            steps:
              - id: one
                type: action
                action: hunt
                title: {vi: Một, en: One}
                with: {filters: {source.ip: 192.0.2.1}}
        """)
    # the action was removed from this installation after the playbook loaded
    del_actions = dict(engine.actions)
    del_actions.pop("hunt")
    engine.actions = del_actions
    run = engine.start("gone", actor="ana", alert_id=raise_alert(users).id)
    assert run.status == "paused"
    assert run.steps["one"].error == "unknown action 'hunt'"


def test_auto_start_runs_fitting_playbooks_once_with_gates_in_force(engine, users,
                                                                   http_receiver):
    alert = webshell_alert(users)
    runs = engine.auto_start(alert)
    assert [r.playbook_id for r in runs] == ["webshell-portal"]
    assert runs[0].trigger == "auto" and runs[0].status == "waiting"
    assert engine.auto_start(users.get_alert(alert.id)) == []
    # an alert no auto trigger fits starts nothing
    other = raise_alert(users, rule_id="x", tags=["attack.t1087"])
    assert engine.auto_start(other) == []
    # a port scan is only suggested unless it is rated high
    scan = raise_alert(users, rule_id="scan", severity="medium", tags=["attack.t1046"])
    assert engine.auto_start(scan) == []
    assert [p.id for p in engine.suggest(alert_id=scan.id)] == ["recon-port-scan"]
    assert http_receiver.calls_to("/fw/block") == []


def test_a_run_interrupted_by_a_crash_resumes_after_restart(users, pb_config, tmp_path,
                                                            http_receiver):
    """A separate process dies (SIGKILL) in the middle of an action; a new engine
    finds the run and finishes it, and the action's idempotency key is the same."""
    http_receiver.delay["/chat"] = 30
    folder = write_playbook(tmp_path, """\
        id: crash
        version: 1
        name: {vi: Sập, en: Crash}
        triggers: [{tags: [x]}]
        phases:
          - phase: detection_analysis
            steps:
              - id: first
                type: action
                action: update_case
                title: {vi: Đầu, en: First}
                with: {add_tags: [seen]}
              - id: tell
                type: action
                action: notify_webhook
                title: {vi: Báo, en: Tell}
                with: {webhook: soc_chat, message: hello}
                timeout: 60
              - id: last
                type: action
                action: update_case
                title: {vi: Cuối, en: Last}
                with: {add_tags: [finished]}
        """)
    from store.base import NewCase

    case = users.create_case(NewCase(title="c", created_by="ana"))
    script = textwrap.dedent(f"""
        import playbooks.settings
        from govsoc.config import load_config
        from store import open_store
        from playbooks.engine import PlaybookEngine
        from playbooks.loader import load_library
        config = load_config({str(pb_config.source)!r}, data_dir={str(pb_config.data_dir)!r},
                             env={{}})
        store = open_store(config)
        engine = PlaybookEngine(store, config, load_library([{str(folder)!r}]))
        engine.start("crash", actor="ana", case_id={case.id!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 30
        while not http_receiver.calls_to("/chat"):
            assert child.poll() is None, "the child ended before calling the webhook"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    http_receiver.delay["/chat"] = 0

    library = load_library([folder])
    engine = PlaybookEngine(users, pb_config, library, sleep=lambda s: None)
    [stored] = engine.runs.list(case_id=case.id)
    assert stored.status == "running"
    assert stored.steps["first"].status == "succeeded"
    assert stored.steps["tell"].status == "running"
    resumed = engine.resume_interrupted()
    assert [r.id for r in resumed] == [stored.id]
    run = resumed[0]
    assert run.status == "completed"
    assert steps_of(run) == {"first": "succeeded", "tell": "succeeded", "last": "succeeded"}
    assert run.steps["tell"].attempts == 2
    calls = http_receiver.calls_to("/chat")
    assert len(calls) == 2
    assert calls[0]["headers"]["Idempotency-Key"] == calls[1]["headers"]["Idempotency-Key"]
    assert users.get_case(case.id).tags == ["seen", "finished"]
    assert "playbook.run.recover" in audit_actions(users, run.id)


def test_completed_steps_are_not_run_again(engine, users, http_receiver):
    alert = webshell_alert(users)
    run = engine.start("webshell-portal", actor="ana", alert_id=alert.id)
    run = engine.complete_task(run.id, "verify", "ana", evidence=["x"])
    run = engine.decide(run.id, "block-attacker", "minh", approve=True)
    calls = len(http_receiver.calls)
    for _ in range(3):
        run = engine.advance(run.id)
    assert len(http_receiver.calls) == calls
    assert run.steps["block-attacker"].attempts == 1
    with pytest.raises(PlaybookError, match="not waiting"):
        engine.decide(run.id, "block-attacker", "minh", approve=True)


def test_cancel_and_skip(engine, users):
    alert = webshell_alert(users)
    run = engine.start("webshell-portal", actor="ana", alert_id=alert.id)
    run = engine.skip(run.id, "verify", "ana", reason="verified by phone")
    assert run.steps["verify"].status == "skipped"
    assert steps_of(run)["block-attacker"] == "waiting_approval"
    run = engine.cancel(run.id, "minh", "false positive")
    assert run.status == "cancelled"
    assert engine.pending_approvals("minh") == []
    with pytest.raises(PlaybookError):
        engine.cancel(run.id, "minh")


def _closed_port() -> int:
    from tests.playbooks.conftest import free_port

    return free_port()


def test_the_service_listener_starts_playbooks_for_new_alerts(users, pb_config, library,
                                                             http_receiver):
    """The automation is an alert listener (the pipeline's on_alerts callback gets what
    record_alerts returns); folded repeats start nothing."""
    from datetime import UTC, datetime, timedelta

    from playbooks.automation import PlaybookAutomation
    from store.base import NewAlert, Severity

    automation = PlaybookAutomation(users, pb_config, library)
    automation.start()
    draft = NewAlert(rule_id="ssh-brute-force", rule_name="SSH brute force",
                     severity=Severity.HIGH, group_key="ssh:198.51.100.9",
                     timestamp=datetime.now(UTC), tags=["attack.t1110.001"],
                     fields={"source.ip": "198.51.100.9", "host.name": "vpn-gw"})
    automation(users.record_alerts([draft], timedelta(hours=1)))
    automation(users.record_alerts([draft], timedelta(hours=1)))  # folded: count 2
    automation.drain()
    automation.stop()
    assert len(automation.started_runs) == 1
    run = automation.engine.runs.get(automation.started_runs[0])
    assert run.playbook_id == "brute-force-ssh-vpn" and run.trigger == "auto"
    assert run.status == "waiting"
    assert run.steps["review-accounts"].status == "waiting_task"
    assert not http_receiver.calls_to("/fw/block")


def test_a_run_another_live_process_executes_is_not_resumed(users, pb_config, tmp_path):
    import socket

    engine = custom_engine(users, pb_config, tmp_path, """\
        id: busy
        version: 1
        name: {vi: Bận, en: Busy}
        triggers: [{tags: [x]}]
        phases:
          - phase: detection_analysis
            steps:
              - id: note
                type: action
                action: update_case
                title: {vi: Ghi, en: Note}
                with: {add_tags: [seen]}
        """)
    from store.base import NewCase

    case = users.create_case(NewCase(title="c", created_by="ana"))
    run = engine.start("busy", actor="ana", case_id=case.id, advance=False)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.executor = {"host": socket.gethostname(), "pid": other.pid, "since": run.created_at}
        engine.runs.save(run)
        assert engine.resume_interrupted() == []
        assert engine.runs.get(run.id).steps["note"].status == "pending"
    finally:
        other.kill()
        other.wait()
    # once that process is gone, the run is picked up
    [resumed] = engine.resume_interrupted()
    assert resumed.status == "completed" and resumed.executor is None


def test_background_mode_returns_at_once_and_carries_the_run_on(users, pb_config, tmp_path,
                                                               http_receiver):
    http_receiver.delay["/chat"] = 1.5
    engine = custom_engine(users, pb_config, tmp_path, """\
        id: bg
        version: 1
        name: {vi: Nền, en: Background}
        triggers: [{tags: [x]}]
        phases:
          - phase: containment
            steps:
              - id: ok
                type: task
                title: {vi: Đồng ý, en: Agree}
              - id: tell
                type: action
                action: notify_webhook
                title: {vi: Báo, en: Tell}
                with: {webhook: soc_chat, message: hi}
        """)
    engine.background = True
    alert = raise_alert(users)
    run = engine.start("bg", actor="ana", alert_id=alert.id)
    deadline = time.monotonic() + 10
    while engine.runs.get(run.id).status != "waiting":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    run = engine.complete_task(run.id, "ok", "ana")
    assert time.monotonic() - started < 1.0  # the slow webhook is not waited for here
    assert run.status == "running"
    while (run := engine.runs.get(run.id)).status == "running":
        assert time.monotonic() < deadline + 10
        time.sleep(0.05)
    assert run.status == "completed" and run.steps["tell"].status == "succeeded"


def test_approvers_are_told_by_mail_when_configured(users, pb_config, library, smtp_sink):
    user = users.get_user("minh")
    user.email = "minh@tinh.gov.vn"
    users.update_user(user)
    pb_config.values["playbooks"]["notify_approvers"] = True
    engine = PlaybookEngine(users, pb_config, library, sleep=lambda s: None)
    alert = webshell_alert(users)
    run = engine.start("webshell-portal", actor="ana", alert_id=alert.id)
    engine.complete_task(run.id, "verify", "ana", evidence=["x"])
    [mail] = smtp_sink.messages
    assert mail["to"] == ["minh@tinh.gov.vn"]
    message = email.message_from_bytes(mail["data"], policy=email.policy.default)
    assert "Approval needed" in message["Subject"] and run.id in message["Subject"]
    assert "198.51.100.7" in message.get_content()
    assert "playbook.approval.notified" in audit_actions(users, run.id)
