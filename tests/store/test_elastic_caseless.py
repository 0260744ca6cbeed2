"""Field references of Lucene query strings moved to the case-insensitive twins."""

from __future__ import annotations

from store.elastic.caseless import caseless_dsl, caseless_query_string


def test_keyword_fields_move_to_ci_and_values_stay():
    q = r"winlog.event_data.Image:*\\wmic.exe AND winlog.event_data.CommandLine:*\ qfe*"
    assert caseless_query_string(q) == (
        r"winlog.event_data.Image.ci:*\\wmic.exe AND "
        r"winlog.event_data.CommandLine.ci:*\ qfe*")


def test_escaped_colons_quotes_regexes_and_non_keyword_fields_are_kept():
    q = (r'(process.command_line:*c\:\\x\ y:z* OR NOT message:"a b:c") AND '
         r"winlog.event_data.Hashes:/.*MD5=[A-F0-9]{32}.*/ AND source.ip:10.0.0.1 "
         r"AND destination.port:445 AND -host.name:web1")
    assert caseless_query_string(q) == (
        r'(process.command_line.ci:*c\:\\x\ y:z* OR NOT message:"a b:c") AND '
        r"winlog.event_data.Hashes:/.*MD5=[A-F0-9]{32}.*/ AND source.ip:10.0.0.1 "
        r"AND destination.port:445 AND -host.name.ci:web1")


def test_dsl_walk_rewrites_only_query_strings():
    body = {"query": {"bool": {"must": [{"query_string": {"query": "host.name:WEB1"}}],
                               "filter": [{"term": {"host.name": "WEB1"}}]}}}
    out = caseless_dsl(body)
    assert out["query"]["bool"]["must"][0]["query_string"]["query"] == "host.name.ci:WEB1"
    assert out["query"]["bool"]["filter"] == [{"term": {"host.name": "WEB1"}}]
    assert body["query"]["bool"]["must"][0]["query_string"]["query"] == "host.name:WEB1"
