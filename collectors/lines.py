"""Reading raw lines from files with a bound on line length.

Shared by every line-based collector. A line longer than the bound is not kept
whole in memory: its first ``max_bytes`` are returned flagged as truncated and
the rest is skipped, so one attacker-made giant line cannot exhaust memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

DEFAULT_MAX_LINE_BYTES = 1 << 20
_CHUNK = 1 << 16


@dataclass(frozen=True)
class RawLine:
    number: int  # 1-based
    offset: int  # byte offset of the line's first byte
    data: bytes  # without the line terminator
    truncated: bool = False
    #: bytes consumed including the terminator (offset + consumed = next offset)
    consumed: int = 0


def read_lines(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_LINE_BYTES,
               start_offset: int = 0, start_line: int = 1,
               final_partial: bool = True) -> Iterator[RawLine]:
    """Lines of a binary stream with their numbers and offsets.

    ``final_partial`` False leaves an unterminated last line unread (for tailing a
    file that is still being written: the line is read once it is complete).
    """
    number = start_line
    offset = start_offset
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        consumed = len(line)
        truncated = False
        if not line.endswith(b"\n"):
            if len(line) > max_bytes:
                truncated = True
                line = line[:max_bytes]
                # skip the remainder of the over-long line
                while True:
                    rest = stream.readline(_CHUNK)
                    consumed += len(rest)
                    if not rest or rest.endswith(b"\n"):
                        break
            elif not final_partial:
                stream.seek(offset)
                return
        data = line.rstrip(b"\r\n") if not truncated else line
        yield RawLine(number, offset, data, truncated, consumed)
        number += 1
        offset += consumed
