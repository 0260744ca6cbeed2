"""The compiled accelerators (extension modules built from the crates in ``native/``).

Some collectors have a second, compiled path for their hottest loop: the same
events, field for field, as the pure-Python path beside it, which stays the
reference (tests hold the two to each other over the corpora). The extensions
are optional: where one is not installed (no Rust toolchain on the machine), or
``GOVSOC_NATIVE=0`` is set, the collector takes its Python path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: The extension modules, by the collector they accelerate.
MODULES = {"evtx": "govsoc_evtx", "weblog": "govsoc_weblog"}


def enabled() -> bool:
    """False when ``GOVSOC_NATIVE`` turns the compiled paths off."""
    return os.environ.get("GOVSOC_NATIVE", "1").strip().lower() not in (
        "0", "false", "no", "off")


def native_module(collector: str) -> ModuleType | None:
    """The extension module accelerating ``collector`` (a key of :data:`MODULES`),
    or None when the Python path is to be used."""
    if not enabled():
        return None
    try:
        return importlib.import_module(MODULES[collector])
    except ImportError:
        return None
