"""The YARA side of the ingest pipeline: ``yara.match`` events become alerts.

The watcher's source (:class:`detection.yara.watch.YaraWatchSource`) and imports
of earlier scans deliver ``yara.match`` events like any collector; the pipeline
stores them and hands them to this detector, which raises the alert each event
stands for (honouring suppressions), so YARA alerts are triaged like Sigma's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from detection.yara.alerts import DATASET, alert_from_event, unsuppressed
from govsoc.events import Event, get_field
from store.base import NewAlert, Suppression


class YaraMatchDetector:
    """A :class:`detection.base.Detector` for ``yara.match`` events."""

    name = "yara"

    def __init__(self) -> None:
        self._suppressions: list[Suppression] = []
        self.disabled: frozenset[str] = frozenset()

    def detect(self, events: Sequence[Event]) -> list[NewAlert]:
        alerts = [alert_from_event(e) for e in events
                  if get_field(e, "event.dataset") == DATASET and get_field(e, "yara.matches")]
        if self.disabled:
            alerts = [a for a in alerts if a.rule_id not in self.disabled]
        return unsuppressed(alerts, self._suppressions) if self._suppressions else alerts

    def set_disabled_rules(self, rule_ids: Iterable[str]) -> None:
        """YARA rules switched off in the console raise no alert."""
        self.disabled = frozenset(str(r) for r in rule_ids)

    def flush(self) -> list[NewAlert]:
        return []

    def set_suppressions(self, suppressions: Sequence[Suppression]) -> None:
        self._suppressions = list(suppressions)
