# Type stubs of the compiled module; each function names its Python reference.
from typing import Any

__version__: str

class EvtxRecords:
    """The records of one EVTX file as ECS events (``collectors.evtx._FileReader``
    with ``collectors.windows.winlog.winlog_event`` and ``collectors.windows.ecs.enrich``
    is the reference). Opens ``path`` as ``evtx.PyEvtxParser(path)`` does; raises
    OSError or RuntimeError where that raises."""

    #: records taken from the parser so far (mapped here or handed back)
    consumed: int
    #: the parser could not read on; the caller goes on with ``evtx.PyEvtxParser``
    #: after ``consumed`` records
    failed: bool

    def __init__(self, path: str) -> None: ...
    def read(self, events: list[dict[str, Any]],
             limit: int) -> tuple[int, int | None, str | None]:
        """Maps up to ``limit`` records, appending their events to ``events``:
        ``(taken, last record id, JSON text of a record left to the Python
        mapping or None)``; ``taken`` is 0 at the end or when ``failed``."""

def map_json(text: str) -> dict[str, Any] | None:
    """The ECS event of one record's JSON text (``collectors.evtx.record_to_event``
    with ``original=text`` is the reference), or None when the Python mapping is to
    decide."""
