"""The one configuration loader: ``govsoc.yml``, ``GOVSOC_*`` overrides, defaults.

With no file at all everything works: the data lives in ``./govsoc-data`` with the
embedded SQLite store. A file only needs the keys it changes. Precedence, lowest
to highest: defaults, the YAML file, ``GOVSOC_*`` environment variables, command
line options (``--data-dir``).

Environment variables are the dotted key upper-cased with dots as underscores:
``store.engine`` is ``GOVSOC_STORE_ENGINE``, ``data_dir`` is ``GOVSOC_DATA_DIR``.
Only scalar keys have one.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from govsoc.errors import ConfigError

CONFIG_FILE_NAME = "govsoc.yml"

DEFAULTS: dict[str, Any] = {
    "data_dir": "./govsoc-data",
    "log": {"level": "info", "format": "text", "file": None},
    "store": {
        "engine": "sqlite",
        # sqlite: database file; relative paths are under data_dir
        "path": "govsoc.db",
        # elasticsearch / opensearch
        "url": "http://127.0.0.1:9200",
        "username": None,
        "password": None,
        "api_key": None,
        "ca_certs": None,
        "verify_certs": True,
        "index_prefix": "govsoc",
        "timeout": 30,
        "spool_dir": "spool",
        "spool_max_mb": 1024,
        "retention_days": 90,
        # event indices per dataset and "month", "day" or "year"; shards/replicas of every index
        "index_period": "month",
        "shards": 1,
        "replicas": 1,
        # "auto": the engine's own (1 s while an index is searched, none while it is
        # only written: bulk ingest makes fewer, larger segments)
        "refresh_interval": "auto",
    },
    "ingest": {"batch_size": 2000, "max_line_bytes": 1048576},
    "detection": {
        # "builtin" means the rules shipped with govsoc
        "sigma_rules": ["builtin"],
        "yara_rules": ["builtin"],
        "alert_window_seconds": 3600,
        "enabled": True,
    },
    "console": {
        "host": "127.0.0.1",
        "port": 8080,
        "secret_key": None,
        "secure_cookies": False,
        "default_language": "vi",
        "timezone": "Asia/Ho_Chi_Minh",
        "threads": 8,
    },
    "inputs": {},
    "playbooks": {"dirs": ["builtin"], "auto_run": True, "outputs_dir": "playbook-outputs"},
}

_SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "data_dir": {"type": "string", "minLength": 1},
        "log": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "level": {"enum": ["debug", "info", "warning", "error", "critical"]},
                "format": {"enum": ["text", "json"]},
                "file": {"type": ["string", "null"]},
            },
        },
        "store": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "engine": {"enum": ["sqlite", "elasticsearch", "opensearch"]},
                "path": {"type": "string", "minLength": 1},
                "url": {"anyOf": [{"type": "string"}, _STRINGS]},
                "username": {"type": ["string", "null"]},
                "password": {"type": ["string", "null"]},
                "api_key": {"type": ["string", "null"]},
                "ca_certs": {"type": ["string", "null"]},
                "verify_certs": {"type": "boolean"},
                "index_prefix": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                "spool_dir": {"type": "string"},
                "spool_max_mb": {"type": "integer", "minimum": 1},
                "retention_days": {"type": "integer", "minimum": 1},
                "index_period": {"enum": ["day", "month", "year"]},
                "shards": {"type": "integer", "minimum": 1, "maximum": 64},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 8},
                "refresh_interval": {"type": "string",
                                     "pattern": "^(auto|-1|[0-9]+(ms|s|m))$"},
            },
        },
        "ingest": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000},
                "max_line_bytes": {"type": "integer", "minimum": 1024},
            },
        },
        "detection": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "sigma_rules": _STRINGS,
                "yara_rules": _STRINGS,
                "alert_window_seconds": {"type": "integer", "minimum": 0},
                "enabled": {"type": "boolean"},
            },
        },
        "console": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "secret_key": {"type": ["string", "null"]},
                "secure_cookies": {"type": "boolean"},
                "default_language": {"enum": ["vi", "en"]},
                "timezone": {"type": "string"},
                "threads": {"type": "integer", "minimum": 1, "maximum": 256},
            },
        },
        # each input kind adds its own schema (see register_section)
        "inputs": {"type": "object"},
        "playbooks": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "dirs": _STRINGS,
                "auto_run": {"type": "boolean"},
                "outputs_dir": {"type": "string"},
            },
        },
    },
}


def register_section(path: str, schema: Mapping[str, Any], defaults: Any) -> None:
    """Add a configuration section (``"inputs.syslog"``) with its schema and defaults.

    Components call this at import time so that one loader validates every key.
    """
    parts = path.split(".")
    node_schema = SCHEMA
    node_defaults = DEFAULTS
    for part in parts[:-1]:
        node_schema = node_schema["properties"][part]
        node_defaults = node_defaults.setdefault(part, {})
    node_schema.setdefault("properties", {})[parts[-1]] = dict(schema)
    if node_schema.get("type") == "object" and "additionalProperties" not in node_schema:
        node_schema["additionalProperties"] = False
    node_defaults[parts[-1]] = copy.deepcopy(defaults)


@dataclass
class Config:
    """The merged configuration. ``get("store.engine")`` reads any key."""

    values: dict[str, Any]
    source: str | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.values
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, key: str) -> dict[str, Any]:
        value = self.get(key, {})
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"]).expanduser()

    def data_path(self, relative: str) -> Path:
        """A path from the configuration, resolved under the data dir when relative."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def store_engine(self) -> str:
        return str(self.values["store"]["engine"])

    @property
    def sqlite_path(self) -> Path:
        return self.data_path(self.values["store"]["path"])


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _scalar_keys(schema: Mapping[str, Any], prefix: str = "") -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for name, sub in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        if sub.get("type") == "object" and "properties" in sub:
            out.update(_scalar_keys(sub, key + "."))
        elif sub.get("type") != "object":
            out[key] = sub
    return out


def _env_name(key: str) -> str:
    return "GOVSOC_" + key.upper().replace(".", "_")


def _coerce(text: str, schema: Mapping[str, Any]) -> Any:
    """Environment values are strings: read them as YAML scalars (``true``, ``9200``)."""
    if schema.get("type") == "string" or "enum" in schema:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if schema.get("type") == "array" and isinstance(value, str):
        return [v for v in (s.strip() for s in value.split(",")) if v]
    return value


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [p for p in error.instance if p not in allowed] if isinstance(
            error.instance, Mapping) else []
        unknown = extra[0] if extra else "?"
        full = f"{key}.{unknown}" if error.absolute_path else str(unknown)
        close = difflib.get_close_matches(str(unknown), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else \
            f"; known keys: {', '.join(sorted(allowed))}"
        return full, f"unknown key{hint}"
    if error.validator == "enum":
        return key, f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "type":
        return key, f"{error.instance!r} is not of type {error.validator_value}"
    return key, error.message


def load_config(path: str | os.PathLike[str] | None = None, *,
                data_dir: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration.

    ``path`` None looks for ``$GOVSOC_CONFIG``, then ``./govsoc.yml``; neither is
    required. Raises :class:`ConfigError` naming the key and the reason.
    """
    env = os.environ if env is None else env
    values = copy.deepcopy(DEFAULTS)
    source: str | None = None
    if path is None:
        candidate = env.get("GOVSOC_CONFIG")
        if candidate:
            path = candidate
        elif Path(CONFIG_FILE_NAME).is_file():
            path = CONFIG_FILE_NAME
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("(file)", "the configuration file does not exist",
                              source) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("(file)", f"cannot read it: {exc}", source) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise ConfigError("(yaml)", f"{where}{getattr(exc, 'problem', exc)}",
                              source) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError("(top level)", "the file must hold a mapping of keys", source)
        _merge(values, loaded)
    overrides: dict[str, str] = {}
    for key, schema in _scalar_keys(SCHEMA).items():
        name = _env_name(key)
        if name in env:
            overrides[name] = env[name]
            node = values
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = _coerce(env[name], schema)
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        key, reason = _describe(errors[0])
        env_name = _env_name(key)
        origin = f"environment {env_name}" if env_name in overrides else source
        raise ConfigError(key, reason, origin)
    return Config(values=values, source=source, env_overrides=overrides)


def default_config_text() -> str:
    """The defaults as a commented YAML document (``govsoc config show --defaults``)."""
    return yaml.safe_dump(DEFAULTS, sort_keys=False, allow_unicode=True)
