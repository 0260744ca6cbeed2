"""Benchmark: the network collector on a deterministic mixed capture, next to
``tshark -T fields`` and a dpkt script doing comparable extraction, in the same run.

The capture (``bench/pcap_mix.py``: HTTP, TLS, DNS, SSH, bulk TCP, ICMP, NTP and a
port scan; ≥ 200,000 packets) is generated into ``--dir`` (a temporary directory by
default) and reused while its parameters stay the same. Each tool runs ``--repeat``
times in its own process; the table gives medians of packets per second of wall
time and of CPU time (user + system: the machine may be shared), and of peak RSS.

- govsoc: ``PcapFileSource`` over the file: decoding, connection tracking, TCP
  reassembly, DNS/HTTP/TLS/SSH parsing, carving and hashing HTTP bodies, ECS events.
- tshark: ``-n -T fields`` with 12 fields (addresses, ports, DNS query, HTTP host
  and URI, TLS SNI, SSH banner), output to /dev/null; it reassembles TCP too.
- dpkt: per packet Ethernet/IP/TCP/UDP, a flow table, DNS parsing on port 53, HTTP
  requests and TLS ClientHello SNI from single segments (no reassembly), SSH banners.

A second govsoc run on a capture twice as large shows whether peak RSS depends on
file size (it should not: flows expire, events leave in batches).

Usage: ``python bench/bench_pcap.py [--packets N] [--repeat R] [--dir DIR]``.
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

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

GOVSOC = r"""
import sys
sys.path.insert(0, sys.argv[2])
from collectors.network.source import PcapFileSource
source = PcapFileSource(sys.argv[1])
events = 0
for batch in source.batches():
    events += len(batch.events)
print(source.sensor.packets, events)
"""

DPKT = r"""
import sys, socket, dpkt
packets = flows_seen = records = 0
flows = {}
with open(sys.argv[1], "rb") as fh:
    for ts, buf in dpkt.pcap.Reader(fh):
        packets += 1
        try:
            eth = dpkt.ethernet.Ethernet(buf)
        except (dpkt.UnpackError, IndexError):
            continue
        ip = eth.data
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            continue
        l4 = ip.data
        sport = getattr(l4, "sport", 0)
        dport = getattr(l4, "dport", 0)
        key = (ip.src, sport, ip.dst, dport, ip.p)
        rkey = (ip.dst, dport, ip.src, sport, ip.p)
        entry = flows.get(key) or flows.get(rkey)
        if entry is None:
            entry = flows[key] = [ts, ts, 0, 0]
        entry[1] = ts
        entry[2] += 1
        entry[3] += len(ip)
        if isinstance(l4, dpkt.udp.UDP) and 53 in (sport, dport):
            try:
                dns = dpkt.dns.DNS(l4.data)
                records += bool(dns.qd and dns.qd[0].name)
            except (dpkt.UnpackError, IndexError):
                pass
        elif isinstance(l4, dpkt.tcp.TCP) and l4.data:
            data = l4.data
            if data[:4] in (b"GET ", b"POST", b"HEAD", b"PUT "):
                try:
                    req = dpkt.http.Request(data)
                    records += bool(req.headers.get("host"))
                except (dpkt.UnpackError, IndexError):
                    pass
            elif data[:1] == b"\x16":
                try:
                    rec = dpkt.ssl.TLSRecord(data)
                    hs = dpkt.ssl.TLSHandshake(rec.data)
                    if isinstance(hs.data, dpkt.ssl.TLSClientHello):
                        for kind, value in hs.data.extensions:
                            if kind == 0:
                                records += 1
                except (dpkt.NeedData, dpkt.UnpackError, IndexError, ValueError):
                    pass
            elif data[:4] == b"SSH-":
                records += 1
print(packets, len(flows) + records)
"""

TSHARK_FIELDS = ["frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport",
                 "udp.srcport", "udp.dstport", "dns.qry.name", "http.host", "http.request.uri",
                 "tls.handshake.extensions_server_name", "ssh.protocol"]


def measure(cmd: list[str], keep_output: bool = True) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MiB, stdout) of one child process.

    A child's peak RSS on Linux starts from this process's size at fork, so large
    outputs (tshark's) go to /dev/null instead of being read back here."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out if keep_output else subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read(4096).decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[0]} failed (status {status})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def capture(directory: Path, packets: int) -> Path:
    path = directory / f"mix-{packets}-seed7.pcap"
    if not path.exists():
        print(f"writing {path} ...", file=sys.stderr)
        tmp = path.with_suffix(".part")
        # in a child process: on Linux a child's peak RSS starts from its parent's
        # size at fork, so this process must stay small for the RSS figures to hold
        subprocess.run([sys.executable, str(BENCH / "pcap_mix.py"), str(tmp),
                        "--packets", str(packets)], check=True, stdout=subprocess.DEVNULL)
        tmp.rename(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "govsoc-bench")
    parser.add_argument("--no-size-check", action="store_true",
                        help="skip the run on a capture twice as large")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = capture(args.dir, args.packets)
    size_mib = path.stat().st_size / 2**20

    tools: dict[str, list[str]] = {
        "govsoc": [sys.executable, "-c", GOVSOC, str(path), str(REPO)],
        "dpkt": [sys.executable, "-c", DPKT, str(path)],
    }
    tshark = shutil.which("tshark")
    if tshark:
        fields = [x for f in TSHARK_FIELDS for x in ("-e", f)]
        tools["tshark"] = [tshark, "-n", "-r", str(path), "-T", "fields", *fields]
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in tools}
    outputs: dict[str, str] = {}
    for _ in range(args.repeat):
        for name, cmd in tools.items():  # interleaved, so load changes hit every tool
            wall, cpu, rss, out = measure(cmd, keep_output=name != "tshark")
            results[name].append((wall, cpu, rss))
            outputs[name] = out
    print(f"capture: {path.name}, {int(outputs['govsoc'].split()[0]):,} packets, "
          f"{size_mib:.0f} MiB; "
          f"medians of {args.repeat} runs")
    print(f"{'tool':<8} {'pkt/s (wall)':>13} {'pkt/s (CPU)':>12} {'peak RSS MiB':>13}  output")
    counted = int(outputs["govsoc"].split()[0])  # packets in the file, as read
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = statistics.median(r[2] for r in runs)
        out = outputs[name]
        summary = ("12 fields a packet, to /dev/null" if name == "tshark"
                   else " ".join(out.split()[:2]) + " (packets, records)")
        print(f"{name:<8} {counted / wall:>13,.0f} {counted / cpu:>12,.0f} "
              f"{rss:>13.0f}  {summary}")
    if not args.no_size_check:
        big = capture(args.dir, args.packets * 2)
        wall, cpu, rss, out = measure([sys.executable, "-c", GOVSOC, str(big), str(REPO)])
        print(f"govsoc on {args.packets * 2:,} packets: {args.packets * 2 / cpu:,.0f} pkt/s "
              f"(CPU), peak RSS {rss:.0f} MiB")
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(peak RSS of this driver, a floor for every child: {floor:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
