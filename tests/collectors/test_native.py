"""The compiled accelerators are there wherever they can be built, and can be turned off."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from collectors.native import MODULES, native_module


def _cargo() -> str | None:
    return shutil.which("cargo") or next(
        (str(p) for p in [Path.home() / ".cargo/bin/cargo"] if p.exists()), None)


@pytest.mark.parametrize("collector", sorted(MODULES))
def test_built_where_a_rust_toolchain_exists(collector: str) -> None:
    # without this, a broken build would only show as parity tests skipping
    if _cargo() is None:
        pytest.skip("no Rust toolchain here: the pure-Python paths are used")
    if os.environ.get("GOVSOC_NATIVE") == "0":
        pytest.skip("GOVSOC_NATIVE=0 turns the compiled paths off for this run")
    module = native_module(collector)
    assert module is not None, f"{MODULES[collector]} is not installed: run scripts/build-native"
    assert module.__name__ == MODULES[collector]


def test_turned_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVSOC_NATIVE", "0")
    assert all(native_module(c) is None for c in MODULES)
