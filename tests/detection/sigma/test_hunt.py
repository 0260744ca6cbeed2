"""Hunting agrees with streaming: over files, over the SQLite store and over a cluster."""

from __future__ import annotations

import pytest

from collectors.evtx import read_evtx
from detection.sigma.engine import SigmaDetector
from detection.sigma.hunt import hunt_files, hunt_store
from detection.sigma.ruleset import load_ruleset
from tests.conftest import corpus_path

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def case():
    """A third of SigmaHQ's process-creation rules and the regression events they match."""
    root = corpus_path("sigma")
    rules = sorted((root / "rules" / "windows" / "process_creation").glob("*.yml"))[::3]
    regression = root / "regression_data" / "rules" / "windows" / "process_creation"
    files = sorted(regression.rglob("*.evtx"))
    detector = SigmaDetector(load_ruleset(rules))
    events = [e for f in files for b in read_evtx(f) for e in b.events]
    # the cluster runs one query per rule: the rules that fire and a few that do not
    fired = {detector.rules[n].path for _, hits in detector.iter_matches(events) for n in hits}
    quiet = [r for r in rules if str(r) not in fired][:5]
    detector.cluster_rules = sorted(fired) + [str(r) for r in quiet]
    # a record found in two files has one id: compare (event, rule) sets
    streamed = sorted({(e["event"]["id"], detector.rules[n].rule_id)
                       for e, hits in detector.iter_matches(events) for n in hits})
    assert len(streamed) > 20
    return detector, files, events, streamed


def pairs(detections):
    return sorted({(d.event["event"]["id"], d.rule_id) for d in detections})


def test_hunt_over_files_equals_streaming(case):
    detector, files, _, streamed = case
    found = list(hunt_files(detector, files))
    assert pairs(found) == streamed
    assert all(d.as_row()["log"]["file"]["path"].endswith(".evtx") for d in found)


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("opensearch",
                                                           marks=pytest.mark.cluster)])
def test_hunt_over_the_store_equals_streaming(case, engine, tmp_path):
    detector, _, events, streamed = case
    if engine == "sqlite":
        from store.sqlite import SQLiteStore

        store = SQLiteStore(tmp_path / "govsoc.db")
    else:
        from tests.store.conftest import _elastic_store

        store = _elastic_store(engine)
        detector = SigmaDetector(load_ruleset(detector.cluster_rules))
        streamed = sorted({(e["event"]["id"], detector.rules[n].rule_id)
                           for e, hits in detector.iter_matches(events) for n in hits})
    try:
        store.insert_events(events)
        if hasattr(store, "refresh"):
            store.refresh()
        assert pairs(hunt_store(detector, store)) == streamed
    finally:
        drop = getattr(store, "drop_all", None)
        if drop is not None:
            drop()
        store.close()


def test_a_rule_with_thousands_of_wildcards_is_not_sent_to_the_cluster_as_it_is(tmp_path):
    from detection.sigma.hunt import MAX_QUERY_WILDCARDS, rule_queries

    hashes = "\n".join(f"      - 'SHA256={n:064x}'" for n in range(MAX_QUERY_WILDCARDS))
    (tmp_path / "many.yml").write_text(f"""
title: Many Hashes
id: 0d9a6b0e-1c53-4b6e-9a31-0c2a2b6f0001
logsource: {{product: windows, category: driver_load}}
detection:
  selection:
    Hashes|contains:
{hashes}
  condition: selection
level: high
""")
    (tmp_path / "few.yml").write_text("""
title: Few Hashes
id: 0d9a6b0e-1c53-4b6e-9a31-0c2a2b6f0002
logsource: {product: windows, category: driver_load}
detection:
  selection:
    Hashes|contains: ['SHA256=ABC', 'MD5=DEF']
  condition: selection
level: high
""")
    detector = SigmaDetector(load_ruleset(sorted(tmp_path.glob("*.yml"))))
    queries = {detector.rules[n].title: q for n, q in rule_queries(detector, "opensearch")}
    many, few = queries["Many Hashes"]["query"]["bool"], queries["Few Hashes"]["query"]["bool"]
    assert many["must"] == [{"match_all": {}}]  # the route alone; the matcher decides
    assert many["filter"] == few["filter"] and many["filter"]  # both keep the route
    assert "abc" in str(few["must"]).lower() and few["must"] != [{"match_all": {}}]


def test_a_keyword_rule_goes_to_the_cluster_as_its_route(tmp_path):
    from detection.sigma.hunt import rule_queries

    (tmp_path / "kw.yml").write_text("""
title: Keyword Only
id: 0d9a6b0e-1c53-4b6e-9a31-0c2a2b6f0003
logsource: {product: windows, service: security}
detection:
  keywords: ['mimikatz', 'sekurlsa']
  condition: keywords
level: high
""")
    detector = SigmaDetector(load_ruleset([tmp_path / "kw.yml"]))
    ((_, query),) = rule_queries(detector, "opensearch")
    assert query["query"]["bool"]["must"] == [{"match_all": {}}]
    assert query["query"]["bool"]["filter"]


def test_a_process_creation_rule_also_asks_for_audit_events_by_their_field_names(tmp_path):
    from detection.sigma.hunt import rule_queries

    (tmp_path / "pc.yml").write_text("""
title: Whoami
id: 0d9a6b0e-1c53-4b6e-9a31-0c2a2b6f0004
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\whoami.exe'
  condition: selection
level: high
""")
    detector = SigmaDetector(load_ruleset([tmp_path / "pc.yml"]))
    ((_, query),) = rule_queries(detector, "opensearch")
    text = str(query)
    assert "winlog.event_data.Image" in text and "winlog.event_data.NewProcessName" in text
    assert "'4688'" in text and "filter" in query["query"]["bool"]
