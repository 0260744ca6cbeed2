"""Benchmark: govsoc's Sigma engine against pySigma's SQLite backend, same rules, same events.

Corpus: every EVTX file of EVTX-ATTACK-SAMPLES and hayabusa-sample-evtx, read
by the EVTX collector, replicated to at least ``--events`` events. Rules: the
whole SigmaHQ Windows rule set (``rules/windows``, ``rules-threat-hunting/windows``,
``rules-emerging-threats``), through the same mapping pipeline.

Rates are events per second of CPU time of the process (one core; the machine
may be shared), with the wall-clock rate alongside.

- ours: compile all rules cold (empty cache) and cached; then stream the events
  through ``SigmaDetector.detect`` in batches of 2,000 (alerts built as in
  ingest); median events/s of ``--runs`` passes; peak RSS of the process.
- peer: the approach Zircolite uses — rules converted to SQL by
  pysigma-backend-sqlite, events flattened into an in-memory SQLite table (one
  TEXT COLLATE NOCASE column per field), every rule's query run over it;
  events/s = events / (load + queries). Same routing (as a WHERE clause);
  ``process_creation`` rules are converted a second time through pySigma's
  windows_audit pipeline for Security 4688, as our matcher reads them.

Each side runs in its own process so peak RSS is its own. Usage:

    python bench/bench_sigma.py [--events 150000] [--runs 3] [--peer-runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CORPUS = Path(os.environ.get("GOVSOC_CORPUS", REPO.parent / "shared" / "corpus"))
RULE_DIRS = [CORPUS / "sigma" / "rules" / "windows",
             CORPUS / "sigma" / "rules-threat-hunting" / "windows",
             CORPUS / "sigma" / "rules-emerging-threats"]
EVTX_DIRS = [CORPUS / "evtx-attack-samples", CORPUS / "hayabusa-sample-evtx"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_events() -> list:
    from collectors.evtx import iter_evtx_paths, read_evtx

    return [e for p in iter_evtx_paths(EVTX_DIRS) for b in read_evtx(p) for e in b.events]


def windows_rule_files() -> list[Path]:
    from detection.sigma.loader import iter_rule_files

    return list(iter_rule_files(RULE_DIRS))


def run_ours(target: int, runs: int) -> dict:
    from detection.sigma.engine import SigmaDetector
    from detection.sigma.ruleset import load_ruleset

    with tempfile.TemporaryDirectory() as cache:
        started, cpu = time.perf_counter(), time.process_time()
        cold = load_ruleset(RULE_DIRS, cache_dir=cache)
        cold_s, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        ruleset = load_ruleset(RULE_DIRS, cache_dir=cache)
        cached_s, cached_cpu = time.perf_counter() - started, time.process_time() - cpu
    windows = [r for r in ruleset.rules if (r.product or "") == "windows"]
    det = SigmaDetector(ruleset)
    base = load_events()
    copies = -(-target // len(base))
    total = len(base) * copies
    rates, walls, alerts = [], [], 0
    for _ in range(runs):
        alerts = 0
        busy = wall = 0.0
        for _copy in range(copies):
            for i in range(0, len(base), 2000):
                batch = base[i:i + 2000]
                t, w = time.process_time(), time.perf_counter()
                alerts += len(det.detect(batch))
                busy += time.process_time() - t
                wall += time.perf_counter() - w
        rates.append(total / busy)
        walls.append(total / wall)
    return {"engine": "govsoc", "rules": len(ruleset.rules), "windows_rules": len(windows),
            "rule_errors": len(cold.errors), "compile_cold_s": round(cold_s, 2),
            "compile_cached_s": round(cached_s, 2), "compile_cold_cpu_s": round(cold_cpu, 2),
            "compile_cached_cpu_s": round(cached_cpu, 2), "events": total,
            "events_per_s": round(statistics.median(rates)), "runs": [round(r) for r in rates],
            "events_per_wall_s": round(statistics.median(walls)),
            "alerts_per_pass": alerts, "peak_rss_mb": round(_rss_mb())}


def run_peer(target: int, runs: int) -> dict:
    from detection.sigma.reference import ReferenceDatabase, convert_rules

    files = windows_rule_files()
    started = time.perf_counter()
    reference = convert_rules((str(p), p.read_text(encoding="utf-8")) for p in files)
    convert_s = time.perf_counter() - started
    usable = [r for r in reference if r.sql is not None]
    base = load_events()
    copies = -(-target // len(base))
    total = len(base) * copies
    rates, walls, loads, queries, matches = [], [], [], [], 0
    for _ in range(runs):
        db = ReferenceDatabase(sorted({f for r in usable for f in r.fields}))
        t, w = time.process_time(), time.perf_counter()
        for _copy in range(copies):
            db.insert(base)
        load_s = time.process_time() - t
        t = time.process_time()
        matches = sum(len(db.run(r)) for r in usable)
        query_s = time.process_time() - t
        walls.append(total / (time.perf_counter() - w))
        db.close()
        loads.append(load_s)
        queries.append(query_s)
        rates.append(total / (load_s + query_s))
    return {"engine": "pysigma-backend-sqlite (Zircolite approach)", "rules": len(usable),
            "not_convertible": len(reference) - len(usable), "convert_s": round(convert_s, 2),
            "events": total, "events_per_s": round(statistics.median(rates)),
            "events_per_wall_s": round(statistics.median(walls)),
            "load_s": [round(x, 1) for x in loads], "query_s": [round(x, 1) for x in queries],
            "matches": matches, "peak_rss_mb": round(_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-runs", type=int, default=1)
    parser.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "ours":
        print(json.dumps(run_ours(args.events, args.runs)))
        return
    if args.side == "peer":
        print(json.dumps(run_peer(args.events, args.peer_runs)))
        return
    results = {}
    for side in ("ours", "peer"):
        out = subprocess.run([sys.executable, __file__, "--side", side, "--events",
                              str(args.events), "--runs", str(args.runs), "--peer-runs",
                              str(args.peer_runs)], check=True, capture_output=True, text=True)
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[side], indent=2))
    ours, peer = results["ours"], results["peer"]
    print(f"\ngovsoc:  {ours['events_per_s']:>9,} events/s  peak RSS {ours['peak_rss_mb']} MB  "
          f"compile cold {ours['compile_cold_cpu_s']} s CPU ({ours['compile_cold_s']} s wall), "
          f"cached {ours['compile_cached_cpu_s']} s CPU  "
          f"({ours['rules']} rules)")
    print(f"sqlite:  {peer['events_per_s']:>9,} events/s  peak RSS {peer['peak_rss_mb']} MB  "
          f"convert {peer['convert_s']} s  ({peer['rules']} rules)")
    print(f"speed-up: {ours['events_per_s'] / max(peer['events_per_s'], 1):.1f}x "
          f"on {ours['events']:,} events")


if __name__ == "__main__":
    main()
