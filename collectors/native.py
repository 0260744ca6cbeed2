"""The compiled accelerators (the ``govsoc_native`` extension built from ``native/``).

Some collectors have a second, compiled path for their hottest loop: the same
events, field for field, as the pure-Python path beside it, which stays the
reference (tests hold the two to each other over the corpora). The extension is
optional: where it is not installed (no Rust toolchain on the machine), or
``GOVSOC_NATIVE=0`` is set, every collector takes its Python path.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("GOVSOC_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import govsoc_native
    except ImportError:
        return None
    return govsoc_native


#: The extension module, or None when the Python paths are to be used.
NATIVE: ModuleType | None = _load()
