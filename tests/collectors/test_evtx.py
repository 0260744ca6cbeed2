"""EVTX reader: records → ECS, damaged files → dead letters, deterministic ids."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from collectors.evtx import (
    CHUNK_SIZE,
    HEADER_BLOCK,
    EvtxStats,
    iter_evtx_paths,
    read_evtx,
    record_to_event,
)
from govsoc.errors import ParseError
from govsoc.events import get_field, validate_event
from tests.conftest import corpus_path

SYSMON_UACME = ("evtx-attack-samples", "Privilege Escalation", "Sysmon_UACME_64.evtx")


def _read(path: Path, **kwargs):
    events, rejected, batches = [], [], 0
    for batch in read_evtx(path, **kwargs):
        batches += 1
        events.extend(batch.events)
        rejected.extend(batch.rejected)
    return events, rejected, batches


def _system(event_id, channel="Security", provider="Microsoft-Windows-Security-Auditing",
            record_id=42, computer="DC01.example.gov",
            time="2024-03-01T08:15:30.123456Z", keywords="0x8020000000000000"):
    return {
        "Provider": {"#attributes": {"Name": provider,
                                     "Guid": "{54849625-5478-4994-A5BA-3E3B0328C30D}"}},
        "EventID": event_id, "Version": 2, "Level": 0, "Task": 12544, "Opcode": 0,
        "Keywords": keywords,
        "TimeCreated": {"#attributes": {"SystemTime": time}},
        "EventRecordID": record_id, "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": 636, "ThreadID": 700}},
        "Channel": channel, "Computer": computer, "Security": None,
    }


# --- mapping of single records ------------------------------------------------------

def test_security_logon_maps_winlog_user_source_and_outcome():
    record = {"Event": {"System": _system(4624), "EventData": {
        "SubjectUserSid": "S-1-5-18", "SubjectUserName": "DC01$", "SubjectDomainName": "EX",
        "SubjectLogonId": "0x3e7", "TargetUserSid": "S-1-5-21-1-2-3-1104",
        "TargetUserName": "nguyenvan", "TargetDomainName": "EXAMPLE",
        "TargetLogonId": "0x8a1f2", "LogonType": 10, "WorkstationName": "WS-17",
        "IpAddress": "::ffff:10.20.30.40", "IpPort": "50122", "ProcessId": "0x2f0",
        "ProcessName": "C:\\Windows\\System32\\svchost.exe", "ElevatedToken": "%%1842"}}}
    event = record_to_event(record)
    validate_event(event)
    assert event["@timestamp"] == "2024-03-01T08:15:30.123456Z"
    assert event["event"]["dataset"] == "windows.security"
    assert event["event"]["module"] == "windows"
    assert event["event"]["code"] == "4624"
    assert event["winlog"]["event_id"] == "4624"
    assert event["winlog"]["record_id"] == "42"
    assert event["winlog"]["channel"] == "Security"
    assert event["winlog"]["computer_name"] == "DC01.example.gov"
    assert event["host"]["name"] == "DC01.example.gov"
    assert event["winlog"]["process"] == {"pid": 636, "thread": {"id": 700}}
    assert event["winlog"]["keywords"] == ["Audit Success", "0x8020000000000000"]
    # event data kept as Windows names it, values as strings
    data = event["winlog"]["event_data"]
    assert data["LogonType"] == "10"
    assert data["IpAddress"] == "::ffff:10.20.30.40"
    assert data["ElevatedToken"] == "%%1842"
    # ECS
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["type"] == ["start"]
    assert event["event"]["action"] == "logged-in"
    assert event["event"]["outcome"] == "success"
    assert event["user"] == {"name": "nguyenvan", "domain": "EXAMPLE",
                             "id": "S-1-5-21-1-2-3-1104"}
    assert event["source"] == {"ip": "10.20.30.40", "port": 50122, "domain": "WS-17"}
    assert event["winlog"]["logon"] == {"id": "0x8a1f2", "type": "RemoteInteractive"}
    assert event["process"]["pid"] == 0x2F0
    assert event["process"]["name"] == "svchost.exe"


def test_failed_logon_is_a_failure_without_a_source_for_dash_values():
    record = {"Event": {"System": _system(4625, keywords="0x8010000000000000"), "EventData": {
        "TargetUserName": "admin", "TargetDomainName": "-", "LogonType": "3",
        "IpAddress": "-", "IpPort": "-", "Status": "0xc000006d"}}}
    event = record_to_event(record)
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["action"] == "logon-failed"
    assert event["user"] == {"name": "admin"}
    assert "source" not in event
    assert event["winlog"]["event_data"]["IpAddress"] == "-"


def test_sysmon_process_creation_fills_process_parent_hashes_and_user():
    data = {
        "RuleName": "-", "UtcTime": "2024-03-01 08:15:30.100",
        "ProcessGuid": "{3F1E2B44-0001-65E1-0B00-000000000F00}", "ProcessId": 4242,
        "Image": "C:\\Windows\\System32\\cmd.exe", "FileVersion": "10.0",
        "Description": "Windows Command Processor", "Product": "Microsoft Windows",
        "Company": "Microsoft Corporation", "OriginalFileName": "Cmd.Exe",
        "CommandLine": "cmd.exe /c whoami /all", "CurrentDirectory": "C:\\Users\\lan\\",
        "User": "EXAMPLE\\lan", "LogonId": "0x5f1a2", "IntegrityLevel": "High",
        "Hashes": "SHA1=AB,MD5=CD,SHA256=EF,IMPHASH=00000000000000000000000000000000",
        "ParentProcessGuid": "{3F1E2B44-0001-65E1-0A00-000000000F00}",
        "ParentProcessId": 1000, "ParentImage": "C:\\Program Files\\Office\\WINWORD.EXE",
        "ParentCommandLine": "\"WINWORD.EXE\" /n report.docm"}
    record = {"Event": {"System": _system(
        1, channel="Microsoft-Windows-Sysmon/Operational", provider="Microsoft-Windows-Sysmon",
        keywords="0x8000000000000000"), "EventData": data}}
    event = record_to_event(record)
    validate_event(event)
    assert event["event"]["dataset"] == "windows.sysmon_operational"
    assert event["event"]["category"] == ["process"]
    assert event["event"]["type"] == ["start"]
    ed = event["winlog"]["event_data"]
    assert ed["CommandLine"] == "cmd.exe /c whoami /all"
    assert ed["ProcessId"] == "4242" and ed["ParentProcessId"] == "1000"
    proc = event["process"]
    assert proc["executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert proc["name"] == "cmd.exe"
    assert proc["pid"] == 4242
    assert proc["command_line"] == "cmd.exe /c whoami /all"
    assert proc["working_directory"] == "C:\\Users\\lan\\"
    assert proc["entity_id"] == "{3F1E2B44-0001-65E1-0B00-000000000F00}"
    assert proc["hash"] == {"md5": "cd", "sha1": "ab", "sha256": "ef"}
    assert "pe" in proc and proc["pe"]["original_file_name"] == "Cmd.Exe"
    assert "imphash" not in proc["pe"]  # all-zero digests are not hashes
    assert proc["parent"]["name"] == "WINWORD.EXE"
    assert proc["parent"]["pid"] == 1000
    assert proc["parent"]["command_line"] == "\"WINWORD.EXE\" /n report.docm"
    assert event["user"] == {"name": "lan", "domain": "EXAMPLE"}
    assert event["winlog"]["logon"]["id"] == "0x5f1a2"


@pytest.mark.parametrize(("code", "data", "expected"), [
    ("3", {"Image": "C:\\x\\beacon.exe", "Protocol": "tcp", "Initiated": "true",
           "SourceIsIpv6": "false", "SourceIp": "10.0.0.5", "SourcePort": "49812",
           "DestinationIp": "203.0.113.9", "DestinationPort": "443",
           "DestinationHostname": "c2.example.net"},
     {"source.ip": "10.0.0.5", "source.port": 49812, "destination.ip": "203.0.113.9",
      "destination.port": 443, "destination.domain": "c2.example.net",
      "network.transport": "tcp", "network.direction": "egress", "network.type": "ipv4",
      "event.category": ["network"]}),
    ("11", {"Image": "C:\\w\\w.exe", "TargetFilename": "C:\\Users\\a\\AppData\\evil.PS1"},
     {"file.path": "C:\\Users\\a\\AppData\\evil.PS1", "file.name": "evil.PS1",
      "file.directory": "C:\\Users\\a\\AppData", "file.extension": "ps1",
      "event.type": ["creation"]}),
    ("13", {"EventType": "SetValue", "Image": "C:\\r.exe",
            "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\upd",
            "Details": "C:\\Users\\Public\\upd.exe"},
     {"registry.hive": "HKLM", "registry.value": "upd",
      "registry.key": "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
      "registry.data.strings": ["C:\\Users\\Public\\upd.exe"],
      "registry.data.type": "SZ", "event.category": ["configuration", "registry"]}),
    ("12", {"EventType": "DeleteKey", "TargetObject": "HKU\\S-1-5-21\\Software\\X"},
     {"registry.key": "S-1-5-21\\Software\\X", "event.type": ["deletion"]}),
    ("22", {"Image": "C:\\p.exe", "QueryName": "evil.example.org", "QueryStatus": "0",
            "QueryResults": "type:  5 cdn.example.org;::ffff:198.51.100.7;"},
     {"dns.question.name": "evil.example.org", "dns.response_code": "NOERROR",
      "dns.resolved_ip": ["198.51.100.7"],
      "dns.answers": [{"type": "CNAME", "data": "cdn.example.org"},
                      {"type": "A", "data": "198.51.100.7"}]}),
    ("10", {"SourceImage": "C:\\t\\mimikatz.exe", "SourceProcessId": "77",
            "SourceThreadId": "78", "TargetImage": "C:\\Windows\\system32\\lsass.exe",
            "GrantedAccess": "0x1010"},
     {"process.executable": "C:\\t\\mimikatz.exe", "process.pid": 77,
      "process.thread.id": 78, "winlog.event_data.TargetImage":
      "C:\\Windows\\system32\\lsass.exe", "winlog.event_data.GrantedAccess": "0x1010"}),
    ("17", {"PipeName": "\\PSEXESVC", "Image": "System"},
     {"file.name": "\\PSEXESVC", "event.action": "PipeEvent (Pipe Created)"}),
    ("7", {"Image": "C:\\a.exe", "ImageLoaded": "C:\\Windows\\System32\\dbghelp.dll",
           "Hashes": "MD5=AA"},
     {"dll.path": "C:\\Windows\\System32\\dbghelp.dll", "dll.name": "dbghelp.dll",
      "dll.hash.md5": "aa"}),
])
def test_sysmon_event_ids_map_to_ecs(code, data, expected):
    record = {"Event": {"System": _system(
        int(code), channel="Microsoft-Windows-Sysmon/Operational",
        provider="Microsoft-Windows-Sysmon", keywords="0x8000000000000000"),
        "EventData": data}}
    event = record_to_event(record)
    validate_event(event)
    for name, value in expected.items():
        assert get_field(event, name) == value, name


def test_group_membership_and_user_management():
    added = record_to_event({"Event": {"System": _system(4732), "EventData": {
        "MemberName": "CN=Tran Van B,OU=Staff,DC=example,DC=gov",
        "MemberSid": "S-1-5-21-9-1111", "TargetUserName": "Administrators",
        "TargetDomainName": "Builtin", "TargetSid": "S-1-5-32-544",
        "SubjectUserSid": "S-1-5-21-9-500", "SubjectUserName": "admin",
        "SubjectDomainName": "EXAMPLE", "SubjectLogonId": "0x1"}}})
    assert added["event"]["action"] == "added-member-to-group"
    assert added["group"] == {"name": "Administrators", "domain": "Builtin",
                              "id": "S-1-5-32-544"}
    assert added["user"]["name"] == "admin"
    assert added["user"]["target"] == {"name": "Tran Van B", "id": "S-1-5-21-9-1111"}
    created = record_to_event({"Event": {"System": _system(4720), "EventData": {
        "TargetUserName": "svc_backup", "TargetDomainName": "EXAMPLE",
        "TargetSid": "S-1-5-21-9-2001", "SubjectUserName": "admin",
        "SubjectDomainName": "EXAMPLE"}}})
    assert created["event"]["type"] == ["user", "creation"]
    assert created["user"]["target"]["name"] == "svc_backup"


def test_service_install_and_log_cleared_userdata():
    service = record_to_event({"Event": {"System": _system(
        {"#attributes": {"Qualifiers": 16384}, "#text": 7045}, channel="System",
        provider="Service Control Manager", keywords="0x8080000000000000"), "EventData": {
        "ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe",
        "ServiceType": "user mode service", "StartType": "demand start",
        "AccountName": "LocalSystem"}}})
    assert service["winlog"]["event_id"] == "7045"
    assert service["winlog"]["qualifiers"] == "16384"
    assert service["event"]["dataset"] == "windows.system"
    assert service["service"] == {"name": "PSEXESVC", "type": "user mode service"}
    assert service["event"]["action"] == "service-installed"
    cleared = record_to_event({"Event": {"System": _system(
        1102, provider="Microsoft-Windows-Eventlog"), "UserData": {"LogFileCleared": {
            "#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/"
                                     "eventlog"},
            "SubjectUserSid": "S-1-5-21-9-500", "SubjectUserName": "admin",
            "SubjectDomainName": "EXAMPLE", "SubjectLogonId": "0x3a1"}}}})
    assert cleared["winlog"]["user_data"]["xml_name"] == "LogFileCleared"
    assert cleared["winlog"]["user_data"]["SubjectUserName"] == "admin"
    # UserData leaves are reachable under Sigma's names too
    assert cleared["winlog"]["event_data"]["SubjectUserName"] == "admin"
    assert cleared["event"]["action"] == "audit-log-cleared"
    assert cleared["user"]["name"] == "admin"


def test_classic_unnamed_data_becomes_params_and_data_list():
    record = {"Event": {"System": _system(
        {"#attributes": {"Qualifiers": 0}, "#text": 400}, channel="Windows PowerShell",
        provider="PowerShell", keywords="0x80000000000000"), "EventData": {
        "Data": {"#text": ["Available", "None",
                           "\tNewEngineState=Available\r\n\tHostName=ConsoleHost\r\n"
                           "\tHostApplication=powershell.exe -nop -w hidden -enc SQBFAFgA\r\n"]},
        "Binary": None}}}
    event = record_to_event(record)
    data = event["winlog"]["event_data"]
    assert data["param1"] == "Available"
    assert data["param2"] == "None"
    assert data["Data"][2].startswith("\tNewEngineState=Available")
    assert data["Binary"] == ""
    assert event["event"]["dataset"] == "windows.powershell"
    assert event["process"]["command_line"] == "powershell.exe -nop -w hidden -enc SQBFAFgA"


@pytest.mark.parametrize(("channel", "dataset"), [
    ("Security", "windows.security"),
    ("Microsoft-Windows-Sysmon/Operational", "windows.sysmon_operational"),
    ("System", "windows.system"),
    ("Windows PowerShell", "windows.powershell"),
    ("Microsoft-Windows-PowerShell/Operational", "windows.powershell_operational"),
    ("Microsoft-Windows-TaskScheduler/Operational", "windows.taskscheduler_operational"),
    ("Microsoft-Windows-Windows Defender/Operational",
     "windows.windows_defender_operational"),
    ("OpenSSH/Operational", "windows.openssh_operational"),
])
def test_dataset_follows_the_channel(channel, dataset):
    event = record_to_event({"Event": {"System": _system(1, channel=channel)}})
    assert event["event"]["dataset"] == dataset


@pytest.mark.parametrize("record", [
    {"Event": {}},
    {"Event": {"System": {"Channel": "Security"}}},
    {"Event": {"System": {"EventID": 4624, "Channel": "Security"}}},
    {"Event": {"System": {"EventID": 4624, "TimeCreated": {"#attributes": {
        "SystemTime": "yesterday"}}}}},
    {"nothing": 1},
])
def test_records_missing_essentials_raise_parse_error_naming_the_record(record):
    with pytest.raises(ParseError) as info:
        record_to_event(record, source="x.evtx", position=7)
    assert "x.evtx:7" in str(info.value)


def test_event_id_is_deterministic_and_depends_on_time():
    first = record_to_event({"Event": {"System": _system(4624)}})
    again = record_to_event({"Event": {"System": _system(4624)}})
    other_time = record_to_event({"Event": {"System": _system(
        4624, time="2024-03-02T08:15:30.123456Z")}})
    other_host = record_to_event({"Event": {"System": _system(4624, computer="WS-2")}})
    assert first["event"]["id"] == again["event"]["id"]
    assert len({first["event"]["id"], other_time["event"]["id"],
                other_host["event"]["id"]}) == 3


# --- files ----------------------------------------------------------------------------

@pytest.mark.corpus
def test_reads_a_real_file_in_batches_with_checkpoints(tmp_path):
    path = corpus_path(*SYSMON_UACME)
    stats = EvtxStats()
    events, rejected, batches = _read(path, batch_size=100, stats=stats)
    assert len(events) == 530 and not rejected
    assert batches == 6
    assert stats.records == 530 and stats.events == 530
    for event in events:
        validate_event(event)
    assert len({e["event"]["id"] for e in events}) == 530
    # a copy of the file yields the same events (same ids): stores fold them
    copy = tmp_path / "copy.evtx"
    shutil.copyfile(path, copy)
    again, _, _ = _read(copy)
    assert [e["event"]["id"] for e in again] == [e["event"]["id"] for e in events]
    last = list(read_evtx(path, batch_size=1000))[-1]
    assert last.checkpoint is not None
    name, state = last.checkpoint
    assert name.startswith("evtx:") and state["records"] == 530


@pytest.mark.corpus
def test_damaged_chunk_is_a_dead_letter_and_other_chunks_survive(tmp_path):
    raw = bytearray(corpus_path(*SYSMON_UACME).read_bytes())
    start = HEADER_BLOCK + 2 * CHUNK_SIZE
    for i in range(start + 600, start + 3000, 7):
        raw[i] = (raw[i] * 31 + 17) % 256
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(raw))
    events, rejected, _ = _read(damaged)
    assert 400 < len(events) < 530
    assert len(rejected) >= 1
    letter = rejected[0]
    assert letter.source == str(damaged)
    assert "damaged EVTX data" in letter.reason
    assert letter.position.startswith("chunk at offset")
    assert len(letter.original) == CHUNK_SIZE


@pytest.mark.corpus
def test_truncated_file_keeps_whole_chunks_and_reports_the_tail(tmp_path):
    raw = corpus_path(*SYSMON_UACME).read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(raw[: HEADER_BLOCK + 3 * CHUNK_SIZE + 5000])
    events, rejected, _ = _read(cut)
    first_three = sum(
        struct.unpack_from("<Q", raw, HEADER_BLOCK + i * CHUNK_SIZE + 16)[0]
        - struct.unpack_from("<Q", raw, HEADER_BLOCK + i * CHUNK_SIZE + 8)[0] + 1
        for i in range(3))
    assert len(events) == first_three
    assert len(rejected) == 1 and "truncated chunk" in rejected[0].reason
    assert len(rejected[0].original) == 5000


@pytest.mark.corpus
def test_damaged_file_header_is_recovered_chunk_by_chunk(tmp_path):
    raw = bytearray(corpus_path(*SYSMON_UACME).read_bytes())
    raw[0:8] = b"XXXXXXXX"
    broken = tmp_path / "broken-header.evtx"
    broken.write_bytes(bytes(raw))
    stats = EvtxStats()
    events, rejected, _ = _read(broken, stats=stats)
    assert stats.recovered
    assert len(events) == 530
    assert any("file header" in r.reason for r in rejected)


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 100, b"\x00" * 70000,
                                     b"ElfFile\x00" + b"\xff" * 5000])
def test_garbage_files_are_dead_letters_not_crashes(tmp_path, content):
    path = tmp_path / "garbage.evtx"
    path.write_bytes(content)
    events, rejected, _ = _read(path)
    assert events == []
    assert rejected, "garbage must leave a dead letter"
    assert all(r.source == str(path) for r in rejected)


def test_missing_file_is_a_dead_letter(tmp_path):
    events, rejected, _ = _read(tmp_path / "gone.evtx")
    assert events == [] and len(rejected) == 1
    assert "cannot open" in rejected[0].reason


def test_directories_are_walked_for_evtx_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.evtx", "a/b/two.EVTX", "a/b/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_evtx_paths([tmp_path])]
    assert found == ["a/b/two.EVTX", "a/one.evtx"]  # sorted by path, other files skipped
    named = tmp_path / "a" / "b" / "notes.txt"
    assert list(iter_evtx_paths([named])) == [named]  # a named file is taken as it is


def test_record_identity_is_the_shared_event_id_at_millisecond_precision():
    from collectors.windows.winlog import record_identity
    from govsoc.events import event_id

    ours = record_identity("DC01", "Security", "42", "2024-03-01T08:15:30.123456Z")
    assert ours == event_id("evtx:dc01:security", "42@2024-03-01T08:15:30.123")
    # a Winlogbeat export of the same record carries milliseconds only
    assert ours == record_identity("DC01", "Security", "42", "2024-03-01T08:15:30.123Z")


def test_mutated_records_give_valid_events_or_parse_errors_only():
    """Hostile records (wrong types anywhere, huge numbers, nested junk) never
    crash the mapping and never yield an event the store would refuse."""
    import copy
    import random

    import orjson

    templates = [
        {"Event": {"System": _system(4624), "EventData": {
            "TargetUserName": "a", "IpAddress": "10.0.0.1", "IpPort": "5", "LogonType": 3,
            "ProcessId": "0x10", "ProcessName": "C:\\a.exe"}}},
        {"Event": {"System": _system(1, channel="Microsoft-Windows-Sysmon/Operational",
                                     provider="Microsoft-Windows-Sysmon"), "EventData": {
            "Image": "C:\\a.exe", "CommandLine": "a", "Hashes": "MD5=AA,SHA256=BB",
            "ParentProcessId": 4, "User": "D\\u"}}},
        {"Event": {"System": _system(13, channel="Microsoft-Windows-Sysmon/Operational",
                                     provider="Microsoft-Windows-Sysmon"), "EventData": {
            "EventType": "SetValue", "TargetObject": "HKLM\\A\\B", "Details": "DWORD (0x1)"}}},
        {"Event": {"System": _system(1102, provider="Microsoft-Windows-Eventlog"),
                   "UserData": {"LogFileCleared": {"SubjectUserName": "x"}}}},
    ]
    junk = [None, 1, -5, "x", [], {}, {"#attributes": "x"}, {"#attributes": {}}, True, 1.5,
            ["a", {"b": 1}], {"#text": None}, {"#text": [1, [2]]}, "0x", "-1", 10**30,
            "9" * 40]
    rnd = random.Random(1)

    def mutate(node, depth=0):
        if isinstance(node, dict) and node:
            key = rnd.choice(list(node))
            if rnd.random() < 0.5 or depth > 3:
                node[key] = copy.deepcopy(rnd.choice(junk))
            else:
                mutate(node[key], depth + 1)

    outcomes = {"event": 0, "parse error": 0}
    for _ in range(3000):
        record = copy.deepcopy(rnd.choice(templates))
        for _ in range(rnd.randint(1, 3)):
            mutate(record)
        try:
            event = record_to_event(record)
        except ParseError:
            outcomes["parse error"] += 1
            continue
        validate_event(event)
        orjson.dumps(event)
        outcomes["event"] += 1
    assert outcomes["event"] > 500 and outcomes["parse error"] > 500
