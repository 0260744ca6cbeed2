"""The YARA side of the ingest pipeline: ``yara.match`` events become alerts.

The watcher's source (:class:`detection.yara.watch.YaraWatchSource`) and imports
of earlier scans deliver ``yara.match`` events like any collector; the pipeline
stores them and hands them to this detector, which raises the alert each event
stands for (honouring suppressions), so YARA alerts are triaged like Sigma's.
"""

from __future__ import annotations

from collections.abc import Sequence

from detection.yara.alerts import DATASET, alert_from_event, unsuppressed
from govsoc.events import Event, get_field
from store.base import NewAlert, Suppression


class YaraMatchDetector:
    """A :class:`detection.base.Detector` for ``yara.match`` events."""

    name = "yara"

    def __init__(self) -> None:
        self._suppressions: list[Suppression] = []

    def detect(self, events: Sequence[Event]) -> list[NewAlert]:
        alerts = [alert_from_event(e) for e in events
                  if get_field(e, "event.dataset") == DATASET and get_field(e, "yara.matches")]
        return unsuppressed(alerts, self._suppressions) if self._suppressions else alerts

    def flush(self) -> list[NewAlert]:
        return []

    def set_suppressions(self, suppressions: Sequence[Suppression]) -> None:
        self._suppressions = list(suppressions)
