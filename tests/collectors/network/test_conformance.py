"""Conformance with Suricata's and Zeek's own results on the corpus captures.

The full comparison is ``bench/conformance_pcap.py``; it runs in a few seconds,
so the test runs all of it and holds every protocol to the 98% goal.
"""

from __future__ import annotations

import importlib.util
import io
import sys

import pytest

from tests.conftest import REPO, corpus_path

pytestmark = pytest.mark.corpus


def _conformance():
    spec = importlib.util.spec_from_file_location("conformance_pcap",
                                                  REPO / "bench" / "conformance_pcap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_agreement_with_suricata_and_zeek_per_protocol():
    corpus = corpus_path()
    corpus_path("pcaps", "suricata-verify")
    module = _conformance()
    report = module.run(str(corpus))
    table = report.table()
    out = io.StringIO()
    module.print_report(report, details=True, out=out)
    print(out.getvalue())
    assert report.captures >= 60
    total_ok = sum(ok for ok, _n, _oos in table.values())
    total = sum(n for _ok, n, _oos in table.values())
    assert total >= 250
    assert total_ok / total >= 0.98, out.getvalue()
    for proto in ("dns", "http", "tls", "ssh", "quic", "conn", "conn_state"):
        ok, n, _ = table[proto]
        assert n and ok / n >= 0.98, f"{proto}: {ok}/{n}\n{out.getvalue()}"
    # QUIC handshakes are decrypted: Zeek's quic.log and ssl.log rows and Suricata's
    # quic checks are all compared, none is left out of scope
    assert table["quic"][1] >= 20
    assert not [o for o in report.outcomes if o.out_of_scope], out.getvalue()
    quic_tls = [o for o in report.outcomes if o.protocol == "tls" and "quic" in o.capture]
    assert len(quic_tls) == 3 and all(o.agreed for o in quic_tls)
