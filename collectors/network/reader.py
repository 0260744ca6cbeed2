"""Reading captured frames: pcap and pcapng files, and live interfaces.

Each reader yields :class:`Frame` tuples ``(timestamp, linktype, data, wirelen)``
and counts what it had to skip in :attr:`CaptureReader.problems` (a reason → count
map), so a damaged file is read as far as it can be and never raises mid-way.

- pcapng files go through scapy's ``RawPcapNgReader`` (no dissection).
- Classic pcap files are read here, in 1 MiB chunks: scapy's ``RawPcapReader``
  issues two ``read`` calls and builds a metadata tuple per record, which alone
  takes half of the per-packet budget of a sensor, and importing it loads scapy's
  manufacturer database. The chunked loop also lets a corrupt record header be
  skipped by scanning for the next plausible one instead of abandoning the rest
  of the file.
- Live capture uses scapy's ``conf.L2listen`` socket with a kernel BPF filter.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from collectors.network.decode import LINKTYPE_ETHERNET
from govsoc.errors import ParseError

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
#: largest record a capture may hold; anything larger is a corrupt record header
MAX_RECORD = 262_144
CHUNK = 1 << 20


class Frame(NamedTuple):
    ts: float
    linktype: int
    data: bytes
    wirelen: int


def capture_identity(path: str) -> str:
    """A stable name for a capture: sha256 of its first 64 KiB and its size.

    Re-ingesting the same file (even renamed) gives the same event ids.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            digest.update(fh.read(65536))
        digest.update(str(os.path.getsize(path)).encode())
    except OSError as exc:
        raise ParseError(f"cannot read capture: {exc.strerror or exc}", path) from exc
    return "pcap:" + digest.hexdigest()[:32]


class CaptureReader:
    """Base: frames of one capture, with the problems met while reading them."""

    name: str = ""

    def __init__(self) -> None:
        self.problems: Counter[str] = Counter()
        self.bytes_read = 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or socket."""


def open_capture(path: str) -> CaptureReader:
    """A reader for the pcap or pcapng file at ``path``.

    Raises :class:`ParseError` when the file is neither (the whole file is the
    rejected record: there is nothing to resynchronise on).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError as exc:
        raise ParseError(f"cannot read capture: {exc.strerror}", path) from exc
    if head[:4] in PCAP_MAGICS:
        if len(head) < 24:
            raise ParseError("truncated pcap file header", path, 0)
        return PcapFileReader(path)
    if head[:4] == PCAPNG_MAGIC:
        return PcapNgFileReader(path)
    raise ParseError("not a pcap or pcapng file (unknown magic "
                     f"{head[:4].hex() or 'empty file'})", path, 0)


class PcapFileReader(CaptureReader):
    """Classic libpcap files (micro- and nanosecond, either byte order)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.name = path
        with open(path, "rb") as fh:
            header = fh.read(24)
        if len(header) < 24 or header[:4] not in PCAP_MAGICS:
            raise ParseError("bad pcap file header", path, 0)
        # the 24-byte header is read here: importing scapy.utils for it would load
        # scapy's manufacturer database (12 MiB, half a second) for nothing
        self.endian, self.resolution = PCAP_MAGICS[header[:4]]
        _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(
            self.endian + "HHiIII", header[4:24])
        self.snaplen = snaplen
        self.linktype = linktype & 0x0FFFFFFF  # the high bits carry FCS information
        self._fh: IO[bytes] | None = None

    def __iter__(self) -> Iterator[Frame]:
        fmt = struct.Struct(self.endian + "IIII")
        unpack = fmt.unpack_from
        linktype = self.linktype
        resolution = self.resolution
        limit = max(self.snaplen, 65535) if 0 < self.snaplen <= MAX_RECORD else MAX_RECORD
        new_tuple = tuple.__new__
        fh = self._fh = open(self.name, "rb")  # noqa: SIM115 - closed in finally
        try:
            fh.seek(24)
            buf = b""
            pos = 0
            offset = 24  # file offset of buf[0]
            eof = False
            last_ts: int | None = None
            while True:
                if not eof:
                    more = fh.read(CHUNK)
                    if more:
                        buf = buf[pos:] + more
                        offset += pos
                        pos = 0
                    else:
                        eof = True
                avail = len(buf)
                # below `safe` a whole record (header + MAX_RECORD) is in the buffer
                safe = avail - 16 if eof else avail - 16 - MAX_RECORD
                while pos <= safe:
                    sec, frac, caplen, wirelen = unpack(buf, pos)
                    if caplen > limit:
                        self.problems["corrupt_record_header"] += 1
                        nxt = self._resync(buf, pos + 1, avail, unpack, limit, last_ts)
                        pos = nxt if nxt >= 0 else max(safe + 1, pos + 1)
                        continue
                    end = pos + 16 + caplen
                    if end > avail:
                        break
                    last_ts = sec
                    # tuple.__new__ directly: a NamedTuple's own __new__ is a Python call
                    yield new_tuple(Frame, (sec + frac * resolution, linktype,
                                            buf[pos + 16:end], wirelen))
                    pos = end
                self.bytes_read = offset + pos
                if eof:
                    if pos < avail:
                        self.problems["truncated_file"] += 1
                    return
        finally:
            fh.close()
            self._fh = None

    @staticmethod
    def _resync(buf: bytes, start: int, avail: int, unpack: Any, limit: int,
                last_ts: int | None) -> int:
        """Offset of the next plausible record header after a corrupt one, or -1."""
        for pos in range(start, avail - 16):
            sec, frac, caplen, wirelen = unpack(buf, pos)
            if caplen == 0 or caplen > limit or caplen > wirelen or frac >= 1_000_000_000:
                continue
            if last_ts is not None and abs(sec - last_ts) > 86400:
                continue
            end = pos + 16 + caplen
            if end + 16 <= avail:
                # confirm with the record after it, as a random match is likely
                nsec, _nf, ncap, nwire = unpack(buf, end)
                if ncap > limit or ncap > nwire or abs(nsec - sec) > 86400:
                    continue
            return pos
        return -1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class PcapNgFileReader(CaptureReader):
    """pcapng files through scapy's raw reader (per-interface link types)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.name = path
        self._reader: Any = None

    def __iter__(self) -> Iterator[Frame]:
        from scapy.utils import RawPcapNgReader

        try:
            reader = self._reader = RawPcapNgReader(self.name)
        except Exception as exc:  # scapy raises bare exceptions on bad section headers
            self.problems["bad_pcapng_header"] += 1
            raise ParseError(f"bad pcapng section header: {exc}", self.name, 0) from exc
        try:
            while True:
                try:
                    item = reader._read_packet()
                except EOFError:
                    return
                except Exception:  # a corrupt block: scapy cannot skip past it
                    self.problems["corrupt_block"] += 1
                    return
                data, meta = item
                ts = ((meta.tshigh << 32) + meta.tslow) / float(meta.tsresol or 1_000_000)
                linktype = meta.linktype if meta.linktype is not None else LINKTYPE_ETHERNET
                wirelen = meta.wirelen if meta.wirelen is not None else len(data)
                yield Frame(ts, int(linktype), data, int(wirelen))
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                self.bytes_read = reader.f.tell()
            reader.close()
            self._reader = None


class LiveCapture(CaptureReader):
    """Frames from a live interface (needs root or CAP_NET_RAW, and libpcap for BPF)."""

    def __init__(self, iface: str, bpf: str | None = None, snaplen: int = 65535) -> None:
        super().__init__()
        import scapy.arch  # noqa: F401 - sets conf.L2listen for this platform
        from scapy.config import conf

        self.name = f"live:{iface}"
        self.iface = iface
        self.snaplen = snaplen
        self._stopped = False
        try:
            self._sock = conf.L2listen(iface=iface, filter=bpf, promisc=True)
        except PermissionError as exc:
            raise ParseError("live capture needs root or CAP_NET_RAW", self.name) from exc
        except OSError as exc:
            raise ParseError(f"cannot open interface: {exc}", self.name) from exc
        except Exception as exc:  # scapy raises Scapy_Exception for a bad BPF expression
            raise ParseError(f"cannot start capture: {exc}", self.name) from exc

    def __iter__(self) -> Iterator[Frame]:
        import select
        import time

        sock = self._sock
        while not self._stopped:
            ready, _, _ = select.select([sock], [], [], 0.5)
            if not ready:
                yield Frame(time.time(), -1, b"", 0)  # a tick: lets idle flows expire
                continue
            try:
                _cls, data, ts = sock.recv_raw(self.snaplen)
            except OSError:
                self.problems["receive_error"] += 1
                continue
            if data is None:
                continue
            self.bytes_read += len(data)
            yield Frame(float(ts or time.time()), LINKTYPE_ETHERNET, data, len(data))

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self._stopped = True
        self._sock.close()
