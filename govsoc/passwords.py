"""Password hashing for console users: werkzeug's scrypt, the one spelling of a stored hash.

Both ``govsoc init`` / ``govsoc users`` and the console's login use these helpers,
so a hash written by one is checked by the other.
"""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

#: passwords shorter than this are refused when set (not when checked)
MIN_PASSWORD_LENGTH = 10

#: werkzeug's method string; parameters are kept inside each hash
METHOD = "scrypt"


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` (``scrypt:N:r:p$salt$hash``)."""
    return generate_password_hash(password, method=METHOD)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for an empty or bad hash."""
    if not password_hash:
        return False
    try:
        return check_password_hash(password_hash, password)
    except (ValueError, TypeError):
        return False


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None when it can."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if password.strip() != password:
        return "a password cannot start or end with spaces"
    return None
