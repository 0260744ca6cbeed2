"""MITRE ATT&CK references from Sigma-style tags (``attack.t1059.001``, ``attack.execution``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TECHNIQUE = re.compile(r"^attack\.(t\d{4})(?:\.(\d{3}))?$", re.IGNORECASE)
_GROUP_OR_SOFTWARE = re.compile(r"^attack\.([gs]\d{4})$", re.IGNORECASE)
_TACTIC = re.compile(r"^attack\.([a-z_-]+)$", re.IGNORECASE)
BASE = "https://attack.mitre.org"


@dataclass(frozen=True)
class AttackRef:
    kind: str  # technique, tactic, group, software
    label: str
    url: str | None


def attack_links(tags: list[str]) -> list[AttackRef]:
    refs: list[AttackRef] = []
    for tag in tags:
        if m := _TECHNIQUE.match(tag):
            tech, sub = m.group(1).upper(), m.group(2)
            label = f"{tech}.{sub}" if sub else tech
            url = f"{BASE}/techniques/{tech}/{sub}/" if sub else f"{BASE}/techniques/{tech}/"
            refs.append(AttackRef("technique", label, url))
        elif m := _GROUP_OR_SOFTWARE.match(tag):
            ident = m.group(1).upper()
            kind = "groups" if ident.startswith("G") else "software"
            refs.append(AttackRef(kind, ident, f"{BASE}/{kind}/{ident}/"))
        elif m := _TACTIC.match(tag):
            refs.append(AttackRef("tactic", m.group(1).replace("_", " ").replace("-", " "),
                                  None))
    return refs
