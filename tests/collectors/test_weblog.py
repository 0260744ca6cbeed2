"""Web server logs: Apache/nginx access, IIS W3C, Apache error log."""

import io

import pytest

from collectors.lines import read_lines
from collectors.logformats import read_log_file
from collectors.textlog import line_batches
from collectors.weblog import AccessLogParser, ApacheErrorLogParser, IISLogParser
from govsoc.errors import ParseError
from govsoc.events import validate_event
from tests.conftest import corpus_path

COMBINED = ('203.0.113.9 - alice [10/Oct/2024:13:55:36 +0700] "GET /portal/search.php?q=%27or'
            '%201=1 HTTP/1.1" 403 512 "https://dichvucong.example.gov.vn/" '
            '"Mozilla/5.0 (X11; Linux x86_64) sqlmap/1.7"')


def test_apache_combined():
    e = validate_event(AccessLogParser("apache")(COMBINED))
    assert e["@timestamp"] == "2024-10-10T06:55:36.000000Z"
    assert e["event"]["dataset"] == "apache.access" and e["event"]["module"] == "apache"
    assert e["event"]["category"] == ["web"] and e["event"]["type"] == ["access"]
    assert e["event"]["outcome"] == "failure"
    assert e["event"]["original"] == COMBINED
    assert e["source"]["ip"] == "203.0.113.9" and e["user"]["name"] == "alice"
    assert e["http"] == {"request": {"method": "GET", "referrer": "https://dichvucong.example.gov.vn/"},
                         "version": "1.1", "response": {"status_code": 403, "bytes": 512}}
    assert e["url"] == {"original": "/portal/search.php?q=%27or%201=1",
                        "path": "/portal/search.php", "query": "q=%27or%201=1",
                        "extension": "php"}
    assert e["user_agent"]["original"].endswith("sqlmap/1.7")


def test_nginx_with_extra_fields_and_escapes():
    line = ('10.1.1.1 - - [01/Jan/2025:00:00:00 +0000] "POST /api/login HTTP/2.0" 200 17 "-" '
            '"curl/8.0 \\"quoted\\"" "198.51.100.4"')
    e = AccessLogParser("nginx")(line)
    assert e["event"]["dataset"] == "nginx.access" and e["event"]["module"] == "nginx"
    assert e["event"]["outcome"] == "success"
    assert e["user_agent"]["original"] == 'curl/8.0 "quoted"'
    assert "referrer" not in e["http"]["request"]


def test_unescaped_quotes_in_the_request_are_still_read():
    line = ('192.168.105.83 - - [11/Jul/2018:09:32:27 +0300] "GET /x.dll?postdata="><script>'
            'foo</script> HTTP/1.1" 404 997')
    e = AccessLogParser()(line)
    assert e["url"]["query"] == 'postdata="><script>foo</script>'
    assert e["http"]["response"]["status_code"] == 404


def test_tls_hello_on_a_plain_port_is_kept_as_malformed():
    e = AccessLogParser()('1.2.3.4 - - [01/Jan/2025:00:00:00 +0000] "\\x16\\x03\\x01\\x00" 400 0')
    assert e["tags"] == ["malformed_request"] and "method" not in e["http"].get("request", {})


@pytest.mark.parametrize("line", ["", "not a log line", '1.2.3.4 - - [99/Foo/2024:00:00:00 +0000] '
                                  '"GET / HTTP/1.1" 200 1'])
def test_bad_access_lines(line):
    if not line:
        assert AccessLogParser()(line) is None
        return
    with pytest.raises(ParseError):
        AccessLogParser()(line)


IIS = b"""#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2024-03-01 00:00:00
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2024-03-01 01:02:03 10.0.0.5 POST /owa/auth.owa - 443 CORP\\bob 198.51.100.20 Mozilla/5.0+(Windows+NT+10.0) - 401 1 2148074254 15
2024-03-01 01:02:04 10.0.0.5 GET /aspnet_client/shell.aspx cmd=whoami 443 - 198.51.100.20 - - 200 0 0 3
2024-03-01 01:02:05 10.0.0.5 GET /too few columns
"""  # noqa: E501 - W3C lines are long


def test_iis_w3c():
    counts: dict[str, int] = {}
    batches = list(line_batches(read_lines(io.BytesIO(IIS)), IISLogParser(), "iis", "u_ex.log",
                                counters=counts))
    events = [validate_event(e) for b in batches for e in b.events]
    rejected = [r for b in batches for r in b.rejected]
    assert counts == {**counts, "events": 2, "skipped": 4, "rejected": 1}
    assert "columns" in rejected[0].reason and rejected[0].position == "line 7"
    first, second = events
    assert first["event"]["dataset"] == "iis.access" and first["event"]["module"] == "iis"
    assert first["@timestamp"] == "2024-03-01T01:02:03.000000Z"
    assert first["user"]["name"] == "CORP\\bob" and first["source"]["ip"] == "198.51.100.20"
    assert first["user_agent"]["original"] == "Mozilla/5.0 (Windows NT 10.0)"
    assert first["event"]["outcome"] == "failure" and first["event"]["duration"] == 15_000_000
    assert second["url"]["original"] == "/aspnet_client/shell.aspx?cmd=whoami"
    assert second["url"]["extension"] == "aspx" and second["destination"]["port"] == 443


def test_iis_primed_from_the_middle_of_a_file():
    parser = IISLogParser()
    stream = io.BytesIO(IIS)
    offset = IIS.index(b"2024-03-01 01:02:04")
    parser.prime(stream, offset)
    e = parser(IIS[offset:].split(b"\n")[0].decode())
    assert e["url"]["path"] == "/aspnet_client/shell.aspx"


def test_apache_error_log_22_and_24():
    e = ApacheErrorLogParser()("[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in "
                               "error state 6")
    assert e["event"]["dataset"] == "apache.error" and e["event"]["type"] == ["error"]
    assert e["log"]["level"] == "error" and e["@timestamp"] == "2005-12-04T04:47:44.000000Z"
    e = ApacheErrorLogParser("Asia/Ho_Chi_Minh")(
        "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client "
        "72.15.99.187:5000] AH00128: File does not exist: /usr/local/apache2/htdocs/favicon.ico")
    assert e["@timestamp"] == "2011-09-09T03:42:29.902022Z"
    assert e["log"]["logger"] == "core" and e["process"] == {"pid": 35708,
                                                              "thread": {"id": 4328636416}}
    assert e["source"] == {"address": "72.15.99.187", "ip": "72.15.99.187", "port": 5000}
    assert e["message"].startswith("AH00128")


def _read_all(path, kind):
    counts: dict[str, int] = {}
    batches = list(read_log_file(str(path), kind, counters=counts))
    return counts, [e for b in batches for e in b.events], [r for b in batches for r in b.rejected]


@pytest.mark.corpus
def test_corpus_iis_and_access_logs():
    base = ("evtx-attack-samples", "Command and Control")
    counts, events, rejected = _read_all(corpus_path(*base, "Tunna_rdp_tunnel_IIS.log"), "access")
    assert counts["lines"] == counts["events"] + counts["skipped"] and not rejected
    assert {e["event"]["dataset"] for e in events} == {"iis.access"}
    assert any("proxy&port=3389" in e["url"].get("query", "") for e in events)
    counts, events, rejected = _read_all(
        corpus_path(*base, "web_attack_and_isp_webshell_localhost_access_log.txt"), "access")
    assert counts["events"] == counts["lines"] and not rejected
    assert {e["event"]["dataset"] for e in events} == {"apache.access"}
    for e in events:
        validate_event(e)


@pytest.mark.corpus
def test_corpus_apache_error_log():
    counts, events, rejected = _read_all(
        corpus_path("logs", "loghub", "Apache", "Apache_2k.log"), "access")
    assert counts["events"] == 2000 and not rejected
    assert {e["event"]["dataset"] for e in events} == {"apache.error"}


@pytest.mark.parametrize("client, field", [
    ("203.0.113.9", "ip"), ("256.1.1.1", "domain"), ("01.2.3.4", "domain"),
    ("1.2.3.4x", "domain"), ("2001:db8::7", "ip"), ("proxy.example.gov.vn", "domain")])
def test_access_client_is_an_ip_only_when_it_is_one(client, field):
    e = AccessLogParser()(f'{client} - - [10/Oct/2024:13:55:36 +0700] "GET / HTTP/1.1" 200 5')
    assert e["source"] == {"address": client, field: client}


@pytest.mark.corpus
def test_access_plain_and_general_paths_make_the_same_events(monkeypatch):
    """The one-regex path for plain lines must make what the general path makes."""
    import re

    import collectors.weblog as weblog

    lines = [COMBINED,
             '10.0.0.1 - - [01/Jan/2025:00:00:00 +0000] "get /a.PHP?x=1 HTTP/2" - - "-" "-"',
             '::1 - bob [01/Jan/2025:00:00:00 -0130] "GET http://x.example/z.gz HTTP/1.0" '
             '500 0 "r" "a" "extra"',
             '10.0.0.1 - - [01/Jan/2025:00:00:00 +0000] "GET / HTTP/1.10" 200 1',
             '10.0.0.1 - - [01/Jan/2025:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "only-referrer"']
    logs = corpus_path("evtx-attack-samples")
    found = sorted(p for p in logs.rglob("*access_log*") if p.suffix == ".txt")
    assert found
    for path in found:
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()[:5000]

    def parse_all() -> list:
        parser = AccessLogParser()
        out = []
        for text in lines:
            try:
                out.append(parser(text))
            except ParseError as exc:
                out.append(exc.reason)
        return out

    plain = parse_all()
    monkeypatch.setattr(weblog, "_ACCESS_PLAIN", re.compile(r"(?!)"))
    general = parse_all()
    assert plain == general
    assert [list(e) for e in plain if isinstance(e, dict)] == \
        [list(e) for e in general if isinstance(e, dict)]
