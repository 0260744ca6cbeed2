"""The signed-in person as Flask-Login sees them: a thin wrapper over ``store.base.User``."""

from __future__ import annotations

import hashlib

from store.base import User


class ConsoleUser:
    """A console session's user; ``record`` is the stored user."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, record: User) -> None:
        self.record = record

    @property
    def is_active(self) -> bool:
        return not self.record.disabled

    @property
    def username(self) -> str:
        return self.record.username

    @property
    def role(self) -> str:
        return str(self.record.role)

    def get_id(self) -> str:
        return self.record.username

    @staticmethod
    def stamp_of(record: User) -> str:
        """Changes whenever the password or the role changes, voiding older sessions."""
        material = f"{record.password_hash}\x00{record.role}".encode()
        return hashlib.sha256(material).hexdigest()[:16]
