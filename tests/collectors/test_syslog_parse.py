"""Syslog message parsing: RFC 5424, RFC 3164, the year rule, bad input."""

from datetime import UTC, datetime

import pytest

from collectors.syslog_parse import SyslogParser
from govsoc.errors import ParseError


def test_rfc5424_with_structured_data_and_bom():
    text = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
            '[exampleSDID@32473 iut="3" eventSource="Application"][x@1 a="b\\]c"] '
            '\ufeffAn application event')
    msg = SyslogParser().parse(text)
    assert msg.format == "rfc5424"
    assert msg.timestamp == datetime(2003, 10, 11, 22, 14, 15, 3000, UTC)
    assert (msg.facility, msg.severity) == (20, 5)
    assert msg.hostname == "mymachine.example.com"
    assert msg.appname == "evntslog" and msg.procid is None and msg.msgid == "ID47"
    assert msg.structured_data == {"exampleSDID@32473": {"iut": "3", "eventSource": "Application"},
                                   "x@1": {"a": "b]c"}}
    assert msg.message == "An application event"


def test_rfc3164_on_the_wire_and_in_a_file():
    ref = datetime(2024, 11, 1, tzinfo=UTC)
    wire = SyslogParser(reference=ref).parse(
        "<38>Oct 11 22:14:15 mymachine sshd[42]: Accepted publickey for bob")
    assert wire.priority == 38 and wire.hostname == "mymachine"
    assert wire.appname == "sshd" and wire.procid == "42"
    assert wire.timestamp == datetime(2024, 10, 11, 22, 14, 15, tzinfo=UTC)
    line = SyslogParser(reference=ref).parse(
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; x")
    assert line.priority is None and line.appname == "sshd(pam_unix)"
    assert line.message == "authentication failure; x"


def test_rfc3164_without_hostname_keeps_the_tag():
    msg = SyslogParser(reference=datetime(2024, 1, 2, tzinfo=UTC)).parse(
        "<13>Jan  1 10:00:00 kernel: eth0 link up")
    assert msg.hostname is None and msg.appname == "kernel"
    assert msg.message == "eth0 link up"


@pytest.mark.parametrize(("stamp", "reference", "year"), [
    # last year's December seen in January
    ("Dec 31 23:59:59", datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC), 2024),
    # a sender clock a little ahead across New Year: next year
    ("Jan  1 00:00:01", datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), 2025),
    ("Jun 14 15:16:01", datetime(2024, 11, 1, tzinfo=UTC), 2024),
    # Feb 29 belongs to the latest leap year not after the reference
    ("Feb 29 10:00:00", datetime(2026, 3, 1, tzinfo=UTC), 2024),
])
def test_year_rule(stamp, reference, year):
    msg = SyslogParser(reference=reference).parse(f"{stamp} host app: x")
    assert msg.timestamp.year == year


def test_zone_of_bsd_timestamps():
    msg = SyslogParser("Asia/Ho_Chi_Minh", datetime(2024, 6, 1, tzinfo=UTC)).parse(
        "May  1 07:00:00 host app: x")
    assert msg.timestamp == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "reason"), [
    ("<999>Oct 11 22:14:15 host app: x", "priority 999 is out of range"),
    ("<abc>Oct 11 22:14:15 host app: x", "no valid <PRI>"),
    ("Foo 11 22:14:15 host app: x", "unknown month"),
    ("garbage without a header", "no syslog timestamp"),
    ("Oct 41 22:14:15 host app: x", "unparseable timestamp"),
    ("<13>1 2024-13-45T99:00:00Z host app - - - x", "unparseable RFC 5424 timestamp"),
    ("<13>1 2024-01-01T00:00:00Z host app - - [unclosed a=\"b\" x", "is not closed"),
    ("   ", "empty syslog message"),
])
def test_bad_messages_name_the_problem(text, reason):
    with pytest.raises(ParseError) as info:
        SyslogParser().parse(text, "10.0.0.9:514", "message 7")
    assert reason in str(info.value)
    assert "10.0.0.9:514:message 7" in str(info.value)


def test_plain_bsd_path_reads_what_the_general_path_reads(monkeypatch):
    """Network messages of the usual shape take a one-regex path; it must give the
    message the general path gives, including the near misses it leaves to it."""
    import re

    import collectors.syslog_parse as syslog_parse

    messages = [
        "<38>Dec 10 06:55:46 web3 sshd[1049]: Failed password for root from 1.2.3.4 port 22",
        "<30>Dec  1 06:55:46 web3 nginx[77]: upstream", "<30>Dec 10 06:55:46 web3 nginx: x",
        "<30>Dec 10 06:55:46 sshd[1]: no host", "<30>Dec 10 06:55:46 host: tag: msg",
        "<30>Dec 10 2024 06:55:46 h t: m", "<30>Dec 10 06:55:46.123 h t: m",
        "<30>Dec 10 06:55:46 h t[]: m", "<30>Dec 10 06:55:46 h t[1 2]: m",
        "<30>Dec 10 06:55:46 h t:m", "<30>Dec 10 06:55:46 h  t: m",
        "<30>Dec 10 06:55:46 h just words", "<30>Dec 10 06:55:46 " + "h" * 300 + " t: m",
        "<30>Dec 10 06:55:46 h " + "t" * 200 + ": m", "<30>Dec 10 06:55:46 fe80::1 t: m",
        "<30>Dec 10 06:55:46 h t[1]:: m", "<30>Dec 10 06:55:46 h%x@y/z t: m",
        "<13>1 2024-01-01T00:00:00Z h a p m - x", "<191>Jan  1 00:00:00 h t: m"]
    bad = ["<300>Dec 10 06:55:46 h t: m", "<30>Foo 10 06:55:46 h t: m",
           "<30>Feb 30 06:55:46 h t: m"]
    reference = datetime(2025, 1, 5, tzinfo=UTC)

    def parse_all() -> list:
        parser = SyslogParser()
        out: list = [parser.parse(text, "s", 1, reference) for text in messages]
        for text in bad:
            with pytest.raises(ParseError) as caught:
                parser.parse(text, "s", 1, reference)
            out.append(caught.value.reason)
        return out

    plain = parse_all()
    monkeypatch.setattr(syslog_parse, "_BSD_PLAIN", re.compile(r"(?!)"))
    assert parse_all() == plain
    assert plain[0].hostname == "web3" and plain[0].appname == "sshd"
    assert plain[0].procid == "1049" and plain[0].message.startswith("Failed password")
