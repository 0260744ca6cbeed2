"""What every collector hands to the ingest pipeline: batches of ECS events.

A collector reads one kind of source, turns each record into an ECS event (or a
:class:`~govsoc.events.DeadLetter` naming why it could not), and yields
:class:`Batch` objects. A batch carries the collector's position after its last
record; the pipeline stores that checkpoint only once the batch itself is stored,
so a restart resumes without loss and, thanks to deterministic event ids, without
duplicates.

Collectors never talk to the store: checkpoints come in as a plain ``dict`` and go
out in the batch.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from govsoc.errors import RecordError
from govsoc.events import DeadLetter, Event

DEFAULT_BATCH_SIZE = 2000


@dataclass
class Batch:
    """Events and rejects read from one source, and the position after them."""

    events: list[Event] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)
    #: (checkpoint name, state) to store once the batch is stored; None = no position
    checkpoint: tuple[str, dict[str, Any]] | None = None
    #: True when the collector already ran ``validate_event`` on every event (it
    #: knows the line or record numbers to name); the pipeline then skips it
    validated: bool = False

    def __len__(self) -> int:
        return len(self.events) + len(self.rejected)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the ``with`` block.

    Building events allocates only acyclic objects (nested dicts, lists and
    strings), which reference counting frees; yet with the default thresholds the
    cyclic collector runs every few hundred events and rescans every event still
    held, a third of a collector's parsing time. Left alone when somebody else
    already disabled it.
    """
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def built_without_gc(batches: Iterator[Batch]) -> Iterator[Batch]:
    """Yield ``batches`` with the garbage collector paused (:func:`gc_paused`)
    while each one is built, never while the caller holds one."""
    try:
        while True:
            with gc_paused():
                batch = next(batches, None)
            if batch is None:
                return
            yield batch
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


class Source(Protocol):
    """A finite or endless input (a file, a listener, a capture)."""

    #: a stable name, also the checkpoint key
    name: str

    def batches(self) -> Iterator[Batch]:
        """Yield batches until the source ends or :meth:`stop` is called."""
        ...

    def stop(self) -> None:
        """Ask an endless source to finish its current batch and return."""
        ...


#: Parses one raw record; raises RecordError (or ValueError) for a bad one.
RecordParser = Callable[[bytes, str, int], Event]


def parse_records(
    records: Iterable[tuple[int, bytes]],
    parse: RecordParser,
    source: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoint_name: str | None = None,
    position_state: Callable[[int], dict[str, Any]] | None = None,
) -> Iterator[Batch]:
    """Run ``parse`` over ``(position, raw bytes)`` pairs and group the results.

    A record the parser rejects becomes a dead letter carrying the source, the
    position and the reason; the others continue. ``position_state`` turns the
    position of the last record of a batch into the checkpoint state.
    """
    batch = Batch()
    last = None
    for position, raw in records:
        last = position
        try:
            batch.events.append(parse(raw, source, position))
        except RecordError as exc:
            batch.rejected.append(DeadLetter.from_error(exc, raw, source, position))
        except (ValueError, KeyError, TypeError, IndexError, UnicodeError) as exc:
            batch.rejected.append(DeadLetter(source, str(position),
                                             f"{type(exc).__name__}: {exc}", bytes(raw)))
        if len(batch) >= batch_size:
            if checkpoint_name and position_state:
                batch.checkpoint = (checkpoint_name, position_state(position))
            yield batch
            batch = Batch()
    if len(batch) or last is not None:
        if checkpoint_name and position_state and last is not None:
            batch.checkpoint = (checkpoint_name, position_state(last))
        if len(batch) or batch.checkpoint:
            yield batch
