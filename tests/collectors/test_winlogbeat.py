"""Windows events exported as JSON or XML lines: Winlogbeat / Elastic Agent, NXLog
(Security-Datasets), Log Analytics, Sysmon for Linux, evtx_dump → ECS."""

from __future__ import annotations

import json
import zipfile
from collections import Counter

import orjson
import pytest

from collectors.evtx import iter_evtx_paths, read_evtx
from collectors.jsonl import parse_json_line
from collectors.winlog_json import read_winlog_json, windows_record_event, xml_to_record
from govsoc.errors import ParseError
from govsoc.events import get_field, validate_event
from tests.conftest import corpus_path


def _event(doc, line=1):
    raw = orjson.dumps(doc)
    return windows_record_event(orjson.loads(raw), raw, "export.json", line)


WINLOGBEAT_4624 = {
    "@timestamp": "2024-03-01T08:15:30.123Z",
    "agent": {"type": "winlogbeat", "version": "8.12.0"},
    "event": {"kind": "event", "created": "2024-03-01T08:15:31.000Z",
              "provider": "Microsoft-Windows-Security-Auditing", "outcome": "success",
              "action": "Logon", "code": "4624"},
    "winlog": {
        "channel": "Security", "provider_name": "Microsoft-Windows-Security-Auditing",
        "event_id": 4624, "record_id": 42, "computer_name": "DC01.example.gov",
        "keywords": ["Audit Success"], "opcode": "Info", "task": "Logon",
        "process": {"pid": 636, "thread": {"id": 700}},
        "event_data": {"TargetUserName": "nguyenvan", "TargetDomainName": "EXAMPLE",
                       "TargetUserSid": "S-1-5-21-1-2-3-1104", "LogonType": "10",
                       "IpAddress": "10.20.30.40", "IpPort": "50122",
                       "TargetLogonId": "0x8a1f2", "KeyLength": 0},
    },
    "host": {"name": "dc01"},
}

AGENT_SYSMON_1 = {
    "@timestamp": "2024-03-01T09:00:00.500Z",
    "data_stream": {"dataset": "windows.sysmon_operational", "namespace": "default"},
    "event": {"kind": "event", "category": ["process"], "type": ["start"],
              "action": "Process creation", "dataset": "windows.sysmon_operational",
              "module": "sysmon", "code": "1"},
    "process": {"executable": "C:\\Windows\\System32\\cmd.exe", "name": "cmd.exe",
                "pid": 4242, "entity_id": "{AA}", "command_line": "cmd.exe /c whoami",
                "parent": {"executable": "C:\\Office\\WINWORD.EXE", "pid": 1000,
                           "command_line": "WINWORD.EXE /n x.docm"},
                "pe": {"original_file_name": "Cmd.Exe"},
                "hash": {"sha256": "ab12", "md5": "cd34"}},
    "user": {"name": "lan", "domain": "EXAMPLE"},
    "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational",
               "provider_name": "Microsoft-Windows-Sysmon", "event_id": "1",
               "record_id": "9001", "computer_name": "WS-17.example.gov",
               "event_data": {"IntegrityLevel": "High", "LogonId": "0x5f1a2"}},
}


def test_winlogbeat_security_export_gets_the_same_shape_and_id_as_evtx():
    event = _event(WINLOGBEAT_4624)
    validate_event(event)
    assert event["winlog"]["event_id"] == "4624"
    assert event["event"]["code"] == "4624"
    assert event["winlog"]["record_id"] == "42"
    assert event["event"]["dataset"] == "windows.security"
    assert event["event"]["module"] == "windows"
    assert event["host"]["name"] == "dc01"  # the shipper's value is kept
    assert event["winlog"]["event_data"]["KeyLength"] == "0"  # strings like Winlogbeat
    # the shipper left it unmapped (no event.category): ECS enrichment added
    assert event["event"]["category"] == ["authentication"]
    assert event["user"]["name"] == "nguyenvan"
    assert event["source"]["ip"] == "10.20.30.40"
    assert event["winlog"]["logon"]["type"] == "RemoteInteractive"
    # the same record read from the EVTX (microseconds) gets the same id
    from collectors.evtx import record_to_event

    evtx_event = record_to_event({"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
        "EventID": 4624, "TimeCreated": {"#attributes": {
            "SystemTime": "2024-03-01T08:15:30.123456Z"}},
        "EventRecordID": 42, "Channel": "Security", "Computer": "DC01.example.gov"}}})
    assert evtx_event["event"]["id"] == event["event"]["id"]


def test_elastic_agent_sysmon_export_gets_its_event_data_back_for_sigma():
    event = _event(AGENT_SYSMON_1)
    validate_event(event)
    data = event["winlog"]["event_data"]
    assert data["Image"] == "C:\\Windows\\System32\\cmd.exe"
    assert data["CommandLine"] == "cmd.exe /c whoami"
    assert data["ParentImage"] == "C:\\Office\\WINWORD.EXE"
    assert data["ParentCommandLine"] == "WINWORD.EXE /n x.docm"
    assert data["ProcessId"] == "4242"
    assert data["OriginalFileName"] == "Cmd.Exe"
    assert data["User"] == "EXAMPLE\\lan"
    assert data["IntegrityLevel"] == "High"
    assert data["Hashes"] in ("SHA256=AB12,MD5=CD34", "MD5=CD34,SHA256=AB12")
    # the shipper's ECS mapping is kept, not redone
    assert event["event"]["action"] == "Process creation"
    assert event["event"]["dataset"] == "windows.sysmon_operational"


def test_dotted_winlogbeat_keys_are_expanded():
    doc = {"@timestamp": "2024-03-01T08:15:30.123Z", "winlog.channel": "System",
           "winlog.provider_name": "Service Control Manager", "winlog.event_id": "7045",
           "winlog.computer_name": "SRV1", "winlog.event_data.ServiceName": "PSEXESVC",
           "winlog.event_data.ImagePath": "%SystemRoot%\\PSEXESVC.exe"}
    event = _event(doc)
    assert event["event"]["dataset"] == "windows.system"
    assert event["winlog"]["event_data"]["ServiceName"] == "PSEXESVC"
    assert event["service"]["name"] == "PSEXESVC"


XML_4688 = (
    '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
    '<Provider Name="Microsoft-Windows-Security-Auditing" '
    'Guid="{54849625-5478-4994-A5BA-3E3B0328C30D}"/><EventID>4688</EventID>'
    '<Version>2</Version><Level>0</Level><Task>13312</Task><Opcode>0</Opcode>'
    '<Keywords>0x8020000000000000</Keywords>'
    '<TimeCreated SystemTime="2024-03-01T10:00:00.1234567Z"/>'
    '<EventRecordID>777</EventRecordID><Correlation/>'
    '<Execution ProcessID="4" ThreadID="88"/><Channel>Security</Channel>'
    '<Computer>WS-17</Computer><Security/></System><EventData>'
    '<Data Name="SubjectUserName">lan</Data><Data Name="SubjectDomainName">EXAMPLE</Data>'
    '<Data Name="NewProcessId">0x1a2b</Data>'
    '<Data Name="NewProcessName">C:\\Windows\\System32\\whoami.exe</Data>'
    '<Data Name="CommandLine">whoami /priv &amp; echo</Data>'
    '<Data Name="ProcessId">0x99</Data><Data Name="TargetUserName">-</Data>'
    '<Data Name="MandatoryLabel"/></EventData></Event>')


def test_event_xml_lines_read_like_evtx_records(tmp_path):
    path = tmp_path / "events.xml"
    path.write_text(XML_4688 + "\n" + '<!DOCTYPE x [<!ENTITY a "b">]><Event/>\n'
                    + "<Event><System>\n", encoding="utf-8")
    batches = list(read_winlog_json(path))
    events = [e for b in batches for e in b.events]
    rejected = [r for b in batches for r in b.rejected]
    assert len(events) == 1 and len(rejected) == 2
    event = events[0]
    assert event["@timestamp"] == "2024-03-01T10:00:00.123456Z"
    assert event["winlog"]["event_data"]["CommandLine"] == "whoami /priv & echo"
    assert event["winlog"]["event_data"]["MandatoryLabel"] == ""
    assert event["process"]["pid"] == 0x1A2B
    assert event["process"]["parent"]["pid"] == 0x99
    assert event["event"]["outcome"] == "success"
    assert "DOCTYPE" in rejected[0].reason and rejected[0].position == "2"
    assert "malformed event XML" in rejected[1].reason


def test_sysmon_for_linux_syslog_record_with_bare_ampersands():
    xml = ('<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593}"/>'
           '<EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task>'
           '<Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>'
           '<TimeCreated SystemTime="2022-05-11T18:10:22.016835000Z"/>'
           '<EventRecordID>245762</EventRecordID><Correlation/>'
           '<Execution ProcessID="1590" ThreadID="1590"/>'
           '<Channel>Linux-Sysmon/Operational</Channel><Computer>UBUNTU5</Computer>'
           '<Security UserId="0"/></System><EventData>'
           '<Data Name="Image">/bin/bash</Data><Data Name="CommandLine">bash -i</Data>'
           '<Data Name="ParentImage">&lt unknown process&gt </Data>'
           '<Data Name="User">tomcat</Data></EventData></Event>')
    doc = {"SourceSystem": "Linux", "TimeGenerated": "2022-05-11T18:10:22.4Z",
           "Computer": "UBUNTU5", "ProcessName": "sysmon", "Type": "Syslog",
           "SyslogMessage": xml}
    event = _event(doc)
    validate_event(event)
    assert event["event"]["dataset"] == "sysmon_linux.log"
    assert event["event"]["module"] == "sysmon_linux"
    assert event["host"]["os"]["type"] == "linux"
    assert event["winlog"]["user"]["identifier"] == "0"
    assert event["winlog"]["event_data"]["ParentImage"] == "&lt unknown process&gt "
    assert event["process"]["name"] == "bash"
    assert event["user"]["name"] == "tomcat"
    # the same XML in a record of another program is not taken for a Windows event
    assert _event({"ProcessName": "nginx", "SyslogMessage": xml}) is None


def test_flattened_nxlog_record_separates_metadata_from_event_data():
    doc = {"SourceName": "Microsoft-Windows-Sysmon", "Channel":
           "Microsoft-Windows-Sysmon/Operational", "Hostname": "WORKSTATION5.theshire.local",
           "EventTime": "2020-10-18 22:56:41", "@timestamp": "2020-10-19T02:56:41.870Z",
           "EventID": 13, "EventType": "INFO", "EventTypeOrignal": "SetValue",
           "RecordNumber": 1234, "ExecutionProcessID": 3304, "ThreadID": 4200,
           "SourceModuleType": "im_msvistalog", "AccountName": "SYSTEM",
           "Domain": "NT AUTHORITY", "UserID": "S-1-5-18", "Task": 13, "port": 60737,
           "Message": "Registry value set:", "Image": "C:\\x\\reg.exe",
           "TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\Fax\\ImagePath",
           "Details": "C:\\Users\\Public\\evil.exe", "RuleName": "-"}
    event = _event(doc)
    validate_event(event)
    data = event["winlog"]["event_data"]
    assert set(data) == {"Image", "TargetObject", "Details", "RuleName", "EventType"}
    assert data["EventType"] == "SetValue"
    assert event["winlog"]["record_id"] == "1234"
    assert event["winlog"]["process"] == {"pid": 3304, "thread": {"id": 4200}}
    assert event["winlog"]["user"]["identifier"] == "S-1-5-18"
    assert event["message"] == "Registry value set:"
    assert event["registry"]["value"] == "ImagePath"
    assert event["@timestamp"] == "2020-10-19T02:56:41.870000Z"


def test_log_analytics_rows_with_xml_and_json_event_data():
    security = {"TimeGenerated": "2022-05-13T08:54:05.21Z", "Computer": "WORKSTATION5",
                "EventSourceName": "Microsoft-Windows-Security-Auditing",
                "Channel": "Security", "EventID": 5156, "Type": "SecurityEvent",
                "EventData": '<EventData xmlns="http://schemas.microsoft.com/win/2004/08/'
                             'events/event">\r\n  <Data Name="SourceAddress">192.168.3.5'
                             '</Data>\r\n  <Data Name="DestPort">8080</Data>\r\n  '
                             '<Data Name="Protocol">6</Data></EventData>'}
    event = _event(security)
    assert event["winlog"]["event_data"] == {"SourceAddress": "192.168.3.5",
                                             "DestPort": "8080", "Protocol": "6"}
    assert event["destination"]["port"] == 8080
    assert event["network"]["transport"] == "tcp"
    sysmon = {"TimeGenerated": "2022-05-13T08:54:06.347Z", "Provider":
              "Microsoft-Windows-Sysmon", "Channel": "Microsoft-Windows-Sysmon/Operational",
              "Computer": "WORKSTATION5", "EventID": 3, "Type": "WindowsEvent",
              "EventData": json.dumps({"Image": "C:\\t\\tomcat9.exe", "Protocol": "tcp",
                                       "DestinationIp": "192.168.2.5",
                                       "DestinationPort": "8080"})}
    event = _event(sysmon)
    assert event["event"]["dataset"] == "windows.sysmon_operational"
    assert event["destination"] == {"ip": "192.168.2.5", "port": 8080}


def test_generic_ecs_lines_are_left_to_the_jsonl_collector():
    assert _event({"@timestamp": "2024-01-01T00:00:00Z", "event": {
        "kind": "event", "dataset": "apache.access"}}) is None
    line = orjson.dumps(WINLOGBEAT_4624)
    event = parse_json_line(line, "/var/exports/dc01.ndjson", 3, 0)
    assert event["event"]["dataset"] == "windows.security"
    assert event["log"]["file"]["path"] == "/var/exports/dc01.ndjson"


def test_broken_windows_records_raise_parse_errors_naming_the_line():
    with pytest.raises(ParseError) as info:
        _event({"winlog": {"channel": "Security"}}, line=9)
    assert "export.json:9" in str(info.value)
    with pytest.raises(ParseError):
        _event({"EventID": 4624, "Channel": "Security"})  # no time at all
    with pytest.raises(ParseError):
        xml_to_record("<NotEvent/>")


@pytest.mark.corpus
def test_security_datasets_windows_and_linux_sysmon_records_all_read():
    root = corpus_path("security-datasets", "datasets")
    archives = [p for p in sorted(root.rglob("*.zip")) if "/host/" in str(p)
                or "sysmon" in p.name or "securityauditing" in p.name]
    assert len(archives) >= 25
    datasets: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    sysmon_process_creations = 0
    for archive in archives:
        with zipfile.ZipFile(archive) as zipped:
            names = zipped.namelist()
        if not any(n.endswith(".json") for n in names):
            continue  # raw auditd text, read by the auditd collector
        for batch in read_winlog_json(archive):
            for event in batch.events:
                datasets[event["event"]["dataset"]] += 1
                if (event["event"]["dataset"] == "windows.sysmon_operational"
                        and event["winlog"]["event_id"] == "1"):
                    sysmon_process_creations += 1
                    assert get_field(event, "winlog.event_data.CommandLine") is not None
                    assert get_field(event, "process.command_line") is not None
            for letter in batch.rejected:
                rejected[letter.reason.split(" (")[0]] += 1
    # only the non-Windows rows of the compound set (auoms auditd, VM Insights
    # connections) and one Sysmon-for-Linux syslog row without its XML are left
    assert sum(rejected.values()) <= 60, rejected
    assert set(rejected) <= {"not a Windows event record"}, rejected
    assert datasets["windows.sysmon_operational"] > 10000
    assert datasets["windows.security"] > 6000
    assert datasets["sysmon_linux.log"] >= 70
    assert datasets["windows.powershell"] > 100
    assert sysmon_process_creations >= 50


@pytest.mark.corpus
def test_evtx_dump_json_lines_give_the_events_the_evtx_gives(tmp_path):
    files = list(iter_evtx_paths([corpus_path("sigma", "regression_data")]))[:40]
    lines, expected = [], {}
    decoder = json.JSONDecoder()
    for path in files:
        for event in (e for b in read_evtx(path) for e in b.events):
            expected[event["event"]["id"]] = event
        text = path.with_suffix(".json").read_text(encoding="utf-8-sig")
        index = 0
        while index < len(text):
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                break
            obj, index = decoder.raw_decode(text, index)
            lines.append(json.dumps(obj))
    export = tmp_path / "evtx_dump.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events = [e for b in read_winlog_json(export) for e in b.events]
    assert len(events) == len(lines)
    for event in events:
        twin = expected[event["event"]["id"]]  # same id: stored once
        assert event["event"]["dataset"] == twin["event"]["dataset"]
        assert event["winlog"]["event_id"] == twin["winlog"]["event_id"]
        assert event.get("process", {}).get("executable") == \
            twin.get("process", {}).get("executable")


def test_hostile_lines_are_dead_letters(tmp_path):
    deep = "[" * 5000 + "]" * 5000
    nested = '{"winlog": {"event_id": 1, "channel": "Security", "event_data": ' \
        + '{"a":' * 200 + "1" + "}" * 200 + "}, \"@timestamp\": \"2024-01-01T00:00:00Z\"}"
    path = tmp_path / "hostile.ndjson"
    path.write_bytes(b"\n".join([
        deep.encode(), b"\xff\xfe not utf-8", nested.encode(),
        b'{"EventID": 1, "Channel": "x", "TimeCreated": "not a time"}',
        orjson.dumps(WINLOGBEAT_4624)]) + b"\n")
    batches = list(read_winlog_json(path))
    events = [e for b in batches for e in b.events]
    rejected = [r for b in batches for r in b.rejected]
    assert len(events) == 2  # the Winlogbeat record and the nested one (as JSON text)
    assert [r.position for r in rejected] == ["1", "2", "4"]
    nested_event = next(e for e in events if e["winlog"]["event_id"] == "1")
    assert nested_event["winlog"]["event_data"]["a"].startswith('{"a":')
