"""Hunting on the cluster agrees with the streaming matcher over the EVTX corpus.

Events of every file of ``evtx-attack-samples`` (read with the EVTX collector)
are stored in the search-cluster store; SigmaHQ's Windows rules run
once through the streaming matcher and once as query DSL on the cluster
(``detection.sigma.hunt.hunt_store`` → pySigma's Lucene backend of each engine with
the Sigma engine's field mapping). The (event, rule) pairs must be the same, except
a match inside a value longer than the keyword limit, which the cluster cannot
search. The cluster runs one query per rule, so it gets the rules that fire on the
sample and twenty that do not.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import corpus_path
from tests.store.elastic_support import ENGINES, cluster_url, new_prefix

pytestmark = [pytest.mark.cluster, pytest.mark.corpus, pytest.mark.slow]

#: The whole comparison runs on OpenSearch in every run; GOVSOC_RUN_CLUSTER_HUNT=1 adds
#: Elasticsearch (the same backend family; about five minutes more).
HUNT_ENGINES = [e for e in ENGINES
                if e == "opensearch" or os.environ.get("GOVSOC_RUN_CLUSTER_HUNT")]


def _long_values(event: dict) -> bool:
    """True when the event has a value the cluster does not index for search (longer
    than the keyword limit: Lucene terms are capped at 32,766 bytes)."""
    from store.elastic.mappings import KEYWORD_IGNORE_ABOVE

    data = (event.get("winlog") or {}).get("event_data") or {}
    return any(len(str(v)) > KEYWORD_IGNORE_ABOVE for v in data.values())


@pytest.fixture(scope="module")
def case():
    from collectors.evtx import read_evtx
    from detection.sigma.engine import SigmaDetector
    from detection.sigma.ruleset import load_ruleset

    samples = corpus_path("evtx-attack-samples")
    rules_root = corpus_path("sigma", "rules", "windows")
    files = sorted(samples.rglob("*.evtx"))
    events = [e for f in files for b in read_evtx(f) for e in b.events]
    rules = sorted(rules_root.rglob("*.yml"))
    detector = SigmaDetector(load_ruleset(rules))
    fired = sorted({detector.rules[n].path for _, hits in detector.iter_matches(events)
                    for n in hits})
    quiet = [str(r) for r in rules if str(r) not in set(fired)][::97][:20]
    return files, events, sorted(fired) + quiet


@pytest.mark.timeout(900)
@pytest.mark.parametrize("engine", HUNT_ENGINES)
def test_cluster_hunt_equals_streaming_over_evtx(case, engine):
    from detection.sigma.engine import SigmaDetector
    from detection.sigma.hunt import hunt_store
    from detection.sigma.ruleset import load_ruleset
    from store.elastic import connect_for_tests

    files, events, rule_paths = case
    detector = SigmaDetector(load_ruleset(rule_paths))
    streamed = sorted({(e["event"]["id"], detector.rules[n].rule_id)
                       for e, hits in detector.iter_matches(events) for n in hits})
    assert len(files) > 200 and len(events) > 3000 and len(streamed) > 50
    # the samples span years: yearly indices keep the shard count small on a test node
    store = connect_for_tests(engine, cluster_url(engine), prefix=new_prefix(),
                              index_period="year")
    try:
        result = store.insert_events(events)
        assert result.rejected == 0
        store.refresh()
        hunted = sorted({(d.event["event"]["id"], d.rule_id) for d in hunt_store(detector, store)})
        missing = sorted(set(streamed) - set(hunted))
        extra = sorted(set(hunted) - set(streamed))
        # the one known limit: a match inside a value longer than the keyword limit
        # (e.g. a 10,000-character nTSecurityDescriptor in event 5136) is not searchable
        long_ids = {e["event"]["id"] for e in events if _long_values(e)}
        unsearchable = [pair for pair in missing if pair[0] in long_ids]
        assert len(unsearchable) <= 2
        missing = [pair for pair in missing if pair[0] not in long_ids]
        assert (missing[:10], extra[:10]) == ([], []), (len(missing), len(extra))
    finally:
        store.drop_all()
        store.close()
