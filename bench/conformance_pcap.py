"""Conformance of the network collector against Suricata's and Zeek's own results.

Runs the collector over every capture of the corpus that has an expected output
(``pcaps/suricata-verify/tests/*/test.yaml`` checks, ``pcaps/zeek/expected/*``
logs) and compares what both describe:

- suricata-verify: each ``checks:`` filter on a dns/http/tls/ssh event that names a
  DNS query name (``rrname``), ``http.hostname``/``http.url``, ``tls.sni``, a JA3/JA3S
  hash or an
  SSH ``software_version`` is one check: it agrees when one of our events carries
  all of those values (or, for ``count: 0``, when none does); so is each filter on
  a quic event naming the server_name or alpn extension's value, and each alert
  filter whose rule (``test.rules``) is a QUIC rule on one ``ja3.string``,
  ``quic.version`` or ``quic.sni`` content (the JA3 string is compared by its md5);
- Zeek: each row of dns.log (query), http.log (host, uri), ssl.log (server name,
  or a handshake on that connection), ssh.log (client/server strings) and conn.log
  (the connection and its conn_state) is one check; a .cut conn.log without the
  endpoints is compared by row count; each field of a quic.log row (version,
  connection IDs, server name, the client's first ALPN) is one check.

QUIC connections are reported as ``network.tls`` events with ``network.protocol``
``quic`` (the hellos are read from the decrypted Initial packets), so Zeek's ssl.log
rows of QUIC connections are compared like any other.

Usage: ``python bench/conformance_pcap.py [--corpus DIR] [--details]``.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from collectors.network.quic import version_name as quic_version_name  # noqa: E402
from collectors.network.source import PcapFileSource  # noqa: E402
from govsoc.events import get_field  # noqa: E402

PROTOCOLS = ("dns", "http", "tls", "ssh", "quic", "conn", "conn_state")


@dataclass
class Outcome:
    protocol: str
    capture: str
    expected: str
    agreed: bool
    out_of_scope: bool = False


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    captures: int = 0
    seconds: float = 0.0

    def table(self) -> dict[str, tuple[int, int, int]]:
        """protocol → (agreed, applicable, out of scope)."""
        out: dict[str, list[int]] = {p: [0, 0, 0] for p in PROTOCOLS}
        for o in self.outcomes:
            row = out.setdefault(o.protocol, [0, 0, 0])
            if o.out_of_scope:
                row[2] += 1
                continue
            row[1] += 1
            row[0] += int(o.agreed)
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def disagreements(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.agreed and not o.out_of_scope]


def collect(path: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for batch in PcapFileSource(path).batches():
        events.extend(batch.events)
    return events


# -- suricata-verify ------------------------------------------------------------------------

_DNS_NAME = re.compile(r"^dns\.(queries\[0\]\.rrname|rrname|query\[0\]\.rrname)$")
_COMPARED = {
    "http.hostname": ("network.http", "url.domain"),
    "http.url": ("network.http", "url.original"),
    "tls.sni": ("network.tls", "tls.client.server_name"),
    "tls.ja3.hash": ("network.tls", "tls.client.ja3"),
    "tls.ja3s.hash": ("network.tls", "tls.server.ja3s"),
    "ssh.client.software_version": ("network.ssh", "ssh.client.software_version"),
    "ssh.server.software_version": ("network.ssh", "ssh.server.software_version"),
}


_QUIC_EXTENSION = re.compile(r"^quic\.extensions\[(\d+)\]\.(name|values\[0\])$")
#: the quic extension values we report: extension name → (our field, its value is a list)
_QUIC_EXTENSIONS = {"server_name": "tls.client.server_name", "alpn": "tls.client.alpn"}
_RULE = re.compile(r"^alert\s+(\w+)\s.*\bsid:\s*(\d+)\s*;", re.M)
_RULE_BUFFER = re.compile(r"\b(ja3\.string|quic\.version|quic\.sni)\s*;\s*content:\s*\"([^\"]*)\"")

#: (our dataset, our field, the expected value); a list field agrees when it holds it
Wanted = dict[str, tuple[str, str, Any]]


def _suricata_checks(test_yaml: str) -> list[tuple[str, Wanted, int]]:
    """(protocol, wanted values, expected count) of every comparable check."""
    with open(test_yaml, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    rules = _quic_rules(os.path.join(os.path.dirname(test_yaml), "test.rules"))
    checks = []
    for check in doc.get("checks") or []:
        flt = (check or {}).get("filter")
        if not isinstance(flt, dict):
            continue
        match = flt.get("match") or {}
        count = int(flt.get("count", 1))
        event_type = match.get("event_type")
        if event_type == "quic":
            wanted = _quic_wanted(match)
            if wanted:
                checks.append(("quic", wanted, count))
            continue
        if event_type == "alert":
            rule = rules.get(str(match.get("alert.signature_id")))
            if rule is not None and len(match) == 2:
                # an alert count is per packet; we report the connection once
                checks.append(("quic", rule, min(count, 1)))
            continue
        if event_type not in ("dns", "http", "tls", "ssh"):
            continue
        wanted = {}
        for key, value in match.items():
            if _DNS_NAME.match(key):
                wanted[key] = ("network.dns", "dns.question.name", value)
            elif key in _COMPARED:
                dataset, ours = _COMPARED[key]
                wanted[key] = (dataset, ours, value)
        if wanted:
            checks.append((event_type, wanted, count))
    return checks


def _quic_wanted(match: dict[str, Any]) -> Wanted:
    """The server_name and ALPN values a quic event filter names (Suricata lists
    the ClientHello's extensions by position, with their names and values)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, value in match.items():
        found = _QUIC_EXTENSION.match(key)
        if found:
            (names if found.group(2) == "name" else values)[found.group(1)] = value
    wanted: Wanted = {}
    for index, name in names.items():
        if name in _QUIC_EXTENSIONS and index in values:
            wanted[f"quic.extensions[{index}]({name})"] = (
                "network.tls", _QUIC_EXTENSIONS[name], values[index])
    if wanted:
        wanted["network.protocol"] = ("network.tls", "network.protocol", "quic")
    return wanted


def _quic_rules(path: str) -> dict[str, Wanted]:
    """sid → wanted values of the QUIC rules on one sticky buffer's content that
    we can compare: a whole JA3 string (by its md5), the version, the SNI."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    out: dict[str, Wanted] = {}
    for line in text.splitlines():
        head = _RULE.match(line)
        buffers = _RULE_BUFFER.findall(line)
        if head is None or head.group(1) != "quic" or len(buffers) != 1:
            continue
        buffer, content = buffers[0]
        wanted: Wanted = {"network.protocol": ("network.tls", "network.protocol", "quic")}
        if buffer == "ja3.string" and content.count(",") == 4:
            wanted[f"ja3.string={content}"] = (
                "network.tls", "tls.client.ja3",
                hashlib.md5(content.encode(), usedforsecurity=False).hexdigest())
        elif buffer == "quic.version" and re.fullmatch(r"\|[0-9a-fA-F ]+\|", content):
            version = int(content.strip("|").replace(" ", ""), 16)
            wanted[f"quic.version={content}"] = ("network.tls", "quic.version",
                                                 quic_version_name(version))
        elif buffer == "quic.sni":
            wanted[f"quic.sni={content}"] = ("network.tls", "tls.client.server_name", content)
        else:
            continue
        out[head.group(2)] = wanted
    return out


def _agrees(ours: Any, value: Any) -> bool:
    if isinstance(ours, list):
        return str(value) in (str(v) for v in ours)
    return str(ours) == str(value)


def _pcap_of(test_dir: str, test_yaml: str) -> str | None:
    with open(test_yaml, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    named = doc.get("pcap")
    if isinstance(named, str) and os.path.exists(os.path.join(test_dir, named)):
        return os.path.join(test_dir, named)
    found = sorted(glob.glob(os.path.join(test_dir, "*.pcap")) +
                   glob.glob(os.path.join(test_dir, "*.pcapng")))
    return found[0] if len(found) == 1 else (found[0] if found else None)


def run_suricata(root: str, report: Report) -> None:
    for test_yaml in sorted(glob.glob(os.path.join(root, "tests", "**", "test.yaml"),
                                      recursive=True)):
        test_dir = os.path.dirname(test_yaml)
        checks = _suricata_checks(test_yaml)
        if not checks:
            continue
        pcap = _pcap_of(test_dir, test_yaml)
        if pcap is None:
            continue
        events = collect(pcap)
        report.captures += 1
        name = os.path.relpath(test_dir, root)
        for proto, wanted, count in checks:
            dataset = next(iter(wanted.values()))[0]
            mine = [e for e in events if e["event"]["dataset"] == dataset]
            hits = [e for e in mine if all(_agrees(get_field(e, ours), value)
                                           for _d, ours, value in wanted.values())]
            agreed = not hits if count == 0 else bool(hits)
            text = ", ".join(f"{k}={v[2]!r}" for k, v in wanted.items())
            if count == 0:
                text = f"none with {text}"
            report.outcomes.append(Outcome(proto, name, text, agreed))


# -- Zeek -------------------------------------------------------------------------------------

def read_zeek_log(path: str) -> list[dict[str, str]]:
    fields: list[str] = []
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("#fields"):
                fields = line.split("\t")[1:]
            elif line.startswith("#") or not line:
                continue
            elif not fields:
                fields = line.split("\t")  # a .cut file: the first line names the columns
            else:
                rows.append(dict(zip(fields, line.split("\t"), strict=False)))
    return rows


def _zeek_unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def zeek_catalog(root: str) -> list[tuple[str, list[str]]]:
    """(trace path, expected log paths) from the corpus catalogue."""
    catalog = os.path.join(os.path.dirname(root), "CATALOG.md")
    out = []
    with open(catalog, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("| `traces/"):
                continue
            cells = line.split("|")
            trace = cells[1].strip().strip("`").split("`")[0]
            logs = re.findall(r"`([^`]+\.(?:log|cut))`", cells[2])
            out.append((os.path.join(root, trace),
                        [os.path.join(root, "expected", log) for log in logs]))
    return out


def _tuple(e: dict[str, Any]) -> tuple[str, int, str, int]:
    return (get_field(e, "source.ip"), get_field(e, "source.port") or 0,
            get_field(e, "destination.ip"), get_field(e, "destination.port") or 0)


def _row_tuple(row: dict[str, str]) -> tuple[str, int, str, int] | None:
    try:
        return (row["id.orig_h"], int(row["id.orig_p"]), row["id.resp_h"], int(row["id.resp_p"]))
    except (KeyError, ValueError):
        return None


def run_zeek(root: str, report: Report) -> None:
    for trace, logs in zeek_catalog(root):
        wanted = [log for log in logs if os.path.basename(log).split(".")[0] in
                  ("dns", "http", "ssl", "ssh", "quic", "conn") and os.path.exists(log)]
        if not wanted or not os.path.exists(trace):
            continue
        events = collect(trace)
        report.captures += 1
        name = os.path.relpath(trace, root)
        by_ds: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in events:
            by_ds[e["event"]["dataset"]].append(e)
        for log in wanted:
            kind = os.path.basename(log).split(".")[0]
            rows = read_zeek_log(log)
            if kind == "dns":
                _zeek_dns(rows, by_ds["network.dns"], name, report)
            elif kind == "http":
                _zeek_http(rows, by_ds["network.http"], name, report)
            elif kind == "ssl":
                _zeek_ssl(rows, by_ds["network.tls"], name, report)
            elif kind == "quic":
                _zeek_quic(rows, by_ds["network.tls"], name, report)
            elif kind == "ssh":
                _zeek_ssh(rows, by_ds["network.ssh"], name, report)
            elif kind == "conn":
                _zeek_conn(rows, by_ds["network.connection"] + by_ds["network.icmp"], name,
                           report)


def _same_conn(e: dict[str, Any], row: dict[str, str]) -> bool:
    key = _row_tuple(row)
    return key is None or _tuple(e) == key


def _zeek_dns(rows: list[dict[str, str]], mine: list[dict[str, Any]], name: str,
              report: Report) -> None:
    for row in rows:
        query = row.get("query", "-")
        if query in ("-", "(empty)"):
            continue
        # Zeek lowercases query names and escapes unprintable bytes as \xNN
        names = {query.lower(), _zeek_unescape(query).lower()}
        ok = any(str(get_field(e, "dns.question.name")).lower() in names and _same_conn(e, row)
                 for e in mine)
        report.outcomes.append(Outcome("dns", name, f"query={query!r}", ok))


def _zeek_http(rows: list[dict[str, str]], mine: list[dict[str, Any]], name: str,
               report: Report) -> None:
    for row in rows:
        host = row.get("host", "-")
        uri = row.get("uri", "-")
        want_host = None if host == "-" else host.split(":")[0] if host.count(":") == 1 else host
        want_uri = None if uri == "-" else uri
        ok = any((want_host is None or get_field(e, "url.domain") == want_host) and
                 (want_uri is None or _same_uri(get_field(e, "url.original"), want_uri)) and
                 _same_conn(e, row) for e in mine)
        report.outcomes.append(Outcome("http", name, f"host={host!r} uri={uri!r}", ok))


def _same_uri(ours: str | None, theirs: str) -> bool:
    """Zeek escapes bytes as \\xNN; some tests log the URI percent-decoded."""
    if ours is None:
        return False
    decoded = unquote_to_bytes(ours).decode("utf-8", "backslashreplace")
    return theirs in (ours, unquote(ours), decoded) or ours == _zeek_unescape(theirs)


def _zeek_ssl(rows: list[dict[str, str]], mine: list[dict[str, Any]], name: str,
              report: Report) -> None:
    for row in rows:
        sni = row.get("server_name", "-")
        ok = any((sni == "-" or get_field(e, "tls.client.server_name") == sni) and
                 _same_conn(e, row) for e in mine)
        text = f"server_name={sni!r}" if sni != "-" else "a TLS handshake on " + \
            f"{row.get('id.orig_h')}:{row.get('id.orig_p')}->{row.get('id.resp_h')}:" \
            f"{row.get('id.resp_p')}"
        report.outcomes.append(Outcome("tls", name, text, ok))


#: quic.log column → our field; "(empty)" is an empty connection ID
_ZEEK_QUIC = (("version", "quic.version"), ("client_initial_dcid", "quic.client_initial_dcid"),
              ("client_scid", "quic.client_scid"), ("server_scid", "quic.server_scid"),
              ("server_name", "tls.client.server_name"), ("client_protocol", "tls.client.alpn"))


def _zeek_quic(rows: list[dict[str, str]], mine: list[dict[str, Any]], name: str,
               report: Report) -> None:
    quic = [e for e in mine if get_field(e, "network.protocol") == "quic"]
    for row in rows:
        conn = [e for e in quic if _same_conn(e, row)]
        for column, ours in _ZEEK_QUIC:
            value = row.get(column, "-")
            if value == "-":
                continue
            value = "" if value == "(empty)" else value
            if column == "client_protocol":  # Zeek logs the first protocol offered
                ok = any((get_field(e, ours) or [None])[0] == value for e in conn)
            else:
                ok = any(get_field(e, ours) == value for e in conn)
            report.outcomes.append(Outcome("quic", name, f"{column}={value!r}", ok))


def _zeek_ssh(rows: list[dict[str, str]], mine: list[dict[str, Any]], name: str,
              report: Report) -> None:
    for row in rows:
        for side in ("client", "server"):
            value = row.get(side, "-")
            if value == "-":
                continue
            ok = any(get_field(e, f"ssh.{side}.software") == value and _same_conn(e, row)
                     for e in mine)
            report.outcomes.append(Outcome("ssh", name, f"{side}={value!r}", ok))


def _zeek_conn(rows: list[dict[str, str]], mine: list[dict[str, Any]], name: str,
               report: Report) -> None:
    if rows and _row_tuple(rows[0]) is None:
        ok = len(mine) == len(rows)
        report.outcomes.append(Outcome("conn", name, f"{len(rows)} connections "
                                       f"(we found {len(mine)})", ok))
        return
    for row in rows:
        key = _row_tuple(row)
        proto = row.get("proto", "")
        found = [e for e in mine if _tuple(e) == key or (
            proto == "icmp" and (get_field(e, "source.ip"), get_field(e, "destination.ip")) ==
            (row["id.orig_h"], row["id.resp_h"]))]
        report.outcomes.append(Outcome("conn", name, f"{proto} {key}", bool(found)))
        state = row.get("conn_state")
        if state and state != "-":
            ours = {get_field(e, "network.connection.state") for e in found}
            report.outcomes.append(Outcome("conn_state", name,
                                           f"{key} state {state} (ours {sorted(ours)})",
                                           state in ours))


def run_tshark_ja3(corpus: str, report: Report) -> None:
    """JA3/JA3S of every TLS hello, against tshark's own (optional: needs tshark).

    tshark only dissects TLS on ports it associates with TLS, so hellos on other
    ports are compared only where tshark saw them too."""
    import shutil
    import subprocess

    tshark = shutil.which("tshark")
    if tshark is None:
        return
    pcaps = sorted(glob.glob(os.path.join(corpus, "pcaps", "**", "*.pcap*"), recursive=True))
    for path in pcaps:
        ours: dict[str, set[str]] = {"ja3": set(), "ja3s": set()}
        for e in collect(path):
            if e["event"]["dataset"] != "network.tls":
                continue
            if get_field(e, "tls.client.ja3"):
                ours["ja3"].add(get_field(e, "tls.client.ja3"))
            if get_field(e, "tls.server.ja3s"):
                ours["ja3s"].add(get_field(e, "tls.server.ja3s"))
        if not ours["ja3"] and not ours["ja3s"]:
            continue
        out = subprocess.run([tshark, "-n", "-r", path, "-Y",
                              "tls.handshake.type == 1 || tls.handshake.type == 2",
                              "-T", "fields", "-e", "tls.handshake.ja3",
                              "-e", "tls.handshake.ja3s"],
                             capture_output=True, text=True, timeout=120).stdout
        theirs: dict[str, set[str]] = {"ja3": set(), "ja3s": set()}
        for line in out.splitlines():
            ja3, _, ja3s = line.partition("\t")
            theirs["ja3"].update(x for x in ja3.split(",") if x)
            theirs["ja3s"].update(x for x in ja3s.split(",") if x)
        name = os.path.relpath(path, os.path.join(corpus, "pcaps"))
        for kind in ("ja3", "ja3s"):
            # values only tshark saw (on its TLS ports) and values only we produced
            for value in sorted(theirs[kind] | (ours[kind] if theirs[kind] else set())):
                where = "both" if value in ours[kind] and value in theirs[kind] else (
                    "tshark only" if value in theirs[kind] else "ours only")
                report.outcomes.append(Outcome(f"{kind}~tshark", name,
                                               f"{kind}={value} ({where})", where == "both"))


def run(corpus: str) -> Report:
    report = Report()
    started = time.monotonic()
    run_suricata(os.path.join(corpus, "pcaps", "suricata-verify"), report)
    run_zeek(os.path.join(corpus, "pcaps", "zeek"), report)
    report.seconds = time.monotonic() - started
    return report


def print_report(report: Report, details: bool, out: Any = sys.stdout) -> None:
    print(f"{report.captures} captures in {report.seconds:.1f}s", file=out)
    print(f"{'protocol':<11} {'agreed':>7} {'checks':>7} {'rate':>8} {'out of scope':>13}",
          file=out)
    total_ok = total = 0
    for proto, (ok, n, oos) in report.table().items():
        if not n and not oos:
            continue
        rate = f"{100 * ok / n:.1f}%" if n else "-"
        print(f"{proto:<11} {ok:>7} {n:>7} {rate:>8} {oos:>13}", file=out)
        total_ok += ok
        total += n
    print(f"{'all':<11} {total_ok:>7} {total:>7} {100 * total_ok / max(total, 1):>7.1f}%",
          file=out)
    if details:
        print("\ndisagreements:", file=out)
        for o in report.disagreements():
            print(f"  [{o.protocol}] {o.capture}: expected {o.expected}", file=out)
        print("\nout of scope:", file=out)
        for o in report.outcomes:
            if o.out_of_scope:
                print(f"  [{o.protocol}] {o.capture}: {o.expected}", file=out)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.environ.get(
        "GOVSOC_CORPUS", os.path.join(os.path.dirname(REPO), "shared", "corpus")))
    parser.add_argument("--details", action="store_true", help="list every disagreement")
    parser.add_argument("--tshark", action="store_true",
                        help="also compare JA3/JA3S with tshark's on every capture")
    args = parser.parse_args(list(argv) if argv is not None else None)
    report = run(args.corpus)
    if args.tshark:
        run_tshark_ja3(args.corpus, report)
    print_report(report, args.details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
