"""Benchmark: govsoc's YARA scanner against the ``yara`` command-line tool.

Both scan the same tree with the same rules (signature-base and govsoc's own
rules, or ``--rules``), the same size cap and timeout, in the same run; the
figure is the median throughput of several runs each. The tree is built once
(copied from this machine's binaries, documentation, Python, PHP and JS
sources) unless ``--tree`` names one; symlinks are kept as links and neither
tool follows them.

    python bench/bench_yara.py [--tree DIR] [--runs 3] [--min-mb 500]

Measured:
- ``yara CLI``: ``yara -r -N -w -z CAP -a TIMEOUT -C rules.yarc TREE`` with the
  rules compiled beforehand by ``yarac`` (so its compile time is not counted);
  it runs one scanning thread per core by default.
- ``govsoc engine``: :class:`detection.yara.scanner.YaraScanner` in process,
  rules loaded from the compile cache (load time counted).
- ``govsoc scan``: the whole ``govsoc scan`` command (process start, rule
  load, output).
Wall time and CPU time are both reported: on a shared machine the CPU seconds
each tool spends are the steadier measure of its efficiency.
Both govsoc runs leave archives closed (``--no-archives``) so that they do the
same work as the CLI, which does not unpack; ``govsoc scan (archives)`` is the
default command, which also scans the members of zip/tar files.
Also reported: the files each tool flagged and how far the two agree (rules that
test the ``filename``/``extension`` externals see real values in govsoc and
empty strings in the CLI, so a small difference is expected there).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detection.yara.compiler import (  # noqa: E402
    EXTERNALS,
    builtin_rules_dir,
    compile_rules,
    find_rule_files,
)
from detection.yara.scanner import ScanLimits, ScanStats, YaraScanner  # noqa: E402

LABELS = {"cli": "yara CLI", "engine": "govsoc engine", "command": "govsoc scan",
          "archives": "govsoc scan (archives)"}
SOURCES = ["/usr/bin", "/usr/share/doc", "/usr/lib/python3.11", "/usr/lib/python3/dist-packages",
           "/usr/share/wordpress", "/usr/share/phpmyadmin", "/usr/share/roundcube",
           "/usr/share/javascript", "/usr/share/perl5", "/usr/share/locale"]
CAP_MB = 64
# the CLI (4.2) counts -a from the start of the whole directory scan, not per file:
# with a per-file figure such as 60 s it aborts every scan still running at that
# moment and reports them as "timed out"; a large value lets it finish the tree
TIMEOUT = 3600


def tree_size(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
                files += 1
    return total, files


def build_tree(root: Path, min_bytes: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        if tree_size(root)[0] >= min_bytes:
            return
        if not os.path.isdir(source):
            continue
        target = root / source.strip("/").replace("/", "_")
        if not target.exists():
            shutil.copytree(source, target, symlinks=True, ignore_dangling_symlinks=True,
                            dirs_exist_ok=True)


def rule_sources(args: argparse.Namespace) -> list[Path]:
    if args.rules:
        return [Path(r) for r in args.rules]
    corpus = Path(os.environ.get("GOVSOC_CORPUS", REPO.parent / "shared" / "corpus"))
    sigbase = corpus / "yara" / "signature-base" / "yara"
    return ([sigbase] if sigbase.is_dir() else []) + [builtin_rules_dir()]


def compile_for_cli(sources: list[Path], out: Path) -> None:
    """Compile the same rule files with the CLI's own yarac (its libyara version)."""
    defines = [f"--define={name}=" for name in EXTERNALS]
    files = [f"{f.namespace.replace(':', '_')}:{f.path}" for f in find_rule_files(sources)]
    subprocess.run(["yarac", "-w", *defines, *files, str(out)], check=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_run(compiled: Path, tree: Path) -> tuple[float, float, set[str]]:
    started, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(
        ["yara", "-r", "-N", "-w", "-C", "-z", str(CAP_MB * 1024 * 1024), "-a", str(TIMEOUT),
         str(compiled), str(tree)], capture_output=True, text=True, errors="replace")
    elapsed = time.perf_counter() - started
    if "timed out" in proc.stderr:
        print("  warning: the CLI reported timeouts", file=sys.stderr)
    flagged = {line.split(" ", 1)[1] for line in proc.stdout.splitlines() if " " in line}
    return elapsed, _children_cpu() - cpu, flagged


def engine_run(sources: list[Path], cache: Path, tree: Path
               ) -> tuple[float, float, set[str], int]:
    started, cpu = time.perf_counter(), time.process_time()
    scanner = YaraScanner(compile_rules(sources, cache),
                          ScanLimits(max_file_size=CAP_MB * 1024 * 1024, timeout=TIMEOUT,
                                     archives=None))
    stats = ScanStats()
    flagged = {r.path for r in scanner.scan([str(tree)], stats) if r.matches}
    if stats.skipped:
        print(f"  govsoc: {stats.summary()}", file=sys.stderr)
    return (time.perf_counter() - started, time.process_time() - cpu, flagged,
            stats.bytes_scanned)


def command_run(sources: list[Path], data_dir: Path, tree: Path, archives: bool
                ) -> tuple[float, float]:
    rules = [a for s in sources for a in ("--rules", str(s))]
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([sys.executable, "-m", "govsoc", "--data-dir", str(data_dir), "scan",
                    "--no-default-rules", *rules, "--format", "jsonl",
                    *([] if archives else ["--no-archives"]), "--max-size", str(CAP_MB),
                    "--timeout", str(TIMEOUT), str(tree)],
                   check=True, capture_output=True)
    return time.perf_counter() - started, _children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="tree to scan (default: build one)")
    parser.add_argument("--rules", action="append", help="rule directory (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--min-mb", type=int, default=500)
    args = parser.parse_args()
    if shutil.which("yara") is None or shutil.which("yarac") is None:
        print("the yara command-line tools are not installed (apt-get install yara)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="govsoc-bench-yara-"))
    tree = args.tree or Path(tempfile.gettempdir()) / "govsoc-bench-tree"
    if args.tree is None:
        build_tree(tree, args.min_mb * 1024 * 1024)
    size, files = tree_size(tree)
    print(f"tree {tree}: {size / 1e6:,.0f} MB in {files:,} files")
    sources = rule_sources(args)
    cache = work / "cache"
    report = compile_rules(sources, cache).report
    print(f"rules: {report.summary()}")
    compiled_cli = work / "rules.yarc"
    compile_for_cli(sources, compiled_cli)
    # one unmeasured pass each so both read the tree from the page cache
    cli_run(compiled_cli, tree)
    engine_run(sources, cache, tree)

    wall: dict[str, list[float]] = {k: [] for k in LABELS}
    cpu: dict[str, list[float]] = {k: [] for k in LABELS}
    cli_flagged: set[str] = set()
    engine_flagged: set[str] = set()
    scanned = 0
    for run in range(args.runs):
        elapsed, used, cli_flagged = cli_run(compiled_cli, tree)
        wall["cli"].append(elapsed)
        cpu["cli"].append(used)
        elapsed, used, engine_flagged, scanned = engine_run(sources, cache, tree)
        wall["engine"].append(elapsed)
        cpu["engine"].append(used)
        for key, archives in (("command", False), ("archives", True)):
            elapsed, used = command_run(sources, work / "data", tree, archives)
            wall[key].append(elapsed)
            cpu[key].append(used)
        print(f"run {run + 1}: " + ", ".join(
            f"{LABELS[k]} {wall[k][-1]:.1f}s ({cpu[k][-1]:.1f} CPU-s)" for k in LABELS),
            flush=True)
    mb = size / 1e6
    print(f"\nmedian of {args.runs} runs over {mb:,.0f} MB ({scanned / 1e6:,.0f} MB under the "
          f"size cap), {os.cpu_count()} cores; load average now "
          f"{os.getloadavg()[0]:.1f}:")
    cli_wall, cli_cpu = statistics.median(wall["cli"]), statistics.median(cpu["cli"])
    for key, label in LABELS.items():
        w, c = statistics.median(wall[key]), statistics.median(cpu[key])
        print(f"  {label:<24} {w:7.1f}s wall {mb / w:6.1f} MB/s ({cli_wall / w:.2f}x the CLI)"
              f"   {c:7.1f} CPU-s ({cli_cpu / c:.2f}x the CLI per CPU-second)")
    both = cli_flagged & engine_flagged
    print(f"flagged files: CLI {len(cli_flagged)}, govsoc {len(engine_flagged)}, "
          f"both {len(both)}")
    for path in sorted(cli_flagged ^ engine_flagged)[:10]:
        print(f"  only {'CLI' if path in cli_flagged else 'govsoc'}: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
