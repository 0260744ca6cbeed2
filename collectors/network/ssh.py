"""SSH identification strings (RFC 4253 section 4.2) of both sides of a connection.

A server may send other lines before its identification string; they are skipped
(up to :data:`MAX_PREFIX` bytes). The full identification line is kept, as Zeek
logs it; :func:`split_banner` splits it into protocol and software versions.
"""

from __future__ import annotations

from govsoc.errors import ParseError

MAX_PREFIX = 8192
MAX_LINE = 255  # RFC 4253: the identification line is at most 255 bytes


class SshError(ParseError):
    """A side that does not send an SSH identification string."""


def split_banner(banner: str) -> tuple[str, str, str]:
    """``SSH-2.0-OpenSSH_7.4 Debian`` → (``2.0``, ``OpenSSH_7.4``, ``Debian``)."""
    rest = banner[4:] if banner.startswith("SSH-") else banner
    proto, _, software = rest.partition("-")
    software, _, comment = software.partition(" ")
    return proto, software, comment


class SshConnection:
    """Identification strings of one SSH connection."""

    def __init__(self) -> None:
        self.client: str | None = None
        self.server: str | None = None
        self._buf = {True: bytearray(), False: bytearray()}
        self._seen = {True: 0, False: 0}
        self._gave_up = {True: False, False: False}

    @property
    def finished(self) -> bool:
        return (self.client is not None or self._gave_up[True]) and (
            self.server is not None or self._gave_up[False])

    def feed(self, is_orig: bool, data: bytes, ts: float) -> None:
        if (self.client if is_orig else self.server) is not None or self._gave_up[is_orig]:
            return
        buf = self._buf[is_orig]
        buf += data
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE and not buf.startswith(b"SSH-"):
                    self._seen[is_orig] += len(buf)
                    buf.clear()
                if len(buf) > MAX_LINE or self._seen[is_orig] > MAX_PREFIX:
                    self._gave_up[is_orig] = True
                    buf.clear()
                    raise SshError("no SSH identification string")
                return
            line = bytes(buf[:end]).rstrip(b"\r")
            del buf[:end + 1]
            self._seen[is_orig] += end + 1
            if line.startswith(b"SSH-"):
                text = line[:MAX_LINE].decode("utf-8", "backslashreplace")
                if is_orig:
                    self.client = text
                else:
                    self.server = text
                buf.clear()
                return
            if self._seen[is_orig] > MAX_PREFIX:
                self._gave_up[is_orig] = True
                buf.clear()
                raise SshError("no SSH identification string in the first "
                               f"{MAX_PREFIX} bytes")
