"""The compiled access-log path gives what the Python path gives, batch for batch.

Every comparison reads the same bytes twice, once as shipped (the compiled
``govsoc_weblog`` reader takes the lines of the plain shape) and once with
``GOVSOC_NATIVE=0`` (the Python reference), through the real entry points: the
file tailer, ``read_log_file`` (``govsoc ingest access``) and ``line_batches``.
Events, dead letters, checkpoints and counters must be equal.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from collectors.base import Batch
from collectors.lines import BlockLines, RawLine, read_lines
from collectors.logformats import read_log_file
from collectors.native import native_module
from collectors.tail import FileTailer
from collectors.textlog import COUNTERS, line_batches
from collectors.weblog import _ACCESS_PLAIN, AccessLogParser
from govsoc.errors import ParseError
from tests.conftest import corpus_root

native = native_module("weblog")
pytestmark = pytest.mark.skipif(
    native is None, reason="govsoc_weblog is not installed (scripts/build-native) or "
    "GOVSOC_NATIVE=0: there is no compiled path to compare")

KINDS = ("apache", "nginx")


@contextmanager
def python_only(monkeypatch: pytest.MonkeyPatch, on: bool) -> Iterator[None]:
    with monkeypatch.context() as m:
        if on:
            m.setenv("GOVSOC_NATIVE", "0")
        yield


def view(batch: Batch) -> dict[str, Any]:
    """What a batch carries (a dead letter's time of receipt aside)."""
    return {"events": batch.events,
            "rejected": [(r.source, r.position, r.reason, r.original) for r in batch.rejected],
            "checkpoint": batch.checkpoint, "validated": batch.validated}


def both(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Any]) -> tuple[Any, Any]:
    """``run()`` with the compiled path, then with the Python path only."""
    with python_only(monkeypatch, False):
        compiled = run()
    with python_only(monkeypatch, True):
        reference = run()
    return compiled, reference


def tail_all(paths: list[Path], kind: str, **kwargs: Any) -> Callable[[], Any]:
    def run() -> Any:
        tailer = FileTailer([str(p) for p in paths], kind, follow=False, **kwargs)
        batches = [view(b) for b in tailer.batches()]
        return batches, tailer.counters
    return run


def ingest(path: Path, kind: str, **kwargs: Any) -> Callable[[], Any]:
    def run() -> Any:
        counters: dict[str, int] = {}
        batches = [view(b) for b in read_log_file(str(path), kind, counters=counters,
                                                   **kwargs)]
        return batches, counters
    return run


def batches_of(data: bytes, kind: str, batch_size: int, source: str = "src#1.0",
               max_bytes: int = 1 << 20, block_bytes: int | None = None) -> Callable[[], Any]:
    """``line_batches`` over ``data`` with a checkpoint after each batch (holding the
    whole last line), the lines read one by one or, with ``block_bytes``, in
    blocks (:class:`BlockLines`, which the compiled reader splits itself)."""
    def run() -> Any:
        counters: dict[str, int] = {}
        stream = io.BytesIO(data)
        lines: Iterable[RawLine] = read_lines(stream, max_bytes) if block_bytes is None \
            else BlockLines(stream, max_bytes, block_bytes=block_bytes)
        batches = [view(b) for b in line_batches(
            lines, AccessLogParser(kind), source, "/var/log/web/access.log", batch_size,
            checkpoint=lambda ln: ("pos", {"line": tuple(ln)}), counters=counters)]
        return batches, counters
    return run


def assert_same(compiled: Any, reference: Any) -> None:
    (got, got_counts), (want, want_counts) = compiled, reference
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a["events"] == b["events"], f"batch {i}: events differ"
        # down to the order of the fields (what a stored document's text shows)
        assert [json.dumps(e) for e in a["events"]] == [json.dumps(e) for e in b["events"]]
        assert a["rejected"] == b["rejected"], f"batch {i}: dead letters differ"
        assert a["checkpoint"] == b["checkpoint"], f"batch {i}: checkpoints differ"
        assert a == b
    assert got_counts == want_counts


def lines_total(result: Any) -> int:
    return sum(len(b["events"]) + len(b["rejected"]) for b in result[0])


# -- single lines --------------------------------------------------------------------

BASE = ('203.0.113.9 - alice [10/Oct/2024:13:55:36 +0700] "GET /portal/search.php?q=x HTTP/1.1" '
        '403 512 "https://dichvucong.example.gov.vn/" "Mozilla/5.0 (X11; Linux x86_64)"')

CLIENTS = ["203.0.113.9", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3",
           "1.2.3.4.5", "1.2.3.", "2001:db8::1", "::1", "::", "fe80::1%eth0",
           "::ffff:192.0.2.1", "a:b", "a:b:c", "2001:DB8:0:0:0:0:0:1", "g::1",
           "dichvucong.example.gov.vn", "-", "localhost", "1.2.3.4:8080", "[2001:db8::1]",
           "ĐàNẵng.vn", "\u0661.\u0662.\u0663.\u0664", "1.2.3.\u0664", "x" * 46 + "::1",
           "0:0:" + "0" * 41, "bücher.example", "bücher:example", "1.2.3.4é", "é::1"]
IDENTS = ["-", "ident", "a\u00a0b", "ü"]
USERS = ["-", "alice", "nguyễn.văn.a", "a\u00a0b", "a\u2003b", "a\x1cb", "a\x85b", "[x]", '"q"',
         "a]b", "tức"]
STAMPS = ["10/Oct/2024:13:55:36 +0700", "10/Oct/2024:13:55:36 -0700",
          "1/Jan/2000:00:00:00 +0000", "01/Jan/2000:00:30:00 +0100", "10/Oct/2024:13:55:36",
          "31/Dec/9999:23:59:59 -0100", "31/Dec/9999:23:59:59 +0100",
          "01/Jan/0001:00:00:00 +0100", "01/Jan/0001:00:00:00 -0100",
          "01/Jan/1000:00:00:00 +0100", "01/Jan/0999:23:00:00 -0100", "01/Jan/0000:00:00:00",
          "29/Feb/2024:12:00:00 +0000", "29/Feb/2023:12:00:00 +0000", "29/Feb/2000:00:00:00",
          "29/Feb/1900:00:00:00", "31/Apr/2024:00:00:00 +0000", "10/oct/2024:13:55:36 +0700",
          "10/OCT/2024:13:55:36 +0700", "10/Foo/2024:13:55:36 +0700",
          "10/Oct/2024:24:00:00 +0000", "10/Oct/2024:23:60:00 +0000",
          "10/Oct/2024:23:59:60 +0000", "00/Oct/2024:00:00:00 +0000",
          "010/Oct/2024:00:00:00 +0000", "10/Oct/2024:13:55:36 +9999",
          "10/Oct/2024:13:55:36 -9959", "10/Oct/2024:13:55:36 +07:00",
          "10/Oct/2024:13:55:36 +070", "10/Oct/2024:13:55:36.123 +0700",
          "10/Oct/2024:13:55:36  +0700", "10/Oct/2024:13:55:36 +0700 ", "x" * 64, "x" * 65,
          "10/Oct/2024:13:55:36 +0700\t", "\u0661\u0660/Oct/2024:13:55:36 +0700",
          "10/Oct/2024:13:55:36 +\u0660\u0667\u0660\u0660", "10/Oct/24:13:55:36 +0700",
          "2024-10-10T13:55:36Z",
          "10/Oct/2024:1:55:36 +0700", "Thu, 10 Oct 2024 13:55:36 GMT"]
REQUESTS = [
    "GET / HTTP/1.1", "get /x HTTP/1.0", "Get /x HTTP/1.0", "POST /api/v1/hoso?x=1&y=2 HTTP/2.0",
    "HEAD /a.PHP HTTP/1.1", "GET http://Example.COM/path/file.JPG?q=1#frag HTTP/1.1",
    "GET HTTPS://h HTTP/1.1", "GET ftp://h/ HTTP/1.1", "GET hTtP://h:8080/x.y HTTP/1.1",
    "CONNECT example.com:443 HTTP/1.1", "GET /x/y://z HTTP/1.1", "GET /abcdefgh://x HTTP/1.1",
    "GET /abcdefghi://x HTTP/1.1", "GET /abcdefghij://x HTTP/1.1", "GET ://x HTTP/1.1",
    "GET éé://h/a HTTP/1.1", "GET ééééééééé://h/a HTTP/1.1", "GET éééééééééé://h/a HTTP/1.1",
    "GET /%E1%BA%A1.html HTTP/1.1", "GET /tin-tức/bài.html HTTP/1.1", "GET /a.tức HTTP/1.1",
    "GET /a.ß HTTP/1.1", "GET /a.İ HTTP/1.1", "GET /file. HTTP/1.1", "GET /.htaccess HTTP/1.1",
    "GET /a.abcdefghij HTTP/1.1", "GET /a.abcdefghijk HTTP/1.1", "GET /a.ééééééééé HTTP/1.1",
    "GET /dir.d/file HTTP/1.1", "GET /? HTTP/1.1", "GET /?? HTTP/1.1", "GET /#x HTTP/1.1",
    "GET /x.js?v=1.2.3 HTTP/1.1", "GET * HTTP/1.1", "OPTIONS * HTTP/1.1", "GET / HTTP/2",
    "GET / HTTP/3", "GET / HTTP/1.", "GET / HTTP/1.1x", "GET / HTTP/1.12", "GET / HTTP/11",
    "GET / HTTP/\u0661.\u0661", "GET / HTTP/1.\u0661", "GET / http/1.1", "GET /", "GET", "-", "",
    "\\x16\\x03\\x01", "GET /a b HTTP/1.1", 'GET /x?a="b HTTP/1.1', "GET\t/ HTTP/1.1",
    "GET /\t HTTP/1.1", "PROPFIND /dav HTTP/1.1", "G3T / HTTP/1.1", "ẞET / HTTP/1.1",
    "GET  / HTTP/1.1", "GET /x HTTP/1.1 extra", "M-SEARCH * HTTP/1.1",
    "GET /" + "a" * 3000 + " HTTP/1.1", "GET /\x00 HTTP/1.1"]
STATUSES = ["200", "404", "399", "400", "500", "000", "999", "-", "2000", "20",
            "\u0662\u0660\u0660", "20x", "20\u0660"]
SIZES = ["0", "512", "-", "99999999999999999", "999999999999999999", "9999999999999999999",
         "1" * 30, "1" * 5000, "00012", "12\u0663", "\u0661\u0662", "12a", "+5", "-5", "--", "1.5"]
TAILS = ["", ' "-" "-"', ' "https://r.example/x?y" "Mozilla/5.0 (X)"', ' "" ""',
         ' "-" "curl/8.4.0"', ' "r" "a" "198.51.100.4"', ' "r"', ' "r" "a', ' "r" "a" extra',
         ' "a \\"q\\" b" "ua"', ' "r" "tức"', " garbage", ' "r"  "a"', '\t"r" "a"',
         ' "r" "a"\r', ' "-" "Mozilla/5.0 \\"x\\""', ' "r" "a b" "c"',
         ' "r\x1c" "a\u2028"', ' "-" "' + "A" * 5000 + '"']


def variants() -> list[str]:
    """The base line with one field varied at a time, and some whole other lines."""
    out = [BASE]
    parts = {"client": "203.0.113.9", "ident": "-", "user": "alice",
             "stamp": "10/Oct/2024:13:55:36 +0700", "request": "GET /portal/x.php?q=1 HTTP/1.1",
             "status": "200", "size": "512", "tail": ' "-" "Mozilla/5.0"'}

    def line(**change: str) -> str:
        p = parts | change
        return (f'{p["client"]} {p["ident"]} {p["user"]} [{p["stamp"]}] "{p["request"]}" '
                f'{p["status"]} {p["size"]}{p["tail"]}')

    for name, values in (("client", CLIENTS), ("ident", IDENTS), ("user", USERS),
                         ("stamp", STAMPS), ("request", REQUESTS), ("status", STATUSES),
                         ("size", SIZES), ("tail", TAILS)):
        out += [line(**{name: v}) for v in values]
    out += [line(client="2001:db8::7", request="POST http://h/a.PHP? HTTP/1.0", status="-",
                 size="-", tail=""),
            line(status="-", size="12"), line(status="301", size="-"),
            line(user="-", tail=' "-" "-" "-"'),
            BASE.replace(" ", "\t"), BASE.replace(" ", "  ", 1), " " + BASE, BASE + " ",
            BASE + "\x00", BASE.replace("[", "[[", 1), BASE.replace("]", "]]", 1),
            BASE.replace('"', "'"), BASE[:40], BASE[:90], BASE[:-1],
            "", " ", "\t", "\u00a0", "-", "not a log line",
            '1.2.3.4 - - [01/Jan/2025:00:00:00 +0000] "\\x16\\x03\\x01\\x00" 400 0',
            '192.168.105.83 - - [11/Jul/2018:09:32:27 +0300] "GET /x.dll?postdata="><script>'
            'foo</script> HTTP/1.1" 404 997',
            "Mar  3 10:00:00 web1 sshd[77]: Failed password for root from 10.0.0.1 port 22 ssh2",
            "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2",
            "#Fields: date time s-ip cs-method cs-uri-stem",
            "2024-03-01 01:02:03 10.0.0.5 GET /a.aspx - 443 - 198.51.100.20 - - 200 0 0 3"]
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_each_line_reads_the_same(kind: str) -> None:
    assert native is not None
    compiled = native.AccessLines(kind)
    python = AccessLogParser(kind)
    python.bulk = None
    taken = plain = 0
    for text in variants():
        if "\\" not in text and _ACCESS_PLAIN.match(text):
            plain += 1
        event = compiled.parse(text)
        if event is not None:
            taken += 1
            assert event == python(text), text
    # the compiled reader is not a bystander: it reads most plain lines itself
    assert taken > 0.6 * plain, (taken, plain)


def line_with(stamp: str = "10/Oct/2024:13:55:36 +0700", target: str = "/") -> str:
    return f'198.51.100.7 - - [{stamp}] "GET {target} HTTP/1.1" 200 5 "-" "curl/8.4.0"'


def compare_lines(lines: list[str]) -> tuple[int, int]:
    """Each line through the compiled reader and the Python parser: (lines the
    compiled reader read, lines the Python parser read); they must agree."""
    assert native is not None
    compiled = native.AccessLines("apache")
    python = AccessLogParser("apache")
    python.bulk = None
    taken = accepted = 0
    for text in lines:
        try:
            want = python(text)
            accepted += 1
        except (ParseError, ValueError, OverflowError):
            want = None
        got = compiled.parse(text)
        if got is not None:
            taken += 1
            assert got == want, text
    return taken, accepted


def test_timestamps_convert_alike() -> None:
    rng = random.Random(21)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec", "jan", "Fex"]
    stamps = []
    for _ in range(6000):
        year = rng.choice([1, 2, 999, 1000, 1582, 1900, 1970, 2000, 2024, 2100, 9999,
                           rng.randint(0, 9999)])
        stamp = (f"{rng.randint(0, 32):0{rng.choice([1, 2])}d}/{rng.choice(months)}/"
                 f"{year:04d}:{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:"
                 f"{rng.randint(0, 60):02d}")
        if rng.random() < 0.9:
            hours = rng.choice([0, 1, 7, 12, 14, 99, rng.randint(0, 99)])
            stamp += f" {rng.choice('+-')}{hours:02d}{rng.choice([0, 30, 45, 59, 99]):02d}"
        stamps.append(stamp)
    taken, accepted = compare_lines([line_with(stamp=s) for s in stamps])
    # a quarter of the years are before 1000, which Python spells unpadded: its own
    assert taken > 0.65 * accepted > 1000


def test_request_targets_split_alike() -> None:
    rng = random.Random(22)
    pieces = ["/", "/", ".", "?", "#", ":", "://", "a", "B", "%2F", "é", "İ", "ß", "php", "JS",
              "http", "HTTPS", "x.y", "&", "=", "..", "~"]
    targets = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
               for _ in range(8000)]
    taken, accepted = compare_lines([line_with(target=t) for t in targets])
    # a non-ASCII scheme or extension is lower-cased by Python alone
    assert taken > 0.85 * accepted > 6000


@pytest.mark.parametrize("compiled", [False, True])
def test_long_lines_are_not_kept_by_the_parser(compiled: bool) -> None:
    import tracemalloc

    assert native is not None
    parse: Callable[[str], Any]
    if compiled:
        parse = native.AccessLines("apache").parse
    else:
        python = AccessLogParser("apache")
        python.bulk = None
        parse = python
    tracemalloc.start()  # sees the Python strings either path makes
    try:
        for i in range(200):  # 200 distinct 100 kB targets and clients
            client = f"{i}.example.org" + "x" * 100_000
            event = parse(line_with(target=f"/{i}/" + "a" * 100_000).replace(
                "198.51.100.7", client, 1))
            assert event is not None
            del event
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 5_000_000, held


def test_unknown_server_is_refused() -> None:
    assert native is not None
    with pytest.raises(ValueError, match="apache or nginx"):
        native.AccessLines("iis")


def edge_case_log() -> bytes:
    """The variants as a file, with CRLF endings, invalid UTF-8, blank and
    over-long lines among them."""
    rng = random.Random(11)
    out: list[bytes] = []
    for i, text in enumerate(variants()):
        raw = text.encode("utf-8")
        out.append(raw + (b"\r\n" if i % 5 == 0 else b"\n"))
        if i % 17 == 0:
            cut = rng.randrange(len(raw) + 1)
            out.append(raw[:cut] + rng.choice([b"\xff", b"\xc3", b"\xe1\xba", b"\x80"])
                       + raw[cut:] + b"\n")
        if i % 23 == 0:
            out.append(rng.choice([b"\n", b"\r\n", b"   \n", b"\r\r\n"]))
        if i % 31 == 0:
            out.append(BASE.encode() + b" " + b"Z" * 9000 + b"\n")
    out.append(BASE.encode())  # the last line without its newline
    return b"".join(out)


READERS = [None, 1 << 20, 4096, 1000, 97]  # line by line, or blocks of so many bytes


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_size", [1, 7, 2000])
@pytest.mark.parametrize("block_bytes", READERS)
def test_edge_cases_give_the_same_batches(monkeypatch: pytest.MonkeyPatch, kind: str,
                                          batch_size: int, block_bytes: int | None) -> None:
    compiled, reference = both(monkeypatch, batches_of(edge_case_log(), kind, batch_size,
                                                       max_bytes=4096,
                                                       block_bytes=block_bytes))
    assert_same(compiled, reference)
    counts = reference[1]
    assert counts["truncated"] > 0 and counts["invalid_utf8"] > 0 and counts["skipped"] > 0
    assert counts["rejected"] > counts["truncated"] and counts["events"] > 100


@pytest.mark.parametrize("kind", [*KINDS, "access"])
def test_tailing_edge_cases_gives_the_same_batches(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, kind: str) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(edge_case_log())
    compiled, reference = both(monkeypatch, tail_all([log], kind, batch_size=50,
                                                     max_line_bytes=4096))
    assert_same(compiled, reference)
    assert lines_total(reference) > 200


# -- randomized: mutations of valid lines ---------------------------------------------

_ALPHABET = [" ", " ", '"', "[", "]", "\\", "/", ":", "-", "+", ".", "?", "#", "%", "0", "1",
             "9", "a", "Z", "\t", "\r", "\x1c", "\x00", "\u00a0", "\u2028", "\x85", "\u0663", "é",
             "ẞ", "İ", "://", "HTTP/", "HTTP/1.1", '" ', ' "', "] ", " [", "-0700", "+0000",
             "Feb", "29", "::"]
_BYTES = [b"\xff", b"\xc3", b"\xe1\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\r"]


def valid_lines(rng: random.Random, count: int) -> list[str]:
    paths = ["/", "/portal/index.php", "/dvc/search?q=ho+so&page=2", "/static/app.JS",
             "/api/v1/hoso/123", "http://proxy.example/x.png?y#z", "/login?next=%2Fadmin",
             "/a.tar.gz", "*"]
    agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "curl/8.4.0", "-", "",
              "sqlmap/1.7.2#stable (https://sqlmap.org)"]
    out = []
    for _ in range(count):
        client = rng.choice(["10.1.2.3", "2001:db8::5", "crawler.example.org", "192.0.2.44"])
        stamp = (f"{rng.randint(1, 28):02d}/{rng.choice(['Jan', 'Feb', 'Dec'])}/"
                 f"{rng.randint(1990, 2030)}:{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
                 f":{rng.randint(0, 59):02d} {rng.choice('+-')}{rng.randint(0, 14):02d}"
                 f"{rng.choice(['00', '30', '45'])}")
        line = (f'{client} - {rng.choice(["-", "bob"])} [{stamp}] '
                f'"{rng.choice(["GET", "POST", "put"])} {rng.choice(paths)} '
                f'HTTP/{rng.choice(["1.0", "1.1", "2"])}" {rng.choice(["200", "404", "-"])} '
                f'{rng.choice(["0", "1234", "-"])}')
        if rng.random() < 0.8:
            line += f' "{rng.choice(["-", "https://ref.example/"])}" "{rng.choice(agents)}"'
        out.append(line)
    return out


def mutate(rng: random.Random, line: str) -> bytes:
    text = line
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.35:
            text = text[:at] + rng.choice(_ALPHABET) + text[at:]
        elif op < 0.6:
            text = text[:at] + text[at + rng.randint(1, 4):]
        elif op < 0.8:
            text = text[:at] + rng.choice(_ALPHABET) + text[at + 1:]
        elif op < 0.9:
            end = min(len(text), at + rng.randint(1, 12))
            text = text[:at] + text[at:end] * 2 + text[end:]
        else:
            text = text[:at] + text[at:].swapcase()
    raw = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + rng.choice(_BYTES) + raw[at:]
    return raw.replace(b"\n", b" ")


def fuzzed_log(seed: int, count: int) -> tuple[bytes, int]:
    """``count`` lines, a third of them valid, the rest mutated; and how many of
    them the compiled reader takes on its own."""
    rng = random.Random(seed)
    raws = []
    for line in valid_lines(rng, count):
        raws.append(line.encode() if rng.random() < 0.33 else mutate(rng, line))
    assert native is not None
    compiled = native.AccessLines("apache")
    taken = 0
    for raw in raws:
        with suppress(UnicodeDecodeError):
            taken += compiled.parse(raw.decode("utf-8")) is not None
    return b"\n".join(raws) + b"\n", taken


@pytest.mark.parametrize(("seed", "block_bytes"), [(1, None), (2, 1 << 20), (3, 5000),
                                                   (4, 333)])
def test_fuzzed_lines_give_the_same_batches(monkeypatch: pytest.MonkeyPatch, seed: int,
                                            block_bytes: int | None) -> None:
    data, taken = fuzzed_log(seed, 8000)
    compiled, reference = both(monkeypatch, batches_of(data, "apache", 64, max_bytes=300,
                                                       block_bytes=block_bytes))
    assert_same(compiled, reference)
    # both paths were exercised: the compiled one took many lines, Python the rest
    assert 2500 < taken < 7500, taken
    assert reference[1]["rejected"] > 500


def test_every_single_fuzzed_line_reads_the_same() -> None:
    assert native is not None
    rng = random.Random(5)
    compiled = native.AccessLines("nginx")
    python = AccessLogParser("nginx")
    python.bulk = None
    compared = 0
    for line in valid_lines(rng, 20000):
        text = mutate(rng, line).decode("utf-8", "backslashreplace")
        event = compiled.parse(text)
        if event is not None:
            compared += 1
            assert event == python(text), text
    assert compared > 3000


# -- the tailer over time: partial lines, long lines, restarts --------------------------

def follow_until_quiet(paths: list[Path], kind: str, checkpoints: dict[str, Any],
                       **kwargs: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A following tailer started from ``checkpoints``, run until it has read what is
    there; its batches and counters (``checkpoints`` is updated)."""
    tailer = FileTailer([str(p) for p in paths], kind, checkpoints=checkpoints,
                        poll_seconds=0.01, **kwargs)
    got: list[dict[str, Any]] = []

    def run() -> None:
        for batch in tailer.batches():
            got.append(view(batch))
            if batch.checkpoint:
                checkpoints[batch.checkpoint[0]] = batch.checkpoint[1]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    seen, still = -1, 0
    deadline = time.monotonic() + 30
    # nothing new for 30 polls after the file was opened: all that is there was read
    while still < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
        now = tailer.counters["lines"]
        still = still + 1 if now == seen and tailer.counters["files_opened"] else 0
        seen = now
    tailer.stop()
    thread.join(10)
    assert not thread.is_alive()
    return got, dict(tailer.counters)


def placeless(state: dict[str, Any]) -> dict[str, Any]:
    """A tail checkpoint without what names the file."""
    return state | {"path": None, "inode": None}


@pytest.mark.parametrize("kind", KINDS)
def test_following_with_partial_and_long_lines_and_restarts(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path, kind: str) -> None:
    lines = [text.encode() for text in valid_lines(random.Random(3), 400)]
    steps = [b"\n".join(lines[:150]) + b"\n" + lines[150][:30],  # ends inside a line
             lines[150][30:] + b"\n" + b"\n".join(lines[151:200]) + b"\n"
             + BASE.encode() + b" " + b"Z" * 5000,  # ends inside an over-long line
             b"Z" * 3000,  # more of it
             b"Z" * 10 + b"\n" + b"\n".join(lines[200:]) + b"\r\n"]

    def scenario() -> list[tuple[Any, ...]]:
        log = tmp_path / f"access-{len(list(tmp_path.iterdir()))}.log"
        checkpoints: dict[str, Any] = {}
        results = []
        for step in steps:
            with open(log, "ab") as fh:
                fh.write(step)
            batches, counts = follow_until_quiet([log], kind, checkpoints, batch_size=64,
                                                 max_line_bytes=2048)
            # the file name differs between the two runs; ids and paths follow it
            results.append((batches, {k: counts[k] for k in COUNTERS},
                            dict(next(iter(checkpoints.values())))))
        return results

    compiled, reference = both(monkeypatch, scenario)
    assert len(compiled) == len(reference) == len(steps)
    for (got, got_counts, got_at), (want, want_counts, want_at) in zip(
            compiled, reference, strict=True):
        for g, w in zip(got, want, strict=True):
            for ge, we in zip(g["events"], w["events"], strict=True):
                for e in (ge, we):
                    e["event"].pop("id")
                    e["log"]["file"].pop("path")
            g["rejected"] = [r[1:] for r in g["rejected"]]
            w["rejected"] = [r[1:] for r in w["rejected"]]
            g["checkpoint"] = g["checkpoint"] and placeless(g["checkpoint"][1])
            w["checkpoint"] = w["checkpoint"] and placeless(w["checkpoint"][1])
        assert got == want
        assert got_counts == want_counts
        assert placeless(got_at) == placeless(want_at)
    marks = [at.get("in_long_line") for _, _, at in reference]
    assert marks == [None, True, True, None]
    assert sum(c["events"] for _, c, _ in reference) == 400
    assert sum(c["truncated"] for _, c, _ in reference) == 1


# -- the corpus ----------------------------------------------------------------------

def corpus_access_logs() -> list[Path]:
    """Files of the corpus that hold access-log lines (found by their content)."""
    root = corpus_root()
    if not root.exists():
        return []
    found = []
    probe = AccessLogParser("apache")
    probe.bulk = None
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".log", ".txt") or not path.is_file():
            continue
        with open(path, "rb") as fh:
            head = [raw.data.decode("utf-8", "replace") for raw in read_lines(fh, 4096)
                    if raw.number <= 20]
        for text in head:
            try:
                if probe(text) is not None:
                    found.append(path)
                    break
            except (ParseError, ValueError):
                continue
    return found


@pytest.mark.corpus
@pytest.mark.parametrize("kind", KINDS)
def test_corpus_access_logs_give_the_same_batches(monkeypatch: pytest.MonkeyPatch,
                                                  corpus: Path, kind: str) -> None:
    logs = corpus_access_logs()
    assert logs, f"no access log found in {corpus}"
    compared = 0
    for log in logs:
        compiled, reference = both(monkeypatch, tail_all([log], kind, batch_size=500))
        assert_same(compiled, reference)
        compiled, reference = both(monkeypatch, ingest(log, kind, batch_size=333))
        assert_same(compiled, reference)
        compared += lines_total(reference)
    assert compared > 2000


@pytest.mark.corpus
def test_corpus_logs_of_other_kinds_are_refused_alike(monkeypatch: pytest.MonkeyPatch,
                                                      corpus: Path) -> None:
    others = sorted(p for p in (corpus / "logs").rglob("*.log") if p.is_file())
    assert others, "no text logs under logs/ in the corpus"
    for log in others:
        compiled, reference = both(monkeypatch, ingest(log, "apache"))
        assert_same(compiled, reference)


class _ByteArrayStream(io.BytesIO):
    """A stream whose reads give bytearrays (as some file-like objects do)."""

    def read(self, size: int | None = -1) -> bytes:
        return bytearray(super().read(size))  # type: ignore[return-value]


def test_odd_streams_and_limits_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    data = edge_case_log()

    def run(stream_type: type[io.BytesIO], max_bytes: int) -> Callable[[], Any]:
        def inner() -> Any:
            counters: dict[str, int] = {}
            lines = BlockLines(stream_type(data), max_bytes, start_offset=5, start_line=3,
                               block_bytes=512)
            return [view(b) for b in line_batches(
                lines, AccessLogParser("apache"), "s", "/p", 40,
                checkpoint=lambda ln: ("pos", {"line": tuple(ln)}), counters=counters)], \
                counters
        return inner

    for stream_type, max_bytes in ((_ByteArrayStream, 4096), (io.BytesIO, 0),
                                   (io.BytesIO, 180)):
        compiled, reference = both(monkeypatch, run(stream_type, max_bytes))
        assert_same(compiled, reference)


def test_events_share_no_mutable_object(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    # few distinct values: whatever could be cached and shared would be
    log.write_bytes(b"\n".join([BASE.encode()] * 300 + [line_with().encode()] * 300) + b"\n")
    events = [e for b in FileTailer([str(log)], "apache", follow=False).batches()
              for e in b.events]
    assert len(events) == 600
    seen: set[int] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict | list):
            assert id(value) not in seen, "two events share a mutable object"
            seen.add(id(value))
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)

    for event in events:
        walk(event)
    events[0]["event"]["category"].append("x")
    events[0]["url"]["path"] = "/changed"
    assert events[1]["event"]["category"] == ["web"] and events[1]["url"]["path"] != "/changed"


def test_checkpoints_are_equal_after_every_batch(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"\n".join(t.encode() for t in valid_lines(random.Random(9), 1000)))
    compiled, reference = both(monkeypatch, tail_all([log], "nginx", batch_size=99))
    assert_same(compiled, reference)
    # ten full batches, the rest, then the last line (no newline) when the file is finished
    assert [len(b["events"]) for b in reference[0]] == [99] * 10 + [9, 1]
    assert reference[0][-1]["checkpoint"][1]["offset"] == log.stat().st_size
