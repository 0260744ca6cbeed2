"""The one exception hierarchy: every error govsoc raises derives from GovsocError.

Library code raises these; only the CLI and long-running loops log them. Each error
names where the problem is (file, line, record, key) so a person can act on it.
"""

from __future__ import annotations


class GovsocError(Exception):
    """Root of every error raised by govsoc."""


class ConfigError(GovsocError):
    """A configuration value is missing, of the wrong type or out of range."""

    def __init__(self, key: str, reason: str, source: str | None = None) -> None:
        self.key = key
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}")


class RecordError(GovsocError):
    """One input record (line, packet, event) could not be accepted.

    ``source`` names the file or sender, ``position`` the line, offset or record
    number inside it.
    """

    def __init__(self, reason: str, source: str = "", position: str | int = "") -> None:
        self.reason = reason
        self.source = source
        self.position = str(position)
        where = source
        if self.position:
            where = f"{where}:{self.position}" if where else self.position
        super().__init__(f"{where}: {reason}" if where else reason)


class EventValidationError(RecordError):
    """An event lacks a required field or a field has the wrong type."""

    def __init__(
        self, field: str, reason: str, source: str = "", position: str | int = ""
    ) -> None:
        self.field = field
        super().__init__(f"field {field!r}: {reason}", source, position)


class ParseError(RecordError):
    """A raw record (log line, packet, EVTX record) could not be parsed."""


class StoreError(GovsocError):
    """The store cannot carry out an operation."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or reached (unwritable path, cluster down)."""


class StoreCorruptError(StoreError):
    """The store's files are damaged; the message says which file and how to recover."""


class ConflictError(StoreError):
    """A write was based on a stale version of a record (optimistic concurrency)."""

    def __init__(self, kind: str, record_id: str, expected: str, current: str) -> None:
        self.kind = kind
        self.record_id = record_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"{kind} {record_id} was changed by someone else "
            f"(your version {expected}, current {current}); reload it and try again"
        )


class NotFoundError(StoreError):
    """A record asked for by id does not exist."""

    def __init__(self, kind: str, record_id: str) -> None:
        self.kind = kind
        self.record_id = record_id
        super().__init__(f"no {kind} with id {record_id!r}")


class QueryError(StoreError):
    """A search request is invalid (unknown field, bad time range, bad cursor)."""


class RuleError(GovsocError):
    """A detection rule or playbook cannot be loaded; names the file and line."""

    def __init__(self, reason: str, path: str = "", line: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        where = path
        if line is not None:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {reason}" if where else reason)


class PlaybookError(GovsocError):
    """A playbook run cannot do what was asked (unknown run, step not waiting, not allowed)."""


class ActionError(PlaybookError):
    """A playbook action failed; ``retryable`` says whether trying again may help."""

    def __init__(self, action: str, reason: str, retryable: bool = False) -> None:
        self.action = action
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"action {action}: {reason}")
