"""A real OpenSearch / Elasticsearch cluster on loopback for the test suite.

``ensure_cluster(engine, nodes, port)`` starts one through ``deploy/search-cluster``
unless one of that engine already answers on that port, and returns its URL.
``stop_cluster(...)`` stops a cluster that was started from here. When the machine
cannot run one (no java, no mvn, no curl, jars not fetchable, engine unavailable)
``ClusterUnavailable`` is raised; tests turn it into a skip::

    try:
        url = ensure_cluster("opensearch")
    except ClusterUnavailable as exc:
        pytest.skip(exc.reason)

Ports (http; transport is http + 100) default to 19200 for OpenSearch and 19400
for Elasticsearch so that a developer's own cluster on 9200 is left alone; they can
be changed with GOVSOC_TEST_OPENSEARCH_PORT / GOVSOC_TEST_ELASTICSEARCH_PORT.
State (pid files, logs, data) goes to ``govsoc-data/test-cluster/<engine>-<nodes>n-<port>``
under the repository, or under $GOVSOC_TEST_CLUSTER_DIR.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "search-cluster"
ENGINES = ("opensearch", "elasticsearch")
DEFAULT_PORTS = {"opensearch": 19200, "elasticsearch": 19400}

# exit codes of deploy/search-cluster that mean "this machine cannot run it"
_UNAVAILABLE_CODES = {3: "engine not available", 4: "tool missing", 5: "jars could not be fetched"}


class ClusterUnavailable(Exception):
    """The cluster cannot be run here; ``reason`` says why (use it for pytest.skip)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClusterStartError(RuntimeError):
    """The tools are there but the cluster did not come up (a real failure)."""


def default_port(engine: str) -> int:
    _check_engine(engine)
    env = os.environ.get(f"GOVSOC_TEST_{engine.upper()}_PORT")
    return int(env) if env else DEFAULT_PORTS[engine]


def state_dir(engine: str, nodes: int = 1, port: int | None = None) -> Path:
    """Where the script keeps pid files, logs and data of this cluster."""
    port = port or default_port(engine)
    base = os.environ.get("GOVSOC_TEST_CLUSTER_DIR")
    root = Path(base) if base else REPO / "govsoc-data" / "test-cluster"
    return root / f"{engine}-{nodes}n-{port}"


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")


def _check_tools() -> None:
    for tool in ("java", "mvn", "curl"):
        if shutil.which(tool) is None:
            raise ClusterUnavailable(f"{tool} not found on PATH: cannot run a search cluster")
    if not SCRIPT.exists():
        raise ClusterUnavailable(f"{SCRIPT} is missing")


def _get_json(url: str, timeout: float = 3.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def running_engine(url: str) -> str | None:
    """'opensearch' / 'elasticsearch' for what answers at url, None when nothing does."""
    info = _get_json(url + "/")
    if not info or "version" not in info:
        # an Elasticsearch node without a root handler still has cluster health
        return None if _get_json(url + "/_cluster/health") is None else "unknown"
    if info["version"].get("distribution") == "opensearch":
        return "opensearch"
    return "elasticsearch"


def _run(
    args: list[str], engine: str, nodes: int, port: int, timeout: float
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["GOVSOC_CLUSTER_DIR"] = str(state_dir(engine, nodes, port))
    try:
        return _subprocess_run(args, env, timeout)
    except subprocess.TimeoutExpired as exc:
        raise ClusterStartError(
            f"deploy/search-cluster {' '.join(args)}: no answer in {timeout}s"
        ) from exc


def _subprocess_run(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ensure_cluster(
    engine: str,
    nodes: int = 1,
    port: int | None = None,
    *,
    heap: str = "1g",
    fresh: bool = False,
    timeout: float = 600.0,
) -> str:
    """Start (or reuse) a cluster and return its URL, e.g. ``http://127.0.0.1:19200``.

    A cluster of the same engine already answering on ``port`` with at least
    ``nodes`` nodes is reused as it is. ``fresh`` wipes the data of a cluster that
    this call starts (not of one it reuses).
    """
    _check_engine(engine)
    port = port or default_port(engine)
    url = f"http://127.0.0.1:{port}"

    found = running_engine(url)
    if found is not None:
        health = _get_json(url + "/_cluster/health") or {}
        if found == engine and health.get("number_of_nodes", 0) >= nodes:
            return url
        if not (state_dir(engine, nodes, port) / "cluster.env").exists():
            raise ClusterUnavailable(
                f"port {port} is taken by something else ({found}, "
                f"{health.get('number_of_nodes')} node(s)); wanted {engine} with {nodes} node(s)"
            )

    _check_tools()
    with _start_lock(port):
        # another process may have started it while this one waited for the lock
        if running_engine(url) == engine:
            health = _get_json(url + "/_cluster/health") or {}
            if health.get("number_of_nodes", 0) >= nodes:
                return url
        return _start(engine, nodes, port, heap, fresh, timeout)


@contextlib.contextmanager
def _start_lock(port: int):
    """Serialises starts of a cluster on one port by several test processes (xdist, or
    two checkouts tested at once): the lock is per port, machine-wide, as the port is."""
    lock = Path(tempfile.gettempdir()) / f"govsoc-search-cluster-{port}.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _start(engine: str, nodes: int, port: int, heap: str, fresh: bool, timeout: float) -> str:
    args = ["start", "--engine", engine, "--nodes", str(nodes), "--port", str(port), "--heap", heap]
    if fresh:
        args.append("--fresh")
    args += ["--timeout", str(int(max(60, timeout - 60)))]
    proc = _run(args, engine, nodes, port, timeout)
    if proc.returncode in _UNAVAILABLE_CODES:
        raise ClusterUnavailable(
            f"{engine}: {_UNAVAILABLE_CODES[proc.returncode]}: {proc.stderr.strip()[-2000:]}"
        )
    if proc.returncode != 0:
        raise _failed(args, proc)
    STARTED.add((engine, nodes, port))
    return proc.stdout.strip().splitlines()[-1]


#: Clusters this process started; the suite stops them when it ends (tests/conftest.py).
STARTED: set[tuple[str, int, int]] = set()


def stop_started_clusters() -> None:
    """Stop every cluster this process started and did not stop."""
    for engine, nodes, port in sorted(STARTED):
        try:
            stop_cluster(engine, nodes, port)
        except Exception as exc:  # reported; the others still stop
            print(f"stopping {engine} ({nodes} node(s), port {port}) failed: {exc}")
    STARTED.clear()


def stop_cluster(
    engine: str, nodes: int = 1, port: int | None = None, *, timeout: float = 120.0
) -> None:
    """Stop the cluster that ensure_cluster started with these arguments (no-op when none)."""
    _check_engine(engine)
    port = port or default_port(engine)
    if not (state_dir(engine, nodes, port) / "cluster.env").exists():
        return
    STARTED.discard((engine, nodes, port))
    proc = _run(["stop"], engine, nodes, port, timeout)
    if proc.returncode != 0:
        raise _failed(["stop"], proc)


def cluster_command(
    engine: str, nodes: int, port: int | None, *args: str, timeout: float = 300.0
) -> str:
    """Run another script command (``kill-node 2``, ``restart-node 2``, ``status``)."""
    _check_engine(engine)
    port = port or default_port(engine)
    proc = _run(list(args), engine, nodes, port, timeout)
    if proc.returncode != 0:
        raise _failed(list(args), proc)
    return proc.stdout


def _failed(args: list[str], proc: subprocess.CompletedProcess) -> ClusterStartError:
    cmd = " ".join(["deploy/search-cluster", *args])
    return ClusterStartError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
