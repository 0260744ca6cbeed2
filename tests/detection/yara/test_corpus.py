"""Proof on real data: signature-base plus our rules find the real webshells of
the corpus, and stay quiet on real PHP/JS/HTML/Python/Perl applications installed
on the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detection.yara.compiler import builtin_rules_dir, compile_rules
from detection.yara.scanner import ScanStats, YaraScanner
from tests.conftest import corpus_path

SHELL_SUFFIXES = {".php", ".asp", ".aspx", ".ashx", ".asmx", ".jsp", ".jspx", ".cfm",
                  ".pl", ".cgi"}
BENIGN_SUFFIXES = {".php", ".inc", ".phtml", ".js", ".html", ".htm", ".py", ".pl", ".pm",
                   ".cgi", ".jsp", ".asp", ".aspx", ".cfm", ".tpl", ".twig"}
#: web applications from Debian packages (php-* and the applications' PHP)
WEB_APPS = {"wordpress": "/usr/share/wordpress", "phpmyadmin": "/usr/share/phpmyadmin",
            "roundcube-core": "/usr/share/roundcube"}


@pytest.fixture(scope="module")
def scanner(tmp_path_factory):
    sigbase = corpus_path("yara", "signature-base", "yara")
    compiled = compile_rules([sigbase, builtin_rules_dir()],
                             tmp_path_factory.mktemp("yara-cache"))
    assert compiled.report.skipped == []
    return YaraScanner(compiled)


@pytest.mark.corpus
def test_detection_rate_on_real_webshells(scanner):
    root = corpus_path("webshells", "tennc-webshell")
    shells = sorted(str(p) for p in Path(root).rglob("*")
                    if p.is_file() and p.suffix.lower() in SHELL_SUFFIXES)
    assert len(shells) >= 300
    stats = ScanStats()
    matched = {r.path for r in scanner.scan(shells, stats) if r.matches}
    rate = len(matched) / len(shells)
    assert not stats.skipped
    assert rate >= 0.90, f"detection rate {rate:.1%} ({len(matched)}/{len(shells)})"


def _benign_files(limit_per_root: int) -> list[str]:
    roots = [p for p in WEB_APPS.values() if os.path.isdir(p)]
    missing = [pkg for pkg, p in WEB_APPS.items() if not os.path.isdir(p)]
    if missing:
        pytest.skip(f"benign web applications not installed: apt-get install {' '.join(missing)}")
    import sysconfig

    roots += [sysconfig.get_paths()["stdlib"], "/usr/share/perl5", "/usr/share/javascript"]
    files: list[str] = []
    for root in roots:
        found = []
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.splitext(name)[1].lower() in BENIGN_SUFFIXES and \
                        not os.path.islink(path):
                    found.append(path)
        found.sort()
        # an even sample of each tree keeps the test short
        step = max(1, len(found) // limit_per_root)
        files.extend(found[::step])
    return files


@pytest.mark.corpus
@pytest.mark.slow
def test_false_positives_on_real_benign_code(scanner):
    files = _benign_files(limit_per_root=1500)
    assert len(files) >= 3000
    stats = ScanStats()
    flagged = sorted(f"{r.path}: {[m.rule for m in r.matches]}"
                     for r in scanner.scan(files, stats) if r.matches)
    rate = len(flagged) / len(files)
    assert rate <= 0.001, f"false positives {rate:.3%}: {flagged[:10]}"
