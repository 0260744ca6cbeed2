"""Windows Security 4688 (process creation audit) reaches Sigma ``process_creation`` rules.

Real records from the corpus, read by the EVTX collector; the rules are SigmaHQ's,
written against Sysmon's field names, which pySigma's windows_audit pipeline maps
onto 4688 (``Image`` → ``NewProcessName``, ``ParentImage`` → ``ParentProcessName``).
The SQLite reference, given the same rules through that pipeline, must agree.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from collectors.evtx import read_evtx
from detection.sigma.engine import SigmaDetector
from detection.sigma.reference import ReferenceDatabase, convert_rules
from detection.sigma.ruleset import load_ruleset
from govsoc.events import Event
from tests.conftest import corpus_path

pytestmark = pytest.mark.corpus

NET_USER_ADD = "cd219ff3-fa99-45d4-8380-a7d15116c6dc"  # New User Created Via Net.EXE
WMIPRVSE_SPAWN = "d21374ff-f574-44a7-9998-4a8c8bf33d7d"  # WmiPrvSE Spawned A Process


def _record(path: Path, record_id: str) -> Event:
    for batch in read_evtx(path):
        for event in batch.events:
            if event["winlog"].get("record_id") == record_id:
                return event
    raise AssertionError(f"record {record_id} not in {path}")


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> SigmaDetector:
    rules = corpus_path("sigma", "rules", "windows", "process_creation")
    ruleset = load_ruleset([rules / "proc_creation_win_net_user_add.yml",
                            rules / "proc_creation_win_wmiprvse_spawning_process.yml"],
                           cache_dir=tmp_path_factory.mktemp("cache"))
    assert {r.rule_id for r in ruleset.rules} == {NET_USER_ADD, WMIPRVSE_SPAWN}
    return SigmaDetector(ruleset)


def _fired(detector: SigmaDetector, event: Event) -> set[str]:
    return {a.rule_id for a in detector.detect([event])}


def test_4688_new_process_name_is_the_rules_image(detector: SigmaDetector) -> None:
    event = _record(corpus_path(
        "hayabusa-sample-evtx", "EVTX-to-MITRE-Attack", "TA0003-Persistence",
        "T1136-Create account", "ID4688-User creation via commandline.evtx"), "60383")
    assert event["winlog"]["event_data"]["NewProcessName"].endswith("\\net.exe")
    assert _fired(detector, event) == {NET_USER_ADD}
    other = copy.deepcopy(event)
    other["winlog"]["event_data"]["NewProcessName"] = "C:\\Windows\\System32\\notepad.exe"
    assert _fired(detector, other) == set()


def test_4688_parent_process_name_is_the_rules_parent_image(detector: SigmaDetector) -> None:
    event = _record(corpus_path(
        "evtx-attack-samples", "Privilege Escalation",
        "NTLM2SelfRelay-med0x2e-security_4624_4688.evtx"), "21374")
    assert event["winlog"]["event_data"]["ParentProcessName"].lower().endswith("\\wmiprvse.exe")
    assert _fired(detector, event) == {WMIPRVSE_SPAWN}
    other = copy.deepcopy(event)
    other["winlog"]["event_data"]["ParentProcessName"] = "C:\\Windows\\explorer.exe"
    assert _fired(detector, other) == set()
    # a 4688 is not a Sysmon event: another event id of the channel reaches no such rule
    renumbered = copy.deepcopy(event)
    renumbered["winlog"]["event_id"] = "4689"
    assert _fired(detector, renumbered) == set()


def test_sqlite_reference_through_the_audit_pipeline_agrees(detector: SigmaDetector) -> None:
    rules = corpus_path("sigma", "rules", "windows", "process_creation")
    files = [rules / "proc_creation_win_net_user_add.yml",
             rules / "proc_creation_win_wmiprvse_spawning_process.yml"]
    events = [e for path in (
        corpus_path("hayabusa-sample-evtx", "EVTX-to-MITRE-Attack", "TA0003-Persistence",
                    "T1136-Create account", "ID4688-User creation via commandline.evtx"),
        corpus_path("evtx-attack-samples", "Privilege Escalation",
                    "NTLM2SelfRelay-med0x2e-security_4624_4688.evtx"))
        for batch in read_evtx(path) for e in batch.events]
    reference = convert_rules((str(p), p.read_text(encoding="utf-8")) for p in files)
    db = ReferenceDatabase(sorted({f for r in reference for f in r.fields}))
    db.insert(events)
    numbers = {r.rule_id: n for n, r in enumerate(detector.rules)}
    total = 0
    for ref in reference:
        theirs = set(db.run(ref))
        ours = {i for i, e in enumerate(events) if numbers[ref.rule_id] in
                detector.match_numbers(e)}
        assert ours == theirs, ref.rule_id
        total += len(ours)
    assert total >= 3
