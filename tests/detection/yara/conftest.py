"""Fixtures for the YARA tests: rule directories written by the tests and compiled rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from detection.yara.compiler import builtin_rules_dir, compile_rules
from detection.yara.scanner import ScanLimits, YaraScanner


def write_rules(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def builtin_compiled(tmp_path_factory):
    return compile_rules([builtin_rules_dir()], tmp_path_factory.mktemp("yara-cache"))


@pytest.fixture
def make_scanner(tmp_path):
    """A scanner over rules given as text (one file per entry)."""

    def make(rules: dict[str, str], **limits) -> YaraScanner:
        directory = tmp_path / "rules"
        for name, text in rules.items():
            write_rules(directory, name, text)
        return YaraScanner(compile_rules([directory], tmp_path / "cache"), ScanLimits(**limits))

    return make
