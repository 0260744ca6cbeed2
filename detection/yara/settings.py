"""The ``detection.yara`` configuration section and building a scanner from it.

```yaml
detection:
  yara_rules: [builtin, /opt/signature-base/yara]   # rule directories
  yara:
    max_file_mb: 64        # larger files are counted and not scanned
    timeout_seconds: 60    # per file
    threads: 0             # 0: one per core
    exclude: ["*.log", "node_modules"]
    archives: true         # scan the members of zip/tar uploads (bounded)
    watch:
      paths: [/var/www/portal, /var/www/uploads]
      poll_seconds: 5      # polling fallback period
      settle_seconds: 0.5  # wait for writes to finish before scanning
      inotify: true
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detection.yara.compiler import CompiledRules, RuleCompiler, resolve_rule_dirs
from detection.yara.scanner import ScanLimits, YaraScanner
from govsoc.config import Config, register_section

_STRINGS = {"type": "array", "items": {"type": "string"}}

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "max_file_mb": {"type": "number", "exclusiveMinimum": 0},
        "timeout_seconds": {"type": "integer", "minimum": 1},
        "threads": {"type": "integer", "minimum": 0, "maximum": 64},
        "exclude": _STRINGS,
        "cache_dir": {"type": "string"},
        "archives": {"type": "boolean"},
        "watch": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "paths": _STRINGS,
                "poll_seconds": {"type": "number", "exclusiveMinimum": 0},
                "settle_seconds": {"type": "number", "minimum": 0},
                "inotify": {"type": "boolean"},
            },
        },
    },
}

DEFAULTS: dict[str, Any] = {
    "max_file_mb": 64,
    "timeout_seconds": 60,
    "threads": 0,
    "exclude": [],
    "cache_dir": "yara-cache",
    "archives": True,
    "watch": {"paths": [], "poll_seconds": 5, "settle_seconds": 0.5, "inotify": True},
}

register_section("detection.yara", SCHEMA, DEFAULTS)


def scan_limits(config: Config, **overrides: Any) -> ScanLimits:
    """Scan limits from the configuration; ``overrides`` (not None) win."""
    section = config.section("detection.yara")
    values: dict[str, Any] = {
        "max_file_size": int(float(section.get("max_file_mb", 64)) * 1024 * 1024),
        "timeout": int(section.get("timeout_seconds", 60)),
        "exclude": tuple(section.get("exclude", ())),
        "threads": int(section.get("threads", 0)) or max(2, os.cpu_count() or 2),
    }
    if not section.get("archives", True):
        values["archives"] = None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ScanLimits(**values)


def compile_configured(config: Config, extra: Sequence[str] = (),
                       use_configured: bool = True) -> CompiledRules:
    """Compile the configured rule directories plus ``extra`` ones (cached)."""
    entries = list(config.get("detection.yara_rules", ["builtin"]) if use_configured else [])
    entries += [e for e in extra if e not in entries]
    section = config.section("detection.yara")
    cache = config.data_path(str(section.get("cache_dir", "yara-cache")))
    return RuleCompiler(Path(cache)).compile(resolve_rule_dirs(entries))


def open_scanner(config: Config, extra: Sequence[str] = (), use_configured: bool = True,
                 **overrides: Any) -> YaraScanner:
    """A scanner with the configured rules and limits."""
    return YaraScanner(compile_configured(config, extra, use_configured),
                       scan_limits(config, **overrides))
