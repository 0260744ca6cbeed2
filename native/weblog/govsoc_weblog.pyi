# Type stubs of the compiled module; each function names its Python reference.
from typing import Any

from collectors.lines import RawLine

__version__: str

class AccessLines:
    """``collectors.weblog.AccessLogParser._plain`` and the loop of
    ``collectors.textlog.line_batches`` over the lines it reads
    (``collectors.textlog.BulkLineReader``)."""

    def __init__(self, server: str) -> None: ...
    def parse(self, text: str) -> dict[str, Any] | None:
        """``AccessLogParser._plain``'s event of ``text``; None: the line is Python's."""
    def take(self, lines: list[RawLine], start: int, room: int, events: list[dict[str, Any]],
             id_prefix: bytes, path: str) -> int:
        """``textlog.BulkLineReader.take``."""
    def take_block(self, data: bytes, start: int, offset: int, max_bytes: int, room: int,
                   events: list[dict[str, Any]], id_prefix: bytes,
                   path: str) -> tuple[int, int]:
        """``textlog.BulkLineReader.take_block``."""

def line_event_id(prefix: bytes, offset: int) -> str:
    """``blake2b(prefix + b"%d" % offset, digest_size=16).hexdigest()`` (``line_batches``)."""
