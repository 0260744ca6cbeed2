"""``govsoc ingest pcap`` end to end: events stored, repeat ingest idempotent,
bad files dead-lettered while the rest is kept, carved bodies written."""

from __future__ import annotations

import hashlib
import json

from tests.cli.test_cli_foundation import run
from tests.collectors.network import pcapgen
from tests.collectors.network.test_collector import BODY, HTTP_REQ, HTTP_RESP


def test_ingest_pcap_stores_events_and_is_idempotent(tmp_path):
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40000, 80, [(HTTP_REQ, HTTP_RESP)])
    pkts += pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "portal.example.gov",
                                 "192.0.2.10", 77, 1_700_000_010.0)
    capture = pcapgen.write(tmp_path / "mixed.pcap", pkts)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"definitely not a capture")
    carved = tmp_path / "carved"

    res = run(["ingest", "pcap", "--no-detect", "--carve-dir", str(carved), str(capture),
               str(junk)], tmp_path)
    assert res.returncode == 3, res.stderr  # some input rejected, the rest stored
    assert "stored 4  duplicates 0  rejected 1" in res.stdout
    assert "network.http 1" in res.stdout and "network.dns 1" in res.stdout
    assert "unreadable_file 1" in res.stdout
    assert (carved / hashlib.sha256(BODY).hexdigest()).read_bytes() == BODY

    res = run(["ingest", "pcap", "--no-detect", str(capture)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "stored 0  duplicates 4  rejected 0" in res.stdout

    res = run(["search", "--dataset", "network.http", "--format", "jsonl"], tmp_path)
    (event,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert event["url"]["domain"] == "portal.example.gov"
    assert event["event"]["module"] == "network"
