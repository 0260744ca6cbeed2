"""Enrich observables: which asset (owner, unit, system, security level) an IP or host
is, and whether it is on a local threat-intelligence list.

The asset inventory is a YAML list (or a CSV with the same columns) of assets::

    - name: portal-web-01
      ips: [10.10.1.15, 203.0.113.10]
      hostnames: [portal.example.gov.vn]
      owner: Nguyễn Văn A
      unit: Trung tâm Tích hợp dữ liệu
      system: Cổng thông tin điện tử tỉnh
      security_level: 3

A threat-intelligence list is a text file, one indicator a line (IP, CIDR,
domain, URL or hash), optionally followed by ``,label``; ``#`` starts a comment.
"""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from govsoc.errors import ActionError
from playbooks.actions.base import Action, ActionContext
from playbooks.settings import section


def load_inventory(path: str | Path) -> list[dict[str, Any]]:
    """Assets from a YAML list or a CSV file (``ips``/``hostnames`` split on ``;``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ActionError("enrich_observables", f"cannot read the inventory {path}: {exc}") \
            from None
    if path.suffix.lower() == ".csv":
        rows: list[dict[str, Any]] = []
        for row in csv.DictReader(text.splitlines()):
            asset: dict[str, Any] = dict(row)
            for key in ("ips", "hostnames"):
                asset[key] = [v.strip() for v in str(row.get(key) or "").split(";") if v.strip()]
            rows.append(asset)
        return rows
    try:
        data = yaml.safe_load(text) or []
    except yaml.YAMLError as exc:
        raise ActionError("enrich_observables", f"{path}: invalid YAML: {exc}") from None
    if isinstance(data, dict):
        data = data.get("assets", [])
    if not isinstance(data, list):
        raise ActionError("enrich_observables", f"{path}: expected a list of assets")
    return [a for a in data if isinstance(a, dict)]


@dataclass
class IntelList:
    name: str
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = \
        field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)


def load_intel(path: str | Path) -> IntelList:
    path = Path(path)
    intel = IntelList(name=path.stem)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ActionError("enrich_observables", f"cannot read the intel list {path}: {exc}") \
            from None
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        indicator, _, label = line.partition(",")
        indicator = indicator.strip()
        try:
            intel.networks.append((ipaddress.ip_network(indicator, strict=False), label.strip()))
        except ValueError:
            intel.values[indicator.lower()] = label.strip()
    return intel


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _domain_hits(value: str, intel: IntelList) -> str | None:
    """A domain is listed when it or any parent domain is (evil.example covers a.evil.example)."""
    labels = value.lower().rstrip(".").split(".")
    for i in range(len(labels) - 1):
        candidate = ".".join(labels[i:])
        if candidate in intel.values:
            return intel.values[candidate]
    return None


def normalise_observables(value: Any) -> list[dict[str, str]]:
    """``{"ip": [...], "domain": [...]}`` or ``[{"type":..., "value":...}]`` to a list."""
    out: list[dict[str, str]] = []
    if isinstance(value, dict):
        for kind, items in value.items():
            for item in [items] if isinstance(items, str) else (items or []):
                out.append({"type": str(kind), "value": str(item)})
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and "value" in item:
                out.append({"type": str(item.get("type", "")), "value": str(item["value"])})
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in out:
        key = (item["type"], item["value"])
        if item["value"] and key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


class EnrichObservables(Action):
    name = "enrich_observables"
    description = ("Look observables up in the asset inventory (playbooks.inventory.path) and "
                   "the local threat-intelligence lists (playbooks.intel.paths).")
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["observables"],
        "properties": {"observables": {"type": ["object", "array"]}},
    }

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        # a pure lookup: the dry run does the real thing
        return self.run(params, ctx)

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        inventory_path = section(ctx.config, "playbooks.inventory").get("path")
        assets = load_inventory(inventory_path) if inventory_path else []
        intel = [load_intel(p) for p in section(ctx.config, "playbooks.intel").get("paths", [])]
        results = []
        for item in normalise_observables(params["observables"]):
            kind, value = item["type"], item["value"]
            entry: dict[str, Any] = {"type": kind, "value": value, "asset": None, "intel": []}
            address = _ip(value) if kind in ("ip", "host") else None
            for asset in assets:
                ips = [str(i) for i in asset.get("ips", []) or []]
                names = [str(h).lower() for h in asset.get("hostnames", []) or []]
                name = str(asset.get("name", "")).lower()
                if (address is not None and str(address) in ips) or \
                        value.lower() in names or value.lower() == name:
                    entry["asset"] = {k: asset.get(k) for k in (
                        "name", "owner", "unit", "system", "security_level", "criticality")
                        if asset.get(k) is not None}
                    break
            for lst in intel:
                label: str | None = None
                if address is not None:
                    for network, net_label in lst.networks:
                        if address.version == network.version and address in network:
                            label = net_label or "listed"
                            break
                elif kind in ("domain", "url", "host"):
                    host = value.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
                    label = _domain_hits(host, lst)
                    if label is not None:
                        label = label or "listed"
                elif value.lower() in lst.values:
                    label = lst.values[value.lower()] or "listed"
                if label is not None:
                    entry["intel"].append({"list": lst.name, "label": label})
            results.append(entry)
        return {
            "observables": results,
            "known_assets": sum(1 for r in results if r["asset"]),
            "intel_hits": sum(1 for r in results if r["intel"]),
            "malicious": sorted({r["value"] for r in results if r["intel"]}),
        }
