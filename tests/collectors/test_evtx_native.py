"""The compiled EVTX path (``govsoc_evtx``) gives what the Python path gives.

Every ``.evtx`` file of the corpus is read both ways and the batches compared:
events (``==``), dead letters (source, position, reason, original bytes),
checkpoints and counts. Damaged copies (a mangled chunk, records cut in the
middle, a cut file, a broken header) hold the two to each other where the
compiled reader hands the rest of a file back to the Python package. Records no
file holds (odd addresses, numbers out of range, missing or oddly shaped parts)
are mapped one by one both ways.
"""

from __future__ import annotations

import copy
import json
import random
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from collectors.evtx import CHUNK_SIZE, HEADER_BLOCK, EvtxStats, read_evtx, record_to_event
from collectors.native import native_module
from govsoc.errors import ParseError

NATIVE = native_module("evtx")
CORPUS_DIRS = (("evtx-attack-samples",), ("hayabusa-sample-evtx",), ("sigma", "regression_data"))

pytestmark = pytest.mark.skipif(
    NATIVE is None, reason="the compiled module govsoc_evtx is not installed (scripts/build-native)"
    " or GOVSOC_NATIVE=0 turns it off")


def _read_both(path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[Any, Any]:
    """(native, python) readings of ``path``: batches as comparable tuples, and stats."""
    readings = []
    for native in ("1", "0"):
        monkeypatch.setenv("GOVSOC_NATIVE", native)
        stats = EvtxStats()
        batches = [(batch.events,
                    [(r.source, r.position, r.reason, r.original) for r in batch.rejected],
                    batch.checkpoint)
                   for batch in read_evtx(path, stats=stats, **kwargs)]
        readings.append((batches, vars(stats)))
    monkeypatch.delenv("GOVSOC_NATIVE")
    return readings[0], readings[1]


def _assert_same(path: Path, monkeypatch: pytest.MonkeyPatch,
                 **kwargs: Any) -> tuple[int, int]:
    """Asserts the two readings are equal; (records, rejected) read."""
    native, python = _read_both(path, monkeypatch, **kwargs)
    assert native[1] == python[1], f"{path}: counts differ"
    assert len(native[0]) == len(python[0]), f"{path}: batch count differs"
    for number, (ours, theirs) in enumerate(zip(native[0], python[0], strict=True)):
        for event, reference in zip(ours[0], theirs[0], strict=True):
            assert event == reference, f"{path} batch {number}: {_difference(event, reference)}"
            # key order too: stored and exported events serialise alike
            assert json.dumps(event) == json.dumps(reference), f"{path}: key order differs"
        assert ours == theirs, f"{path} batch {number}: dead letters or checkpoint differ"
    return int(python[1]["events"]), int(python[1]["rejected"])


def _difference(ours: Any, theirs: Any, where: str = "") -> str:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                return _difference(ours.get(key), theirs.get(key), f"{where}.{key}")
    return f"{where or 'event'}: {ours!r:.300} != {theirs!r:.300}"


@pytest.fixture(scope="module")
def corpus_files() -> list[Path]:
    from tests.conftest import corpus_path

    files: list[Path] = []
    for parts in CORPUS_DIRS:
        files.extend(sorted(corpus_path(*parts).rglob("*.evtx")))
    return files


@pytest.mark.corpus
def test_every_corpus_file_reads_the_same_both_ways(corpus_files, monkeypatch):
    records = sum(sum(_assert_same(path, monkeypatch)) for path in corpus_files)
    assert len(corpus_files) > 500 and records > 8000


@pytest.mark.corpus
def test_small_batches_cut_at_the_same_records(corpus_files, monkeypatch):
    for path in corpus_files[::40]:
        _assert_same(path, monkeypatch, batch_size=7)


def _largest(files: list[Path]) -> Path:
    return max(files, key=lambda p: p.stat().st_size)


@pytest.mark.corpus
def test_damaged_chunks_hand_over_to_the_python_package_at_the_same_record(
        corpus_files, tmp_path, monkeypatch):
    source = _largest(corpus_files)
    chunks = (source.stat().st_size - HEADER_BLOCK) // CHUNK_SIZE
    damaged_readings = 0
    for seed in range(12):
        raw = bytearray(source.read_bytes())
        rnd = random.Random(seed)
        chunk = HEADER_BLOCK + rnd.randrange(chunks) * CHUNK_SIZE
        # a stretch inside the chunk's records: some records before it still render
        start = chunk + rnd.randrange(600, CHUNK_SIZE - 4000)
        for i in range(start, start + rnd.choice((40, 400, 3000)), rnd.choice((3, 7, 13))):
            raw[i] = (raw[i] * 31 + 17 + seed) % 256
        damaged = tmp_path / f"damaged-{seed}.evtx"
        damaged.write_bytes(bytes(raw))
        events, rejected = _assert_same(damaged, monkeypatch, batch_size=50)
        assert events > 0
        damaged_readings += rejected > 0
    assert damaged_readings >= 4


@pytest.mark.corpus
def test_cut_files_and_broken_headers_read_the_same(corpus_files, tmp_path, monkeypatch):
    raw = _largest(corpus_files).read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(raw[: HEADER_BLOCK + 2 * CHUNK_SIZE + 5000])
    _assert_same(cut, monkeypatch)
    broken = tmp_path / "broken.evtx"
    broken.write_bytes(b"XXXXXXXX" + raw[8:])
    _assert_same(broken, monkeypatch)
    # a chunk header naming a record range the chunk does not hold
    bad_range = bytearray(raw)
    struct.pack_into("<QQ", bad_range, HEADER_BLOCK + CHUNK_SIZE + 8, 10**12, 10**12 + 5)
    odd = tmp_path / "odd-range.evtx"
    odd.write_bytes(bytes(bad_range))
    _assert_same(odd, monkeypatch)


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 100, b"\x00" * 70000,
                                     b"ElfFile\x00" + b"\xff" * 5000])
def test_garbage_reads_the_same(tmp_path, monkeypatch, content):
    path = tmp_path / "garbage.evtx"
    path.write_bytes(content)
    _assert_same(path, monkeypatch)


# --- single records ----------------------------------------------------------------

def _python_event(text: str) -> dict[str, Any] | None:
    """The Python mapping of one record's JSON text, or None when it rejects it."""
    try:
        record = orjson.loads(text)
        if type(record) is not dict:
            return None
        return record_to_event(record, original=text)
    except (ParseError, orjson.JSONDecodeError, TypeError, ValueError, KeyError,
            AttributeError, RecursionError):
        return None


def _assert_maps_alike(record: Any) -> bool:
    """The compiled mapping equals the Python one, or hands the record back.
    True when it mapped the record itself."""
    assert NATIVE is not None
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    ours = NATIVE.map_json(text)
    if ours is None:
        return False
    theirs = _python_event(text)
    assert theirs is not None, f"the compiled mapping accepted what Python rejects: {text}"
    assert ours == theirs, f"{_difference(ours, theirs)}\nrecord: {text}"
    assert json.dumps(ours) == json.dumps(theirs), f"key order differs\nrecord: {text}"
    return True


def _system(event_id: Any = 4624, channel: str = "Security",
            provider: str = "Microsoft-Windows-Security-Auditing", **extra: Any) -> dict[str, Any]:
    system = {
        "Provider": {"#attributes": {"Name": provider,
                                     "Guid": "{54849625-5478-4994-A5BA-3E3B0328C30D}"}},
        "EventID": event_id, "Version": 2, "Level": 0, "Task": 12544, "Opcode": 0,
        "Keywords": "0x8020000000000000",
        "TimeCreated": {"#attributes": {"SystemTime": "2024-03-01T08:15:30.123456Z"}},
        "EventRecordID": 42, "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": 636, "ThreadID": 700}},
        "Channel": channel, "Computer": "DC01.example.gov", "Security": None,
    }
    system.update(extra)
    return system


SYSMON = {"channel": "Microsoft-Windows-Sysmon/Operational", "provider": "Microsoft-Windows-Sysmon"}

ADDRESSES = ["10.0.0.1", "::ffff:10.1.2.3", "::ffff:0a01:0203", "[fe80::1]", "fe80::1%12",
             "FE80:0:0:0:0:0:0:1", "1:0:0:2:0:0:0:3", "0:0:1:0:0:1:0:0", "::", "::1", "1::",
             "2001:db8::", " 10.0.0.2 ", "010.0.0.1", "1.2.3", "256.1.1.1", "1.2.3.4.5",
             "::1.2.3.4", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "-", "", "localhost",
             "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", ":1:2:3:4:5:6:7",
             "1:2:3:4:5:6:7:", "g::1", "0::0", "00000::1", "::ffff:1.2.3.4%eth0"]
NUMBERS = ["0", "1", "-1", "+7", "0x10", "0X1f", "0x", "0x-1", "1_000", " 12", "12 ",
           "9223372036854775807", "9223372036854775808", "-9223372036854775808",
           "-9223372036854775809", "18446744073709551615", "99999999999999999999",
           "00000000000000000001", "0x7fffffffffffffff", "0x8000000000000000", "١٢", "²",
           "abc", "-", "", "65535", "65536"]


def test_odd_addresses_and_ports_map_alike():
    mapped = 0
    for address in ADDRESSES:
        for port in ("443", "0", "65536", "-", "0x50"):
            mapped += _assert_maps_alike({"Event": {
                "System": _system(3, **SYSMON),
                "EventData": {"SourceIp": address, "SourcePort": port, "DestinationIp": address,
                              "DestinationPort": port, "Protocol": "TCP",
                              "Initiated": "true", "SourceIsIpv6": "false"}}})
            mapped += _assert_maps_alike({"Event": {
                "System": _system(5156), "EventData": {
                    "SourceAddress": address, "SourcePort": port, "DestAddress": address,
                    "DestPort": port, "Protocol": "6", "Direction": "%%14593"}}})
        mapped += _assert_maps_alike({"Event": {
            "System": _system(22, **SYSMON),
            "EventData": {"QueryName": "a.example", "QueryStatus": "0",
                          "QueryResults": f"type:  5 b.example;{address};::ffff:{address};"}}})
    assert mapped > 300


def test_numbers_out_of_range_and_odd_spellings_map_alike():
    mapped = 0
    for number in NUMBERS:
        mapped += _assert_maps_alike({"Event": {
            "System": _system(1, **SYSMON, Version=number, Level=number),
            "EventData": {"ProcessId": number, "ParentProcessId": number, "Image": "C:\\x.exe"}}})
        mapped += _assert_maps_alike({"Event": {
            "System": _system(4689, Keywords=number, Task=number),
            "EventData": {"ProcessId": number, "Status": number, "ProcessName": "C:\\y.exe"}}})
        mapped += _assert_maps_alike({"Event": {
            "System": _system(4769, Execution={"#attributes": {"ProcessID": number,
                                                                 "ThreadID": number}}),
            "EventData": {"Status": number, "TargetUserName": "u", "ServiceName": "s"}}})
    for value in (2**63 - 1, 2**63, 2**64 - 1, -(2**63), -(2**63) - 1, 7):
        mapped += _assert_maps_alike({"Event": {
            "System": _system(1, **SYSMON, Version=value, Level=value, EventRecordID=value,
                              Execution={"#attributes": {"ProcessID": value, "ThreadID": 1}}),
            "EventData": {"ProcessId": value, "Count": value, "Data": value}}})
    assert mapped > 60


def test_missing_system_parts_and_odd_shapes_map_alike():
    base = {"Event": {"#attributes": {"xmlns": "x"}, "System": _system(4624),
                      "EventData": {"TargetUserName": "alice", "LogonType": "3",
                                    "IpAddress": "10.0.0.9", "IpPort": "5000"}}}
    mapped = 0
    for key in base["Event"]["System"]:
        record = copy.deepcopy(base)
        del record["Event"]["System"][key]
        mapped += _assert_maps_alike(record)
    for key in ("EventData", "System", "#attributes"):
        record = copy.deepcopy(base)
        del record["Event"][key]
        mapped += _assert_maps_alike(record)
    mapped += _assert_maps_alike(base["Event"])  # no Event wrapper
    shapes = [None, "", "text", 5, True, [], ["a", "b"], {}, {"#text": "t"},
              {"#attributes": {"a": "1"}}, {"#text": ["x", "y"]}, {"Data": ["p", "q"]},
              {"Data": {"#text": "one"}}, {"#text": "a", "Data": "b"},
              {"Data": [{"#text": "a"}, None, 3, True]}, {"A": [1, "b", None]},
              {"A": {"#attributes": {"Name": "n"}}}, {"A": {"B": "nested"}}]
    for shape in shapes:
        for section in ("EventData", "UserData", "ProcessingErrorData", "RenderingInfo"):
            record = copy.deepcopy(base)
            record["Event"][section] = shape
            mapped += _assert_maps_alike(record)
        for field in ("EventID", "Channel", "Computer", "Provider", "EventRecordID",
                      "Correlation", "Security", "Execution", "TimeCreated", "Keywords"):
            record = copy.deepcopy(base)
            record["Event"]["System"][field] = shape
            mapped += _assert_maps_alike(record)
    assert mapped > 100


def test_user_data_rendering_info_keywords_and_processing_errors_map_alike():
    records = [
        {"Event": {"System": _system(1102, provider="Microsoft-Windows-Eventlog"),
                   "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "u"},
                                                   "SubjectUserName": "admin",
                                                   "SubjectDomainName": "CORP",
                                                   "SubjectUserSid": "S-1-5-21-1"}}}},
        {"Event": {"System": _system(104, provider="Microsoft-Windows-Eventlog",
                                     channel="System"),
                   "UserData": {"LogFileCleared": {"SubjectUserName": "admin",
                                                   "Channel": "Application",
                                                   "Deep": {"Inner": "v", "Other": 3}}},
                   "EventData": {"SubjectUserName": "kept"}}},
        {"Event": {"System": _system(4624, Keywords="0x8010000000000000"),
                   "EventData": {"TargetUserName": "bob", "Status": "0xc000006d"},
                   "RenderingInfo": {"Message": "An account failed to log on.",
                                     "Level": "Information", "Task": "Logon",
                                     "Opcode": "Info", "Keywords": {"Keyword": [
                                         "Audit Failure", "Classic"]}}}},
        {"Event": {"System": _system(4625, Keywords="0x8010000000000000"),
                   "RenderingInfo": {"Keywords": {"Keyword": "Audit Success"},
                                     "Level": "WARNING"}}},
        {"Event": {"System": _system(9, channel="Application", provider="App"),
                   "ProcessingErrorData": {"ErrorCode": 15005, "DataItemName": "x",
                                           "EventPayload": "00AB"}}},
        {"Event": {"System": _system(400, provider="PowerShell", channel="Windows PowerShell"),
                   "EventData": {"Data": ["Available", "None",
                                          "\tNewEngineState=Available\r\n\tHostApplication="
                                          "powershell -nop\u2028\tUserId=CORP\\eve\x1c"
                                          "Host Application=x\n\tweird key=1\n:colon"]}}},
        {"Event": {"System": _system(4104, provider="Microsoft-Windows-PowerShell",
                                     channel="Microsoft-Windows-PowerShell/Operational"),
                   "EventData": {"ScriptBlockText": "iex", "Path": "C:\\S\\a.PS1",
                                 "ContextInfo": "  Host Application = pwsh\n User = D\\u"}}},
        {"Event": {"System": _system(7045, provider="Service Control Manager",
                                     channel="System"),
                   "EventData": {"ServiceName": "evil", "ServiceType": "user mode service",
                                 "AccountName": "LocalSystem", "ImagePath": "C:\\e.exe"}}},
        {"Event": {"System": _system(4728), "EventData": {
            "MemberName": "CN=Smith\\, John,OU=Staff,DC=example,DC=gov", "MemberSid": "S-1",
            "TargetUserName": "Admins", "TargetDomainName": "CORP", "TargetSid": "S-2"}}},
        {"Event": {"System": _system(5145), "EventData": {
            "ShareName": "\\\\*\\C$", "RelativeTargetName": "Windows\\x.dll",
            "IpAddress": "::ffff:192.168.1.5", "IpPort": "445"}}},
    ]
    for kind in ("0x8020000000000000", "0x80000000000000", "-1", "0x", "12", "0xZZ", "",
                 "0x" + "f" * 40):
        records.append({"Event": {"System": _system(4720, Keywords=kind),
                                  "EventData": {"TargetUserName": "new"}}})
    for code in ("1", "3", "7", "8", "10", "11", "12", "13", "14", "17", "22", "23", "24",
                 "25", "27", "255", "99"):
        records.append({"Event": {"System": _system(int(code), **SYSMON), "EventData": {
            "RuleName": "-", "Image": "C:\\Windows\\cmd.exe", "ProcessId": "12",
            "SourceImage": "C:\\a\\src.EXE", "SourceProcessId": "4", "SourceThreadId": "5",
            "SourceProcessGuid": "{1}", "TargetObject": "HKLM\\SOFTWARE\\Run\\x",
            "EventType": "SetValue", "Details": "DWORD (0x00000001)",
            "Hashes": "SHA1=00,MD5=AB,SHA256=Cd,IMPHASH=EF", "TargetFilename": "C:\\t\\f.Tar.GZ",
            "ImageLoaded": "C:\\x.dll", "PipeName": "\\p", "Type": "Image is replaced",
            "User": "NT AUTHORITY\\SYSTEM", "LogonId": "0x3e7", "QueryName": "q",
            "QueryResults": "1.2.3.4;", "CommandLine": "cmd /c", "ParentImage": "C:\\p.exe"}}})
    records.append({"Event": {"System": _system(25, **SYSMON), "EventData": {
        "Hashes": "MD5=AB", "Type": "Image is locked for access"}}})
    records.append({"Event": {"System": _system(1, **SYSMON), "EventData": {
        "CommandLine": "only", "Hashes": "MD5=AB"}}})
    mapped = sum(_assert_maps_alike(record) for record in records)
    # only the 40-digit keyword mask is left to Python
    assert mapped == len(records) - 1


def test_mutated_records_map_alike():
    """Random damage anywhere in a record: the compiled mapping agrees with the
    Python one or hands the record back, never a different event."""
    templates = [
        {"Event": {"System": _system(4624), "EventData": {
            "TargetUserName": "a", "IpAddress": "10.0.0.1", "IpPort": "5", "LogonType": 3,
            "ProcessId": "0x10", "ProcessName": "C:\\a.exe"}}},
        {"Event": {"System": _system(1, **SYSMON), "EventData": {
            "Image": "C:\\a.exe", "CommandLine": "a", "Hashes": "MD5=AA,SHA256=BB",
            "ParentProcessId": 4, "User": "D\\u"}}},
        {"Event": {"System": _system(13, **SYSMON), "EventData": {
            "EventType": "SetValue", "TargetObject": "HKLM\\A\\B", "Details": "DWORD (0x1)"}}},
        {"Event": {"System": _system(1102, provider="Microsoft-Windows-Eventlog"),
                   "UserData": {"LogFileCleared": {"SubjectUserName": "x"}}}},
    ]
    junk = [None, 1, -5, "x", [], {}, {"#attributes": "x"}, {"#attributes": {}}, True, 1.5,
            ["a", {"b": 1}], {"#text": None}, {"#text": [1, [2]]}, "0x", "-1", 10**30,
            "9" * 40, "Ünïcode", "ǅ", 2**64 - 1]
    rnd = random.Random(7)

    def mutate(node: Any, depth: int = 0) -> None:
        if isinstance(node, dict) and node:
            key = rnd.choice(list(node))
            if rnd.random() < 0.5 or depth > 3:
                node[key] = copy.deepcopy(rnd.choice(junk))
            else:
                mutate(node[key], depth + 1)

    mapped = 0
    for _ in range(3000):
        record = copy.deepcopy(rnd.choice(templates))
        for _ in range(rnd.randint(1, 3)):
            mutate(record)
        mapped += _assert_maps_alike(record)
    assert mapped > 300


@pytest.mark.corpus
def test_a_file_replaced_before_the_hand_over_is_a_dead_letter_not_a_crash(
        corpus_files, tmp_path, monkeypatch):
    """The package reopens the file at the hand-over; if it is gone or garbage by
    then, the rest of the file is one dead letter and what was read stays."""
    source = _largest(corpus_files)
    raw = bytearray(source.read_bytes())
    damaged_at = HEADER_BLOCK + CHUNK_SIZE
    raw[damaged_at + 600: damaged_at + 3600] = b"\xa5" * 3000
    path = tmp_path / "moving.evtx"
    path.write_bytes(bytes(raw))
    first_chunk = struct.unpack_from("<QQ", raw, HEADER_BLOCK + 8)
    batches = read_evtx(path, batch_size=1)
    first = next(batches)
    assert len(first.events) == 1
    path.unlink()
    path.write_bytes(b"not an evtx file" * 10)
    rest = list(batches)
    events = 1 + sum(len(batch.events) for batch in rest)
    letters = [letter for batch in rest for letter in batch.rejected]
    assert events >= first_chunk[1] - first_chunk[0] + 1
    assert any(letter.reason.startswith("cannot read EVTX file") for letter in letters)
