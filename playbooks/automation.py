"""Playbooks started by alerts: the service's alert listener and its worker.

The ingest path must not wait on a webhook or an SMTP server, so new alerts are
queued and a worker thread starts the fitting ``auto_run`` playbooks. On start the
worker first resumes runs a stop of the service interrupted. Wiring (composition
root)::

    automation = PlaybookAutomation(store, config)
    service.alert_listeners.append(automation)
    automation.start()
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from govsoc.config import Config
from govsoc.errors import GovsocError
from playbooks.engine import PlaybookEngine
from playbooks.loader import PlaybookLibrary, load_library

log = logging.getLogger(__name__)


class PlaybookAutomation:
    def __init__(self, store: Any, config: Config, library: PlaybookLibrary | None = None,
                 actor: str = "govsoc") -> None:
        if library is None:
            library = load_library(list(config.get("playbooks.dirs") or ["builtin"]))
            for error in library.errors:
                log.error("playbook refused: %s", error)
        self.engine = PlaybookEngine(store, config, library)
        self.actor = actor
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.started_runs: list[str] = []

    def __call__(self, stored: list[tuple[Any, bool]]) -> None:
        """Alert listener: queue the alerts that were just created (not folded repeats)."""
        for alert, created in stored:
            if created:
                self._queue.put(alert.id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="playbook-automation",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> None:
        """Wait until every queued alert has been handled (for tests and shutdown)."""
        self._queue.join()

    def _work(self) -> None:
        try:
            for run in self.engine.resume_interrupted(self.actor):
                log.info("resumed playbook run %s (%s): %s", run.id, run.playbook_id,
                         run.status)
        except GovsocError as exc:
            log.error("cannot resume interrupted playbook runs: %s", exc)
        while True:
            alert_id = self._queue.get()
            if alert_id is None:
                self._queue.task_done()
                return
            try:
                alert = self.engine.store.get_alert(alert_id)
                for run in self.engine.auto_start(alert, self.actor):
                    self.started_runs.append(run.id)
                    log.info("playbook %s started for alert %s: run %s is %s",
                             run.playbook_id, alert_id, run.id, run.status)
            except GovsocError as exc:
                log.error("auto-run for alert %s failed: %s", alert_id, exc)
            except Exception:  # the worker must outlive one bad alert
                log.exception("auto-run for alert %s failed", alert_id)
            finally:
                self._queue.task_done()
