"""Compiling rule directories: failures reported with file and line and left out,
externals declared, index files skipped, shared private rules resolved, cache."""

from __future__ import annotations

import pytest

from detection.yara.compiler import builtin_rules_dir, compile_rules, is_index_file
from tests.conftest import corpus_path
from tests.detection.yara.conftest import write_rules

GOOD = 'rule good_one { strings: $a = "govsoc-marker" condition: $a }\n'
BROKEN = 'rule broken {\n  strings: $a = "x"\n  condition: $a and $b }\n'
EXTERNALS = ('rule ext_user { condition: filename == "index.php" and extension == ".php" '
             'and filepath != "" and owner != "" and filetype == "PHP" }\n')
COMMON = 'private rule is_special { condition: uint16(0) == 0x5a4d }\n'
USES_COMMON = 'rule needs_common { condition: is_special and filesize < 10 }\n'


def test_bad_file_is_reported_with_line_and_left_out(tmp_path):
    rules = tmp_path / "rules"
    write_rules(rules, "a_good.yar", GOOD)
    write_rules(rules, "b_broken.yar", BROKEN)
    write_rules(rules, "c_ext.yara", EXTERNALS)
    compiled = compile_rules([rules], tmp_path / "cache")
    report = compiled.report
    assert [(s.path.endswith("b_broken.yar"), s.line) for s in report.skipped] == [(True, 3)]
    assert "$b" in report.skipped[0].reason
    assert report.rules == 2
    assert len(report.files) == 2
    names = {r.identifier for r in compiled.load()}
    assert names == {"good_one", "ext_user"}


def test_index_files_are_left_out_and_sibling_definitions_resolved(tmp_path):
    rules = tmp_path / "rules"
    write_rules(rules / "malware", "000_common.yar", COMMON)
    write_rules(rules / "malware", "uses.yar", USES_COMMON)
    write_rules(rules, "index.yar", '/* all */\ninclude "./malware/000_common.yar"\n'
                                    'include "./malware/uses.yar"\n')
    report = compile_rules([rules], tmp_path / "cache").report
    assert report.skipped == []
    assert [p.endswith("index.yar") for p in report.index_files] == [True]
    assert len(report.repaired) == 1 and "uses.yar" in report.repaired[0]
    assert is_index_file(b'include "a.yar"\n// note\n')
    assert not is_index_file(b'include "a.yar"\nrule x { condition: true }\n')


def test_cache_is_keyed_by_content(tmp_path):
    rules = tmp_path / "rules"
    path = write_rules(rules, "a.yar", GOOD)
    first = compile_rules([rules], tmp_path / "cache")
    again = compile_rules([rules], tmp_path / "cache")
    assert not first.report.from_cache and again.report.from_cache
    assert again.report.key == first.report.key and again.report.rules == 1
    path.write_text(GOOD.replace("good_one", "good_two"))
    changed = compile_rules([rules], tmp_path / "cache")
    assert not changed.report.from_cache and changed.report.key != first.report.key
    assert {r.identifier for r in changed.load()} == {"good_two"}


def test_missing_directory_is_an_error(tmp_path):
    from govsoc.errors import RuleError

    with pytest.raises(RuleError, match="no such rule"):
        compile_rules([tmp_path / "absent"])


def test_builtin_rules_compile_cleanly(builtin_compiled):
    report = builtin_compiled.report
    assert report.skipped == [] and report.warnings == []
    assert report.rules >= 15
    assert builtin_rules_dir().is_dir()


@pytest.mark.corpus
def test_real_rule_sets_load_with_externals(tmp_path):
    sigbase = corpus_path("yara", "signature-base", "yara")
    community = corpus_path("yara", "yara-rules")
    report = compile_rules([sigbase, community], tmp_path / "cache").report
    # only the file using the cuckoo module (absent from yara-python) is left out
    assert [(s.path.rsplit("/", 1)[-1], s.line) for s in report.skipped] == [
        ("MALW_AZORULT.yar", 23)]
    assert "sync" in report.skipped[0].reason
    # the ELF rules that use malware/000_common_rules.yar's private rule still load
    assert len(report.repaired) == 7
    assert len(report.index_files) == 12
    # 5,883 + 12,770 upstream rules, minus AZORULT, plus the shared rules compiled again
    assert report.rules >= 18_600
    loaded = {p.rsplit("/", 1)[-1] for p in report.files}
    assert {"yara_mixed_ext_vars.yar", "generic_anomalies.yar",
            "gen_webshells_ext_vars.yar"} <= loaded
