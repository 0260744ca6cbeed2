"""Benchmarks of the text log collectors: access-log tailing and syslog over UDP.

``tail``: a synthetic Apache combined access log (``--lines``, generated once into
``--work-dir``) read to its end by :class:`collectors.tail.FileTailer` into ECS
events, ``--runs`` times; the median lines/s (wall clock and CPU time of this
process) of the compiled path (``govsoc_weblog``, when installed) and of the
Python path (``GOVSOC_NATIVE=0``) is compared in the same run with two peers: a
plain Python loop that only reads the lines, and a Python loop that reads them and
runs one regex match per line (the least any Python parser must do). ``--store``
adds a run that also stores the events in a fresh SQLite store through the
pipeline.

``syslog``: a sender process paces RFC 3164 messages over UDP on loopback at
``--rate`` messages/s for ``--seconds``; the receiver (:class:`SyslogReceiver`)
parses them into events in this process. Reported: messages sent, received by the
socket, dropped by the receiver's queue (its visible drop counter), lost before
the socket (sent - received: the kernel's buffer overflowed), events made, how many
were still queued when the sender stopped, and the sustained rate: events made
over the time from the first datagram sent to the last event made. The peer,
measured in the same run at the same offered rate, is a bare Python ``recvfrom``
loop that only counts datagrams.

    python bench/bench_logs.py tail [--lines 300000] [--runs 3] [--store]
    python bench/bench_logs.py syslog [--rate 30000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from collectors.syslog import Listener, SyslogReceiver  # noqa: E402
from collectors.tail import FileTailer  # noqa: E402

PATHS = ["/", "/portal/index.php", "/dvc/search?q=ho+so&page=2", "/static/app.js",
         "/api/v1/hoso/123", "/wp-login.php", "/images/logo.png", "/login?next=%2Fadmin"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
          "curl/8.4.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
          "sqlmap/1.7.2#stable (https://sqlmap.org)"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def load_note() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return ""
    return f"(load average {one:.1f} / {five:.1f} on {os.cpu_count()} CPUs)"


# -- tail --------------------------------------------------------------------------

def make_access_log(path: Path, lines: int) -> None:
    rng = random.Random(7)
    start = 1_700_000_000
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(lines):
            d = datetime.fromtimestamp(start + i // 20, UTC)
            stamp = f"{d.day:02d}/{MONTHS[d.month - 1]}/{d.year}:{d:%H:%M:%S} +0700"
            fh.write(f'10.{i % 200}.{i % 97}.{i % 251} - - [{stamp}] "GET {rng.choice(PATHS)} '
                     f'HTTP/1.1" {rng.choice((200, 200, 200, 304, 404, 500))} '
                     f'{rng.randint(100, 50000)} "https://dichvucong.example.gov.vn/" '
                     f'"{rng.choice(AGENTS)}"\n')


def timed(fn) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    count = fn()
    return count, time.perf_counter() - wall, time.process_time() - cpu


def govsoc_tail(path: Path) -> int:
    count = 0
    for batch in FileTailer([str(path)], "apache", follow=False).batches():
        count += len(batch.events)
    return count


def govsoc_tail_python(path: Path) -> int:
    """:func:`govsoc_tail` on the Python path only."""
    before = os.environ.get("GOVSOC_NATIVE")
    os.environ["GOVSOC_NATIVE"] = "0"
    try:
        return govsoc_tail(path)
    finally:
        if before is None:
            del os.environ["GOVSOC_NATIVE"]
        else:
            os.environ["GOVSOC_NATIVE"] = before


def peer_read(path: Path) -> int:
    count = 0
    with open(path, "rb") as fh:
        for _ in fh:
            count += 1
    return count


_PEER_RE = re.compile(rb'(\S+) \S+ (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-)')


def peer_regex(path: Path) -> int:
    count = 0
    with open(path, "rb") as fh:
        for line in fh:
            if _PEER_RE.match(line):
                count += 1
    return count


def govsoc_tail_store(path: Path) -> int:
    from govsoc.pipeline import Pipeline
    from store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        try:
            pipeline = Pipeline(store)
            tailer = FileTailer([str(path)], "apache", follow=False)
            pipeline.run(tailer.batches())
            return pipeline.stats.stored
        finally:
            store.close()


def bench_tail(args: argparse.Namespace) -> None:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"access-{args.lines}.log"
    if not path.exists():
        make_access_log(path, args.lines)
    print(f"access-log tailing: {args.lines:,} lines, {path.stat().st_size / 1e6:.0f} MB, "
          f"median of {args.runs} runs {load_note()}")
    from collectors.native import native_module

    compiled = "compiled path" if native_module("weblog") is not None else \
        "compiled path NOT INSTALLED: Python"
    contenders = [(f"govsoc FileTailer → ECS events ({compiled})", govsoc_tail),
                  ("govsoc FileTailer → ECS events (Python path)", govsoc_tail_python),
                  ("peer: Python loop reading lines", peer_read),
                  ("peer: Python loop + one regex match per line", peer_regex)]
    if args.store:
        contenders.append(("govsoc FileTailer → pipeline → SQLite store", govsoc_tail_store))
    for label, fn in contenders:
        runs = [timed(lambda fn=fn: fn(path)) for _ in range(args.runs)]
        count = runs[0][0]
        wall = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(f"  {label:56s} {count / wall:>12,.0f} lines/s wall  "
              f"{count / cpu:>12,.0f} lines/s CPU  ({count:,} lines)")


# -- syslog over UDP ----------------------------------------------------------------

def _sender(port: int, rate: int, seconds: float, sent: multiprocessing.Value,
            began: multiprocessing.Value | None = None) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", port)
    messages = [(f"<38>Dec 10 06:55:46 web{i % 7} sshd[{1000 + i % 50}]: Failed password for "
                 f"user{i % 300} from 203.0.113.{i % 250} port {1024 + i % 60000} ssh2"
                 if i % 4 == 0 else
                 f"<30>Dec 10 06:55:46 web{i % 7} nginx[77]: upstream response time "
                 f"{i % 997} ms for request {i}").encode() for i in range(1000)]
    total = int(rate * seconds)
    if began is not None:
        began.value = time.time()
    start = time.perf_counter()
    count = 0
    burst = max(rate // 1000, 1)  # pace in 1 ms steps
    while count < total:
        for _ in range(burst):
            sock.sendto(messages[count % 1000], target)
            count += 1
        ahead = count / rate - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
    sent.value = count


def _udp_errors() -> int | None:
    try:
        with open("/proc/net/snmp", encoding="ascii") as fh:
            rows = [line.split() for line in fh if line.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def run_govsoc_receiver(rate: int, seconds: float) -> dict[str, float]:
    # batches are handed out every 2,000 events or 0.1 s: the last one is not held back
    receiver = SyslogReceiver([Listener("udp", "127.0.0.1", 0)], flush_seconds=0.1)
    receiver.start()
    port = receiver.bound[0][1]
    events = 0
    last_event_at = 0.0

    def consume() -> None:
        nonlocal events, last_event_at
        for batch in receiver.batches():
            events += len(batch.events)
            if batch.events:
                last_event_at = time.time()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    sent = multiprocessing.Value("q", 0)
    began = multiprocessing.Value("d", 0.0)
    kernel_before = _udp_errors()
    started = time.perf_counter()
    sender = multiprocessing.Process(target=_sender, args=(port, rate, seconds, sent, began))
    sender.start()
    sender.join()
    sending_ended = time.time()
    behind_at_end = sent.value - events
    # let the receiver finish what it holds
    deadline = time.perf_counter() + 30
    while events + receiver.counters.rejected < receiver.counters.received \
            - receiver.counters.udp_dropped and time.perf_counter() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    receiver.stop()
    consumer.join(10)
    kernel_after = _udp_errors()
    c = receiver.counters
    return {"sent": sent.value, "received": c.received, "queue_dropped": c.udp_dropped,
            "counted_kernel_dropped": c.udp_kernel_dropped,
            "lost_before_socket": sent.value - c.received, "events": events,
            "rejected": c.rejected, "elapsed": elapsed,
            # from the first datagram sent to the last event made
            "span": max(last_event_at - began.value, 1e-9),
            "behind_at_end": behind_at_end,
            "drain_s": max(last_event_at - sending_ended, 0.0),
            "kernel_rcvbuf_errors": (kernel_after - kernel_before)
            if kernel_before is not None and kernel_after is not None else -1}


def run_peer_receiver(rate: int, seconds: float) -> dict[str, float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    received = 0
    stop = threading.Event()

    def loop() -> None:
        nonlocal received
        while not stop.is_set():
            try:
                sock.recvfrom(65536)
            except TimeoutError:
                continue
            received += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    sent = multiprocessing.Value("q", 0)
    started = time.perf_counter()
    sender = multiprocessing.Process(target=_sender,
                                     args=(sock.getsockname()[1], rate, seconds, sent))
    sender.start()
    sender.join()
    time.sleep(1.0)
    stop.set()
    thread.join(5)
    sock.close()
    return {"sent": sent.value, "received": received, "elapsed": time.perf_counter() - started}


def conversion_capacity(count: int = 100_000) -> tuple[float, float]:
    """Messages/s (wall, CPU) of the receiver's message → event step alone."""
    from collectors.base import Batch

    receiver = SyslogReceiver([Listener("udp", "127.0.0.1", 0)])
    now = time.time()
    items = [(f"<38>Dec 10 06:55:46 web{i % 7} sshd[{1000 + i % 50}]: Failed password for "
              f"user{i % 300} from 203.0.113.{i % 250} port {1024 + i % 60000} ssh2"
              if i % 4 == 0 else f"<30>Dec 10 06:55:46 web{i % 7} nginx[77]: upstream "
              f"response time {i % 997} ms for request {i}").encode() for i in range(count)]
    received = [[(data, "127.0.0.1:514", "udp", now + i / 30000, None)
                 for i, data in enumerate(items[start:start + 2000], start)]
                for start in range(0, count, 2000)]
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in received:
        batch = Batch()
        for item in chunk:
            receiver._convert(item, batch)
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def bench_syslog(args: argparse.Namespace) -> None:
    print(f"syslog over UDP on loopback: offered {args.rate:,} messages/s for {args.seconds:.0f} s"
          f" {load_note()}")
    capacity = [conversion_capacity() for _ in range(args.runs)]
    print(f"  message → ECS event conversion alone: "
          f"{statistics.median(c[0] for c in capacity):,.0f} messages/s wall, "
          f"{statistics.median(c[1] for c in capacity):,.0f} messages/s CPU")
    results = [run_govsoc_receiver(args.rate, args.seconds) for _ in range(args.runs)]
    for r in results:
        print(f"  govsoc receiver: sent {r['sent']:,}  received {r['received']:,}  "
              f"queue-dropped {r['queue_dropped']:,}  lost before the socket "
              f"{r['lost_before_socket']:,} (receiver's socket-drop counter "
              f"{r['counted_kernel_dropped']:,}, kernel RcvbufErrors "
              f"{r['kernel_rcvbuf_errors']:,})"
              f"  events {r['events']:,}  rejected {r['rejected']:,}  "
              f"still queued when sending ended {r['behind_at_end']:,} (made "
              f"{r['drain_s']:.2f} s later) → {r['events'] / r['span']:,.0f} events/s sustained "
              "(first datagram sent to last event made)")
    rates = [r["events"] / r["span"] for r in results]
    print(f"  govsoc median sustained: {statistics.median(rates):,.0f} events/s, "
          f"delivered {statistics.median(r['events'] / r['sent'] for r in results):.2%} "
          "of what was sent")
    peers = [run_peer_receiver(args.rate, args.seconds) for _ in range(args.runs)]
    for p in peers:
        print(f"  peer (bare Python recvfrom loop, counting only): sent {p['sent']:,}  "
              f"received {p['received']:,} ({p['received'] / p['sent']:.2%})")


def main() -> None:
    from govsoc.cli.logs import tune_gc

    # the same garbage-collector settings as ``govsoc listen`` and ``govsoc tail``
    tune_gc()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tail")
    t.add_argument("--lines", type=int, default=300_000)
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--store", action="store_true")
    t.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "govsoc-bench"))
    s = sub.add_parser("syslog")
    s.add_argument("--rate", type=int, default=30_000)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bench_tail(args) if args.what == "tail" else bench_syslog(args)


if __name__ == "__main__":
    main()
