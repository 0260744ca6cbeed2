"""Benchmark: ``govsoc ingest jsonl`` of N synthetic ECS events into SQLite.

Prints events/s and peak RSS of the govsoc process, next to a peer measured in the
same run: a bare loader (orjson + one executemany of the same documents into an
SQLite table with a unique id) — the floor any ingest into SQLite pays. Medians of
``--repeat`` runs, each into a fresh data dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ecs_synth import write_jsonl

BARE_LOADER = r"""
import sqlite3, sys, orjson
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, ts TEXT, doc TEXT)")
rows = []
SQL = "INSERT OR IGNORE INTO events (id, ts, doc) VALUES (?,?,?)"
def flush():
    db.execute("BEGIN"); db.executemany(SQL, rows); db.execute("COMMIT"); rows.clear()
with open(sys.argv[1], "rb") as f:
    for n, line in enumerate(f):
        doc = orjson.loads(line)
        rows.append((str(n), doc["@timestamp"], orjson.dumps(doc).decode()))
        if len(rows) >= 2000: flush()
flush()
"""




def measure(args: list[str], cwd: str) -> tuple[float, int, float]:
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys, time; t=time.perf_counter(); "
               "r=subprocess.run(sys.argv[1:], capture_output=True); "
               "e=time.perf_counter()-t; "
               "u=resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(r.returncode, e, u.ru_maxrss, u.ru_utime + u.ru_stime); "
               "sys.stderr.write(r.stderr.decode()[-3000:])", *args]
    proc = subprocess.run(wrapper, cwd=cwd, capture_output=True, text=True, check=False)
    code, elapsed, rss, cpu = proc.stdout.split()
    if int(code) not in (0,):
        sys.exit(f"{args[:4]} failed ({code}): {proc.stderr}")
    return float(elapsed), int(rss), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    opts = parser.parse_args()
    work = Path(opts.workdir or tempfile.mkdtemp(prefix="govsoc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"events-{opts.events}.jsonl"
    if not data.exists():
        size = write_jsonl(str(data), opts.events)
        print(f"generated {opts.events:,} events ({size / 1e6:.0f} MB) in {data}")
    govsoc_runs, bare_runs = [], []
    for i in range(opts.repeat):
        d = work / f"run{i}"
        subprocess.run(["rm", "-rf", str(d)], check=True)
        d.mkdir()
        govsoc_runs.append(measure([sys.executable, "-m", "govsoc", "--data-dir", str(d),
                                    "ingest", "jsonl", "--no-detect", str(data)], str(d)))
        bare_runs.append(measure([sys.executable, "-c", BARE_LOADER, str(data),
                                  str(d / "bare.db")], str(d)))
    g = statistics.median(t for t, _, _ in govsoc_runs)
    b = statistics.median(t for t, _, _ in bare_runs)
    g_cpu = statistics.median(c for _, _, c in govsoc_runs)
    b_cpu = statistics.median(c for _, _, c in bare_runs)
    g_rss = max(r for _, r, _ in govsoc_runs) / 1024
    b_rss = max(r for _, r, _ in bare_runs) / 1024
    print(f"events: {opts.events:,}  runs: {opts.repeat}  cpus: {os.cpu_count()}  "
          f"load average: {os.getloadavg()[0]:.1f}")
    print(f"govsoc ingest jsonl : {opts.events / g:>10,.0f} events/s wall (median {g:.1f}s), "
          f"{opts.events / g_cpu:>10,.0f} events/s of CPU time (median {g_cpu:.1f}s)  "
          f"peak RSS {g_rss:.0f} MB")
    print(f"bare sqlite loader  : {opts.events / b:>10,.0f} events/s wall (median {b:.1f}s), "
          f"{opts.events / b_cpu:>10,.0f} events/s of CPU time (median {b_cpu:.1f}s)  "
          f"peak RSS {b_rss:.0f} MB")
    print(f"ratio govsoc/bare   : {b / g:.2f}x of the bare loader's throughput (wall), "
          f"{b_cpu / g_cpu:.2f}x (CPU)")


if __name__ == "__main__":
    main()
