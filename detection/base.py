"""The interface between the ingest pipeline and the detection engines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from govsoc.events import Event
from store.base import NewAlert, Suppression


class Detector(Protocol):
    """Looks at newly stored events and raises alerts."""

    name: str

    def detect(self, events: Sequence[Event]) -> list[NewAlert]:
        """Alerts raised by ``events`` (a batch, in arrival order)."""
        ...

    def flush(self) -> list[NewAlert]:
        """Alerts still held in windowed state, at the end of a finite input."""
        ...

    def set_suppressions(self, suppressions: Sequence[Suppression]) -> None:
        """Replace the suppressions (rule + field=value) the detector honours."""
        ...

    def set_disabled_rules(self, rule_ids: Iterable[str]) -> None:
        """Replace the set of rules switched off (they raise nothing)."""
        ...
