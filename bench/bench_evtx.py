"""Benchmark: EVTX → ECS events on one core, next to the bare ``evtx`` package.

The corpus (``evtx-attack-samples``, ``hayabusa-sample-evtx`` and SigmaHQ's
``regression_data``: about 8,700 records in 575 files) is read again and again
until at least ``--records`` records have gone through, twice: as the 575 small
files it is, and with all its chunks merged into one log (how a real Security or
Sysmon log looks; per-file costs drop out). Each measurement runs in
its own child process pinned to one CPU, with the ``evtx`` package limited to one
thread, and prints records/s and the child's peak RSS. Modes, measured in the
same run and interleaved:

* ``bare``: ``PyEvtxParser(path).records_json()`` iterated, records counted — the
  floor (the Rust parser and its JSON rendering, nothing else);
* ``bare+json``: the same plus ``orjson.loads`` of every record — what any Python
  consumer of the package pays at least;
* ``govsoc``: :func:`collectors.evtx.read_evtx` — complete ECS events (winlog.*,
  event data, ECS enrichment, deterministic ids, ``event.original``) in batches,
  through the compiled module ``govsoc_evtx`` when it is installed (the run says
  when it is not);
* ``govsoc-py``: the same with ``GOVSOC_NATIVE=0``: the Python path (the
  reference the compiled one is held to).

Medians of ``--repeat`` runs.

    python bench/bench_evtx.py [--records 150000] [--repeat 5] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS_DIRS = ("evtx-attack-samples", "hayabusa-sample-evtx", "sigma/regression_data")

CHILD = r"""
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[3])})
mode, passes = sys.argv[1], int(sys.argv[2])
files = [line for line in sys.stdin.read().splitlines() if line]
import evtx, orjson
from collectors.evtx import read_evtx
from collectors.native import native_module
if mode == "govsoc" and native_module("evtx") is None:
    print("note: govsoc_evtx is not installed; 'govsoc' measures the Python path",
          file=sys.stderr)
records = 0
started, cpu_started = time.perf_counter(), time.process_time()
for _ in range(passes):
    for path in files:
        if mode == "bare":
            for _record in evtx.PyEvtxParser(path, number_of_threads=1).records_json():
                records += 1
        elif mode == "bare+json":
            for record in evtx.PyEvtxParser(path, number_of_threads=1).records_json():
                orjson.loads(record["data"])
                records += 1
        else:
            for batch in read_evtx(path, threads=1):
                records += len(batch.events) + len(batch.rejected)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
# VmHWM: the peak resident set of this program (ru_maxrss would include the
# parent's memory inherited at fork)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(records, elapsed, cpu, peak)
"""


def corpus_files(root: Path) -> list[str]:
    files: list[str] = []
    for name in CORPUS_DIRS:
        base = root / name
        if not base.is_dir():
            sys.exit(f"corpus folder missing: {base}")
        files.extend(str(p) for p in sorted(base.rglob("*.evtx")))
    return files


def merge_chunks(files: list[str], target: Path) -> None:
    """One EVTX file holding every chunk of ``files`` behind a fresh header: the
    corpus as one large log, so per-file costs drop out of the comparison."""
    from collectors.evtx import CHUNK_SIZE, HEADER_BLOCK, build_file_header

    chunks: list[bytes] = []
    for path in files:
        raw = Path(path).read_bytes()
        for offset in range(HEADER_BLOCK, len(raw) - CHUNK_SIZE + 1, CHUNK_SIZE):
            chunk = raw[offset:offset + CHUNK_SIZE]
            first, last = struct.unpack_from("<QQ", chunk, 8)
            if chunk[:8] == b"ElfChnk\x00" and last >= first:
                chunks.append(chunk)
    with target.open("wb") as out:
        out.write(build_file_header(min(len(chunks), 0xFFFF)))
        for chunk in chunks:
            out.write(chunk)


def count_records(files: list[str]) -> int:
    import evtx

    return sum(1 for path in files
               for _ in evtx.PyEvtxParser(path, number_of_threads=1).records_json())


def run(mode: str, files: list[str], passes: int,
        cpu: int) -> tuple[int, float, float, int]:
    env = dict(os.environ, GOVSOC_NATIVE="0" if mode == "govsoc-py" else "1")
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(passes), str(cpu)],
                          input="\n".join(files), capture_output=True, text=True,
                          cwd=REPO, check=False, env=env)
    if proc.returncode != 0:
        sys.exit(f"{mode} failed: {proc.stderr[-2000:]}")
    if proc.stderr.strip():
        print(proc.stderr.strip(), file=sys.stderr)
    records, elapsed, cpu_seconds, rss = proc.stdout.split()
    return int(records), float(elapsed), float(cpu_seconds), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("GOVSOC_CORPUS",
                                                    REPO.parent / "shared" / "corpus")))
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)))
    args = parser.parse_args()

    corpus = corpus_files(args.corpus)
    with tempfile.TemporaryDirectory() as scratch:
        merged = Path(scratch) / "corpus-merged.evtx"
        merge_chunks(corpus, merged)
        for label, files in (("corpus files as they are (575 small logs)", corpus),
                             ("corpus chunks merged into one log", [str(merged)])):
            measure(label, files, args)


def measure(label: str, files: list[str], args: argparse.Namespace) -> None:
    per_pass = count_records(files)
    passes = max(1, math.ceil(args.records / per_pass))
    print(f"\n{label}: {len(files)} files, {per_pass:,} records per pass; {passes} passes "
          f"= {passes * per_pass:,} records per run; CPU {args.cpu}; {args.repeat} runs")
    modes = ("bare", "bare+json", "govsoc", "govsoc-py")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    cpu_rates: dict[str, list[float]] = {m: [] for m in modes}
    peaks: dict[str, list[int]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            records, elapsed, cpu_seconds, rss = run(mode, files, passes, args.cpu)
            rates[mode].append(records / elapsed)
            cpu_rates[mode].append(records / cpu_seconds)
            peaks[mode].append(rss)
    # records per CPU-second is what one core sustains; wall-clock rates also show
    # how much other work shared the core during the run
    bare = statistics.median(cpu_rates["bare"])
    print(f"{'mode':<10} {'rec/CPU-s median':>17} {'min':>9} {'max':>9} "
          f"{'wall rec/s median':>18} {'peak RSS MiB':>13} {'vs bare':>8}")
    for mode in modes:
        median = statistics.median(cpu_rates[mode])
        print(f"{mode:<10} {median:>17,.0f} {min(cpu_rates[mode]):>9,.0f} "
              f"{max(cpu_rates[mode]):>9,.0f} {statistics.median(rates[mode]):>18,.0f} "
              f"{max(peaks[mode]) / 1024:>13.1f} {median / bare:>8.2f}")
    compiled, python = (statistics.median(cpu_rates[m]) for m in ("govsoc", "govsoc-py"))
    print(f"govsoc / govsoc-py: {compiled / python:.2f}x")


if __name__ == "__main__":
    main()
