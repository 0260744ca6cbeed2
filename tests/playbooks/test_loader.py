"""Playbook loading: the shipped library validates; bad playbooks are refused with file
and line, and the good ones next to them still load."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from govsoc.errors import RuleError
from playbooks.loader import SCHEMA_PATH, load_library, load_playbook, parse_playbook
from playbooks.model import PHASES

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks" / "library"
SHIPPED = sorted(LIBRARY.glob("*.yml"))

GOOD = """\
id: tiny
version: 1
name: {vi: Nhỏ, en: Tiny}
triggers:
  - tags: [test]
phases:
  - phase: detection_analysis
    steps:
      - id: look
        type: task
        title: {vi: Xem, en: Look}
"""


def test_the_schema_is_a_valid_json_schema():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_shipped_playbooks():
    ids = {yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in SHIPPED}
    assert ids == {"webshell-portal", "brute-force-ssh-vpn", "malware-c2-beaconing",
                   "phishing-attachment", "web-defacement", "ddos-public-services",
                   "compromised-account", "dns-exfiltration", "recon-port-scan"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_playbook_validates_and_is_bilingual(path):
    from playbooks.actions import ACTIONS

    playbook = load_playbook(path, ACTIONS)
    assert playbook.name.vi and playbook.name.en and playbook.name.vi != playbook.name.en
    for step in playbook.steps:
        assert step.title.vi.strip() and step.title.en.strip(), step.id
    # NIST SP 800-61 order, and a response reaches containment and post-incident
    order = [PHASES.index(p) for p in playbook.phases]
    assert order == sorted(order)
    assert "containment" in playbook.phases and "post_incident" in playbook.phases
    assert any(s.type == "task" for s in playbook.steps)
    assert any(s.type == "action" for s in playbook.steps)
    for step in playbook.steps:
        if step.type == "action" and ACTIONS[step.action].destructive:
            assert step.approval is not None, f"{step.id} is destructive without an approval"


def test_a_good_playbook_parses():
    playbook = parse_playbook(GOOD, "tiny.yml", known_actions=[])
    assert playbook.id == "tiny"
    assert [s.id for s in playbook.steps] == ["look"]


@pytest.mark.parametrize(("text", "line", "words"), [
    # YAML syntax error: the line of the problem
    (GOOD.replace("    steps:\n", "    steps: [\n"), 9, "invalid YAML"),
    # a required key missing in a step
    (GOOD.replace("        title: {vi: Xem, en: Look}\n", ""), 9, "title"),
    # a wrong phase name
    (GOOD.replace("detection_analysis", "detect"), 7, "detect"),
    # a title without English
    (GOOD.replace("{vi: Xem, en: Look}", "{vi: Xem}"), 11, "'en' is a required"),
    # a trigger with no condition
    (GOOD.replace("  - tags: [test]\n", "  - auto_run: true\n"), 5, "triggers/0"),
    # a key that does not exist
    (GOOD.replace("version: 1\n", "version: 1\nowner: me\n"), None, "owner"),
    # a duplicate key
    (GOOD.replace("version: 1\n", "version: 1\nversion: 2\n"), 3, "duplicate key"),
])
def test_bad_playbooks_are_refused_with_the_line(text, line, words):
    with pytest.raises(RuleError) as info:
        parse_playbook(text, "bad.yml", known_actions=[])
    error = info.value
    assert error.path == "bad.yml"
    assert words in str(error)
    if line is not None:
        assert error.line == line, str(error)
    assert str(error).startswith("bad.yml:")


def test_an_unknown_action_is_refused_with_its_line():
    text = GOOD + """\
      - id: zap
        type: action
        action: launch_missiles
        title: {vi: Bắn, en: Fire}
"""
    with pytest.raises(RuleError) as info:
        parse_playbook(text, "bad.yml", known_actions=["block_ip", "notify_email"])
    assert info.value.line == 14
    assert "unknown action 'launch_missiles'" in str(info.value)
    assert "block_ip" in str(info.value)


def test_a_task_step_with_action_keys_is_refused():
    text = GOOD.replace("        title: {vi: Xem, en: Look}\n",
                        "        title: {vi: Xem, en: Look}\n        retries: 3\n")
    with pytest.raises(RuleError, match="retries not allowed in a task step"):
        parse_playbook(text, "bad.yml", known_actions=[])


def test_duplicate_step_ids_are_refused():
    text = GOOD + """\
      - id: look
        type: task
        title: {vi: Xem lại, en: Look again}
"""
    with pytest.raises(RuleError, match="used twice") as info:
        parse_playbook(text, "bad.yml", known_actions=[])
    assert info.value.line == 12


def test_a_directory_loads_the_good_and_reports_the_bad(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yml").write_text(GOOD.replace("id: tiny", "id: Bad Id!"), encoding="utf-8")
    (tmp_path / "twin.yml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a playbook", encoding="utf-8")
    library = load_library([tmp_path])
    assert list(library.playbooks) == ["tiny"]
    messages = sorted(str(e) for e in library.errors)
    assert len(messages) == 2
    assert any(m.startswith(str(tmp_path / "bad.yml") + ":1: id:") for m in messages)
    assert any("already used" in m and "twin.yml" in m for m in messages)
