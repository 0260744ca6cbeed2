"""Opening archives (zip, tar, tar.gz/bz2/xz) so their members are scanned too.

Uploads often arrive zipped, and a webshell inside a zip is invisible to rules
reading the compressed bytes. Archives come from attackers, so unpacking is
bounded: nesting depth, number of members, bytes per member and in total, and
the expansion ratio (a member that inflates more than ``max_ratio`` times is a
zip bomb). A member over a bound is not read and is counted with its reason;
the other members are still scanned.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

MEMBER_LIMIT = "archive member beyond the depth, size, count or ratio limits"
BAD_ARCHIVE = "damaged or encrypted archive member"


@dataclass(frozen=True)
class ArchiveLimits:
    max_depth: int = 2
    max_members: int = 1000
    max_member_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 100


@dataclass(frozen=True)
class Member:
    """A member read from an archive (``data``), or one left out (``skipped``)."""

    name: str
    data: bytes = b""
    skipped: str | None = None
    detail: str = ""


def archive_kind(head: bytes) -> str | None:
    """``"zip"`` or ``"tar"`` when ``head`` starts an archive we open."""
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return "tar"  # possibly a compressed tar; a plain .gz is not unpacked
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def members(data: bytes, limits: ArchiveLimits, depth: int = 1,
            prefix: str = "") -> Iterator[Member]:
    """Members of the archive in ``data`` (nested archives opened up to the depth)."""
    kind = archive_kind(data[:512])
    if kind is None:
        return
    budget = [limits.max_total_bytes]
    opener = _zip_members if kind == "zip" else _tar_members
    for member in opener(data, limits, prefix, budget):
        yield member
        if member.skipped is None and archive_kind(member.data[:512]):
            if depth >= limits.max_depth:
                yield Member(member.name + "!", skipped=MEMBER_LIMIT,
                             detail=f"nested deeper than {limits.max_depth}")
            else:
                yield from members(member.data, limits, depth + 1, member.name + "!")


def _zip_members(data: bytes, limits: ArchiveLimits, prefix: str,
                 budget: list[int]) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        yield Member(prefix or "(archive)", skipped=BAD_ARCHIVE, detail=str(exc))
        return
    for count, info in enumerate(infos):
        name = prefix + info.filename
        if info.is_dir():
            continue
        if count >= limits.max_members:
            yield Member(name, skipped=MEMBER_LIMIT, detail=f"over {limits.max_members} members")
            return
        reason = _over_limits(info.file_size, info.compress_size, limits, budget)
        if reason:
            yield Member(name, skipped=MEMBER_LIMIT, detail=reason)
            continue
        try:
            with archive.open(info) as fh:
                # read one byte more than declared: a lying header must not get past the cap
                body = fh.read(min(info.file_size, limits.max_member_bytes) + 1)
        except (zipfile.BadZipFile, RuntimeError, OSError, ValueError, EOFError,
                NotImplementedError) as exc:
            yield Member(name, skipped=BAD_ARCHIVE, detail=str(exc))
            continue
        if len(body) > info.file_size:
            yield Member(name, skipped=BAD_ARCHIVE, detail="larger than its header says")
            continue
        budget[0] -= len(body)
        yield Member(name, body)


def _tar_members(data: bytes, limits: ArchiveLimits, prefix: str,
                 budget: list[int]) -> Iterator[Member]:
    try:
        # closed by the "with archive" below; opening may fail, so not in the with
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return  # a compressed single file, not a tar: nothing to unpack
    count = 0
    compressed = len(data)
    # in a compressed stream, skipping a member still inflates it: stop instead
    streamed = data[257:262] != b"ustar"
    with archive:
        while True:
            try:
                info = archive.next()
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                yield Member(prefix or "(archive)", skipped=BAD_ARCHIVE, detail=str(exc))
                return
            if info is None:
                return
            if not info.isreg():
                continue  # links and devices inside a tar are names, not content
            count += 1
            name = prefix + info.name
            if count > limits.max_members:
                yield Member(name, skipped=MEMBER_LIMIT,
                             detail=f"over {limits.max_members} members")
                return
            reason = _over_limits(info.size, compressed, limits, budget)
            if reason:
                yield Member(name, skipped=MEMBER_LIMIT, detail=reason)
                if streamed:
                    return
                continue
            try:
                fh = archive.extractfile(info)
                body = fh.read(limits.max_member_bytes + 1) if fh is not None else b""
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                yield Member(name, skipped=BAD_ARCHIVE, detail=str(exc))
                return
            budget[0] -= len(body)
            yield Member(name, body)


def _over_limits(size: int, compressed: int, limits: ArchiveLimits,
                 budget: list[int]) -> str | None:
    if size > limits.max_member_bytes:
        return f"{size:,} bytes unpacked (cap {limits.max_member_bytes:,})"
    if size > budget[0]:
        return f"archive total over {limits.max_total_bytes:,} bytes"
    if compressed > 0 and size > 1024 * 1024 and size / compressed > limits.max_ratio:
        return f"expands {size / compressed:,.0f} times (cap {limits.max_ratio})"
    return None
