"""Each Sigma modifier and value type, matched and not matched, on collector-shaped events."""

from __future__ import annotations

import base64

import pytest

from detection.sigma.ruleset import compile_texts
from tests.detection.sigma.helpers import detector, matches, rule_text, sysmon_event


def one(detection: str, **data: object) -> bool:
    return matches(detector(rule_text(detection)), sysmon_event(**data))


@pytest.mark.parametrize(("value", "expected"), [
    ("C:\\Windows\\System32\\cmd.exe", True),
    ("c:\\windows\\system32\\CMD.EXE", True),   # case-insensitive by default
    ("C:\\Windows\\System32\\cmd.exe ", False),  # equality is whole-value
])
def test_plain_equality_is_case_insensitive(value: str, expected: bool) -> None:
    det = "sel:\n    Image: 'C:\\Windows\\System32\\cmd.exe'\ncondition: sel"
    assert one(det, Image=value) is expected


def test_contains_startswith_endswith() -> None:
    det = ("sel:\n    CommandLine|contains: 'invoke-mimikatz'\n"
           "    Image|endswith: '\\powershell.exe'\n"
           "    ParentImage|startswith: 'C:\\Program Files\\'\ncondition: sel")
    hit = dict(CommandLine="powershell -c Invoke-Mimikatz -DumpCreds",
               Image="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.exe",
               ParentImage="c:\\program files\\app\\x.exe")
    assert one(det, **hit)
    assert not one(det, **{**hit, "Image": "C:\\powershell.exe.bak"})
    assert not one(det, **{**hit, "ParentImage": "D:\\Program Files\\x.exe"})
    assert not one(det, **{**hit, "CommandLine": "invoke-mimi katz"})


def test_wildcards_star_and_question_mark_and_escapes() -> None:
    det = "sel:\n    CommandLine: 'net? user * /add'\ncondition: sel"
    assert one(det, CommandLine="net1 user bob /add")
    assert one(det, CommandLine="NET. USER x y /ADD")
    assert not one(det, CommandLine="net user bob /add")  # ? needs exactly one character
    escaped = "sel:\n    CommandLine: 'what\\?'\ncondition: sel"
    assert one(escaped, CommandLine="what?")
    assert not one(escaped, CommandLine="whatX")


def test_value_list_is_or_and_all_is_and() -> None:
    any_of = "sel:\n    CommandLine|contains:\n        - 'alpha'\n        - 'beta'\ncondition: sel"
    all_of = ("sel:\n    CommandLine|contains|all:\n        - 'alpha'\n        - 'beta'\n"
              "condition: sel")
    assert one(any_of, CommandLine="x beta y")
    assert not one(all_of, CommandLine="x beta y")
    assert one(all_of, CommandLine="beta and ALPHA")


def test_many_values_grouped_still_exact() -> None:
    values = "\n".join(f"        - 'tool{i}.exe'" for i in range(40))
    det = f"sel:\n    Image|endswith:\n{values}\ncondition: sel"
    assert one(det, Image="C:\\x\\TOOL39.EXE")
    assert not one(det, Image="C:\\x\\tool40.exe")
    contains = "\n".join(f"        - 'frag{i}x'" for i in range(40))
    det2 = f"sel:\n    CommandLine|contains:\n{contains}\ncondition: sel"
    assert one(det2, CommandLine="aaa FRAG17X bbb")
    assert not one(det2, CommandLine="frag17 x")


def test_cased_modifier_is_case_sensitive() -> None:
    det = "sel:\n    CommandLine|cased|contains: 'SeDebugPrivilege'\ncondition: sel"
    assert one(det, CommandLine="whoami /priv SeDebugPrivilege")
    assert not one(det, CommandLine="whoami /priv sedebugprivilege")


def test_re_with_flags() -> None:
    plain = "sel:\n    CommandLine|re: '-e(nc|ncodedcommand)? [A-Za-z0-9+/=]{20,}'\ncondition: sel"
    assert one(plain, CommandLine="powershell -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA")
    assert not one(plain, CommandLine="powershell -ENC SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA")
    ignorecase = "sel:\n    CommandLine|re|i: '-enc [a-z0-9+/=]{20,}'\ncondition: sel"
    assert one(ignorecase, CommandLine="powershell -ENC SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA")
    multiline = "sel:\n    CommandLine|re|m: '^second$'\ncondition: sel"
    assert one(multiline, CommandLine="first\nsecond\nthird")
    assert not one("sel:\n    CommandLine|re: '^second$'\ncondition: sel",
                   CommandLine="first\nsecond\nthird")
    dotall = "sel:\n    CommandLine|re|s: 'a.b'\ncondition: sel"
    assert one(dotall, CommandLine="a\nb")
    assert not one("sel:\n    CommandLine|re: 'a.b'\ncondition: sel", CommandLine="a\nb")


def test_backtracking_regex_is_bounded_and_warned() -> None:
    text = rule_text("sel:\n    CommandLine|re: '(a+)+\\1b'\ncondition: sel")
    ruleset = compile_texts([text])
    assert any("backtracking" in p.message for p in ruleset.problems)
    det = detector(text)
    assert matches(det, sysmon_event(CommandLine="aab"))
    # attacker-controlled value made for catastrophic backtracking: answered, not hung
    assert not matches(det, sysmon_event(CommandLine="a" * 5000 + "c"))


def test_cidr() -> None:
    det = ("sel:\n    DestinationIp|cidr:\n        - '10.0.0.0/8'\n        - 'fd00::/8'\n"
           "condition: sel")
    net = "    category: network_connection\n    product: windows"
    d = detector(rule_text(det, net))
    assert matches(d, sysmon_event(3, DestinationIp="10.20.30.40"))
    assert matches(d, sysmon_event(3, DestinationIp="fd12::1"))
    assert not matches(d, sysmon_event(3, DestinationIp="11.0.0.1"))
    assert not matches(d, sysmon_event(3, DestinationIp="not an ip"))


def test_base64_and_base64offset() -> None:
    b64 = "sel:\n    CommandLine|base64: 'http://'\ncondition: sel"
    assert one(b64, CommandLine=base64.b64encode(b"http://").decode())
    offset = "sel:\n    CommandLine|base64offset|contains: 'IEX'\ncondition: sel"
    for prefix in (b"", b"a", b"ab"):
        encoded = base64.b64encode(prefix + b"IEX (New-Object Net.WebClient)").decode()
        assert one(offset, CommandLine=f"powershell -enc {encoded}"), prefix
    assert not one(offset, CommandLine="powershell -enc " + base64.b64encode(b"Get-Date").decode())


def test_wide_and_utf16_variants() -> None:
    wide = "sel:\n    CommandLine|wide|base64offset|contains: 'ping'\ncondition: sel"
    encoded = base64.b64encode("ping 10.0.0.1".encode("utf-16-le")).decode()
    assert one(wide, CommandLine=encoded)
    assert not one(wide, CommandLine=base64.b64encode(b"ping 10.0.0.1").decode())
    be = "sel:\n    CommandLine|utf16be|base64offset|contains: 'ping'\ncondition: sel"
    assert one(be, CommandLine=base64.b64encode("ping x".encode("utf-16-be")).decode())


def test_windash_expands_dash_variants() -> None:
    det = "sel:\n    CommandLine|windash|contains: ' -exec bypass'\ncondition: sel"
    for dash in ("-", "/", "\u2013", "\u2014", "\u2015"):
        assert one(det, CommandLine=f"powershell {dash}exec bypass"), dash
    assert not one(det, CommandLine="powershell +exec bypass")


def test_exists_and_null() -> None:
    exists = "sel:\n    OriginalFileName|exists: true\ncondition: sel"
    missing = "sel:\n    OriginalFileName|exists: false\ncondition: sel"
    null = "sel:\n    OriginalFileName: null\ncondition: sel"
    assert one(exists, OriginalFileName="x.exe")
    assert not one(exists, Image="y")
    assert one(missing, Image="y")
    assert one(null, Image="y")
    assert not one(null, OriginalFileName="x.exe")
    assert one("sel:\n    OriginalFileName: ''\ncondition: sel", OriginalFileName="")


def test_numeric_comparisons() -> None:
    gt = "sel:\n    TerminalSessionId|gt: 1\ncondition: sel"
    assert one(gt, TerminalSessionId="2")
    assert not one(gt, TerminalSessionId="1")
    assert not one(gt, TerminalSessionId="two")
    assert one("sel:\n    TerminalSessionId|gte: 1\ncondition: sel", TerminalSessionId="1")
    assert one("sel:\n    TerminalSessionId|lt: 1\ncondition: sel", TerminalSessionId="0")
    assert one("sel:\n    TerminalSessionId|lte: 0\ncondition: sel", TerminalSessionId="0")
    assert one("sel:\n    TerminalSessionId: 3\ncondition: sel", TerminalSessionId="3")


def test_fieldref() -> None:
    det = "sel:\n    ParentImage|fieldref: Image\ncondition: sel"
    assert one(det, Image="C:\\a.exe", ParentImage="c:\\A.EXE")
    assert not one(det, Image="C:\\a.exe", ParentImage="C:\\b.exe")
    assert not one(det, ParentImage="C:\\b.exe")
    contains = "sel:\n    CommandLine|fieldref|contains: User\ncondition: sel"
    assert one(contains, CommandLine="runas /user:CORP\\bob x", User="corp\\bob")
    ends = "sel:\n    Image|fieldref|endswith: OriginalFileName\ncondition: sel"
    assert one(ends, Image="C:\\x\\procdump.exe", OriginalFileName="procdump.exe")


def test_expand_placeholder_without_definition_is_a_wildcard() -> None:
    det = "sel:\n    User|expand: '%admins%'\ncondition: sel"
    assert one(det, User="anyone")
    assert not one(det, Image="x")


def test_conditions_not_one_of_all_of() -> None:
    det = ("sel_img:\n    Image|endswith: '\\rundll32.exe'\n"
           "sel_cli:\n    CommandLine|contains: 'javascript:'\n"
           "filter_main:\n    ParentImage|endswith: '\\explorer.exe'\n"
           "condition: all of sel_* and not 1 of filter_*")
    hit = dict(Image="C:\\Windows\\rundll32.exe", CommandLine="rundll32 javascript:x",
               ParentImage="C:\\Windows\\cmd.exe")
    assert one(det, **hit)
    assert not one(det, **{**hit, "ParentImage": "C:\\Windows\\explorer.exe"})
    # a filter on an absent field is false, so "not filter" holds
    assert one(det, Image=hit["Image"], CommandLine=hit["CommandLine"])
    assert not one(det, Image=hit["Image"])


def test_keywords_search_event_data() -> None:
    det = "keywords:\n    - 'sekurlsa::logonpasswords'\ncondition: keywords"
    logsource = "    product: windows\n    service: sysmon"
    d = detector(rule_text(det, logsource))
    assert matches(d, sysmon_event(CommandLine="mimikatz SEKURLSA::LogonPasswords exit"))
    assert not matches(d, sysmon_event(CommandLine="mimikatz coffee exit"))


def test_array_values_match_any_element() -> None:
    det = "sel:\n    Data|contains: 'HostApplication=evil'\ncondition: sel"
    ps = "    product: windows\n    category: ps_classic_start"
    d = detector(rule_text(det, ps))
    event = sysmon_event(400, Data=["Available", "\tHostApplication=evil.exe -x"])
    event["winlog"]["channel"] = "Windows PowerShell"
    event["event"]["dataset"] = "windows.powershell"
    assert matches(d, event)
    event["winlog"]["event_data"]["Data"] = ["Available", "HostApplication=good"]
    assert not matches(d, event)


def test_timestamp_part_modifier() -> None:
    det = "sel:\n    UtcTime|hour: 8\ncondition: sel"
    assert one(det, UtcTime="2026-11-20 08:15:00.000")
    assert not one(det, UtcTime="2026-11-20 09:15:00.000")


def test_routing_keeps_rules_to_their_logsource() -> None:
    d = detector(rule_text("sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel"))
    assert matches(d, sysmon_event(1, Image="C:\\cmd.exe"))
    assert not matches(d, sysmon_event(11, Image="C:\\cmd.exe"))  # file_event, not process
    other = sysmon_event(1, Image="C:\\cmd.exe")
    other["winlog"]["channel"] = "Security"
    assert not matches(d, other)


def test_prefilter_never_hides_a_match() -> None:
    """Whatever literal the prefilter picks, the full predicate decides."""
    det = ("a:\n    CommandLine|contains: 'abcdef'\nb:\n    Image|endswith: '\\zz.exe'\n"
           "condition: a or b")
    d = detector(rule_text(det))
    assert matches(d, sysmon_event(Image="C:\\ZZ.EXE"))
    assert matches(d, sysmon_event(CommandLine="xxABCDEFxx"))
    assert not matches(d, sysmon_event(CommandLine="abcde f", Image="zz.exe"))


def test_neq_negates_the_item() -> None:
    det = ("sel:\n    Image|endswith: '\\cmd.exe'\n    User|neq: 'NT AUTHORITY\\SYSTEM'\n"
           "condition: sel")
    assert one(det, Image="C:\\cmd.exe", User="CORP\\bob")
    assert not one(det, Image="C:\\cmd.exe", User="nt authority\\system")
