"""Reading raw lines from files with a bound on line length.

Shared by every line-based collector. A line longer than the bound is not kept
whole in memory: its first ``max_bytes`` are returned flagged as truncated and
the rest is skipped, so one attacker-made giant line cannot exhaust memory.

:func:`read_lines` reads line by line and leaves the stream right after the last
line it gave (callers may go on reading the stream themselves);
:func:`read_lines_bulk` gives the same lines from large blocks split at once,
several times faster, for readers that seek to their own offset before each read;
:class:`BlockLines` offers them also as the unsplit blocks (:class:`LineBlock`),
for a reader that splits them itself (the compiled access-log reader).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import accumulate, chain, repeat
from typing import BinaryIO, NamedTuple

DEFAULT_MAX_LINE_BYTES = 1 << 20
_CHUNK = 1 << 16
#: bytes read at once by read_lines_bulk
BLOCK_BYTES = 1 << 20


_new_tuple = tuple.__new__


class RawLine(NamedTuple):
    """One line of a file (a tuple: made once per line, it must be cheap)."""

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


def read_lines_bulk(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_LINE_BYTES,
                    start_offset: int = 0, start_line: int = 1, final_partial: bool = True,
                    block_bytes: int = BLOCK_BYTES) -> Iterator[RawLine]:
    """The lines :func:`read_lines` gives, read a block at a time.

    The stream must be positioned at ``start_offset``; where it is left afterwards
    is unspecified (it is read ahead), except that an unterminated last line left
    unread (``final_partial`` False) is not consumed: the stream is put back at its
    start, as :func:`read_lines` does.
    """
    return chain.from_iterable(map(_lines_of, read_line_blocks(
        stream, max_bytes, start_offset, start_line, final_partial, block_bytes)))


def _lines_of(item: LineBlock | RawLine) -> Iterable[RawLine]:
    return item.lines() if isinstance(item, LineBlock) else (item,)


class LineBlock(NamedTuple):
    """Complete lines read at once, before they are split."""

    #: bytes read: the lines are the ones ending in a newline (what follows the
    #: last newline is no part of the block)
    data: bytes
    number: int  # of the first line
    offset: int  # of the first line
    max_bytes: int

    def line(self, start: int, end: int, number: int, offset: int) -> RawLine:
        """The line of ``data[start:end]`` (its newline included), as read."""
        raw = self.data[start:end - 1]
        size = end - start - 1
        if size > self.max_bytes:
            return RawLine(number, offset, raw[:self.max_bytes], True, size + 1)
        if raw[-1:] == b"\r":
            return RawLine(number, offset, raw.rstrip(b"\r"), False, size + 1)
        return RawLine(number, offset, raw, False, size + 1)

    def lines(self) -> Iterator[RawLine]:
        """The block's lines."""
        lines = self.data.split(b"\n")
        lines.pop()
        sizes = [len(raw) + 1 for raw in lines] if b"\r" not in self.data else None
        if sizes and max(sizes) <= self.max_bytes + 1:
            # the usual block: no line over-long or ending in a carriage return, so
            # the lines are made without a Python step per line
            return map(_new_tuple, repeat(RawLine), zip(
                range(self.number, self.number + len(lines)),
                accumulate(sizes, initial=self.offset), lines, repeat(False), sizes))
        return self._split(lines)

    def _split(self, lines: list[bytes]) -> Iterator[RawLine]:
        number, offset, max_bytes = self.number, self.offset, self.max_bytes
        for raw in lines:
            size = len(raw)
            if size > max_bytes:
                yield RawLine(number, offset, raw[:max_bytes], True, size + 1)
            elif raw[-1:] == b"\r":
                yield RawLine(number, offset, raw.rstrip(b"\r"), False, size + 1)
            else:
                yield RawLine(number, offset, raw, False, size + 1)
            number += 1
            offset += size + 1


class BlockLines:
    """The lines of a stream as :func:`read_lines_bulk` reads them (iterate it
    once), also to be taken a whole block at a time (:meth:`blocks`) by readers
    that split lines themselves."""

    def __init__(self, stream: BinaryIO, max_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 start_offset: int = 0, start_line: int = 1, final_partial: bool = True,
                 block_bytes: int = BLOCK_BYTES) -> None:
        self._args = (stream, max_bytes, start_offset, start_line, final_partial, block_bytes)

    def __iter__(self) -> Iterator[RawLine]:
        return read_lines_bulk(*self._args)

    def blocks(self) -> Iterator[LineBlock | RawLine]:
        """The same lines: the complete lines of each block read as one
        :class:`LineBlock`, a line over-long past its block or unterminated at the
        end as a :class:`RawLine`."""
        return read_line_blocks(*self._args)


def read_line_blocks(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_LINE_BYTES,
                     start_offset: int = 0, start_line: int = 1, final_partial: bool = True,
                     block_bytes: int = BLOCK_BYTES) -> Iterator[LineBlock | RawLine]:
    """:meth:`BlockLines.blocks`; the stream as for :func:`read_lines_bulk`."""
    number = start_line
    offset = start_offset
    read = stream.read
    pending = b""  # the start of a line whose newline is not read yet
    carry = b""  # read bytes not yet split (after an over-long line's end)
    while True:
        chunk = carry or read(block_bytes)
        carry = b""
        if not chunk:
            if pending:
                if not final_partial:
                    stream.seek(offset)
                    return
                yield RawLine(number, offset, pending.rstrip(b"\r"), False, len(pending))
            return
        if pending:
            chunk = pending + chunk
        cut = chunk.rfind(b"\n") + 1
        pending = chunk[cut:]
        if cut:
            yield LineBlock(chunk, number, offset, max_bytes)
            number += chunk.count(b"\n")
            offset += cut
        if len(pending) > max_bytes:
            # an over-long line: keep its head, skip to its newline (or the end)
            head, consumed = pending[:max_bytes], len(pending)
            pending = b""
            while True:
                more = read(block_bytes)
                if not more:
                    break
                end = more.find(b"\n")
                if end >= 0:
                    consumed += end + 1
                    carry = more[end + 1:]
                    break
                consumed += len(more)
            yield RawLine(number, offset, head, True, consumed)
            number += 1
            offset += consumed
            if not carry and not more:
                return
