"""Conformance of the text log parsers against the real logs of the corpus.

For each corpus log: lines read, events, lines skipped by design (directives,
blank lines), dead letters with their reasons, and the parse rate (events over
lines that carry records). For syslog-shaped files also the share that the auth
parser recognised (an ``event.action``). For auditd, the record-by-record
agreement with go-libaudit's ``.golden`` expected parses.

    python bench/conformance_logs.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from collectors.auditd import parse_record  # noqa: E402
from collectors.logformats import read_log_file  # noqa: E402
from govsoc.errors import ParseError  # noqa: E402
from govsoc.events import parse_timestamp, validate_event  # noqa: E402

FILES = [
    ("logs/loghub/OpenSSH/OpenSSH_2k.log", "auth"),
    ("logs/loghub/Linux/Linux_2k.log", "auth"),
    ("logs/loghub/Linux/Linux_2k.log", "syslog"),
    ("logs/loghub/Apache/Apache_2k.log", "access"),
    ("evtx-attack-samples/Command and Control/Tunna_rdp_tunnel_IIS.log", "access"),
    ("evtx-attack-samples/Command and Control/web_attack_and_isp_webshell_localhost_access_log"
     ".txt", "access"),
]


def conformance(corpus: Path) -> None:
    print(f"{'file':58s} {'format':7s} {'lines':>6s} {'events':>6s} {'skip':>5s} "
          f"{'dead':>5s} {'parsed':>8s}  recognised / datasets")
    for relative, kind in FILES:
        path = corpus / relative
        if not path.exists():
            print(f"{relative}: not in the corpus")
            continue
        counts: dict[str, int] = {}
        events = []
        reasons: collections.Counter[str] = collections.Counter()
        for batch in read_log_file(str(path), kind, counters=counts):
            events += batch.events
            reasons.update(r.reason[:70] for r in batch.rejected)
        for event in events:
            validate_event(event)
        records = counts["lines"] - counts["skipped"]
        rate = counts["events"] / records if records else 1.0
        datasets = collections.Counter(e["event"]["dataset"] for e in events)
        acted = sum(1 for e in events if e["event"].get("action"))
        print(f"{relative[-58:]:58s} {kind:7s} {counts['lines']:6d} {counts['events']:6d} "
              f"{counts['skipped']:5d} {counts['rejected']:5d} {rate:8.2%}  "
              f"action {acted}/{len(events)}; "
              + ", ".join(f"{k} {v}" for k, v in datasets.most_common()))
        for reason, n in reasons.most_common(3):
            print(f"    dead letter x{n}: {reason}")


def audit_agreement(corpus: Path) -> None:
    root = corpus / "logs/go-libaudit/auparse/testdata"
    total = exact = fields = same = unparsed_both = 0
    diffs: collections.Counter[str] = collections.Counter()
    for golden in sorted(glob.glob(str(root / "*.log.golden"))):
        with open(golden, encoding="utf-8") as fh:
            expected_all = json.load(fh) or []
        with open(golden[: -len(".golden")], encoding="utf-8", errors="replace") as fh:
            raw = [line.rstrip("\n") for line in fh if line.strip()]
        for line, expected in zip(raw, expected_all, strict=True):
            if expected is None:
                try:
                    parse_record(line)
                except ParseError:
                    unparsed_both += 1
                continue
            total += 1
            record = parse_record(line)
            data = expected.get("data") or {}
            header = (record.type.lower() == expected["record_type"]
                      and record.sequence == expected["sequence"]
                      and record.timestamp == parse_timestamp(expected["@timestamp"])
                      and record.keys == expected.get("keys", []))
            for key in set(data) | set(record.data):
                fields += 1
                if data.get(key) == record.data.get(key):
                    same += 1
                else:
                    diffs[key] += 1
            if header and data == record.data:
                exact += 1
    print(f"\nauditd vs go-libaudit golden: {exact}/{total} records identical "
          f"({exact / total:.1%}), {same}/{fields} fields ({same / fields:.1%}); "
          f"{unparsed_both} record(s) neither parses")
    if diffs:
        print("  differing fields: " + ", ".join(f"{k} x{v}" for k, v in diffs.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    args = parser.parse_args()
    corpus = Path(args.corpus)
    conformance(corpus)
    audit_agreement(corpus)


if __name__ == "__main__":
    main()
