"""Shared fixtures: the third-party corpus, temporary data dirs, configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def corpus_root() -> Path:
    """Where the third-party corpus lives: $GOVSOC_CORPUS or ../shared/corpus."""
    env = os.environ.get("GOVSOC_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def corpus_path(*parts: str) -> Path:
    """A path inside the corpus; skips the test with the reason when it is absent."""
    path = corpus_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus not available: {path} (set GOVSOC_CORPUS to the shared corpus)")
    return path


@pytest.fixture
def corpus() -> Path:
    """The corpus root (the test is skipped when the corpus is absent)."""
    return corpus_path()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "govsoc-data"
    path.mkdir()
    return path


@pytest.fixture
def config(data_dir: Path):
    from govsoc.config import load_config

    return load_config(None, data_dir=data_dir, env={})


@pytest.fixture
def artifacts() -> Path:
    """Directory for screenshots and other test artefacts kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_sessionfinish(session, exitstatus):
    """Clusters the suite started are stopped when it ends (none are left running)."""
    import sys

    cluster = sys.modules.get("tests.cluster")
    if cluster is not None:
        cluster.stop_started_clusters()
