"""Archives: members are scanned, and unpacking is bounded (depth, size, count,
ratio); what is not unpacked is counted with its reason."""

from __future__ import annotations

import io
import tarfile
import zipfile

from detection.yara.archives import BAD_ARCHIVE, MEMBER_LIMIT, ArchiveLimits, members
from detection.yara.scanner import ScanStats

RULE = 'rule packed_marker { strings: $a = "EVIL-ZIPPED" condition: $a }\n'


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def tarred(entries: dict[str, bytes], mode: str = "w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_members_of_zip_and_tar_are_scanned(make_scanner, tmp_path):
    up = tmp_path / "uploads"
    up.mkdir()
    (up / "theme.zip").write_bytes(zipped({"css/a.css": b"body{}",
                                           "inc/shell.php": b"<?php EVIL-ZIPPED"}))
    (up / "backup.tar.gz").write_bytes(tarred({"www/x.php": b"EVIL-ZIPPED"}))
    (up / "nested.zip").write_bytes(zipped({"inner.zip": zipped({"deep.php": b"EVIL-ZIPPED"})}))
    stats = ScanStats()
    results = {r.path.rsplit("/", 1)[-1]: r
               for r in make_scanner({"r.yar": RULE}).scan([str(up)], stats)}
    assert [m.member for m in results["theme.zip"].matches] == ["inc/shell.php"]
    assert [m.member for m in results["backup.tar.gz"].matches] == ["www/x.php"]
    assert [m.member for m in results["nested.zip"].matches] == ["inner.zip!deep.php"]
    assert not stats.skipped


def test_zip_bomb_and_limits(make_scanner, tmp_path):
    bomb = zipped({"zeros.bin": b"\0" * (40 * 1024 * 1024), "ok.php": b"EVIL-ZIPPED"})
    assert len(bomb) < 100_000
    found = list(members(bomb, ArchiveLimits()))
    assert [(m.name, m.skipped) for m in found] == [("zeros.bin", MEMBER_LIMIT), ("ok.php", None)]
    ratio_only = list(members(bomb, ArchiveLimits(max_member_bytes=64 * 1024 * 1024)))
    assert ratio_only[0].skipped == MEMBER_LIMIT and "expands" in ratio_only[0].detail
    many = zipped({f"f{i}.txt": b"x" for i in range(30)})
    counted = list(members(many, ArchiveLimits(max_members=10)))
    assert sum(m.skipped is None for m in counted) == 10 and counted[-1].skipped == MEMBER_LIMIT
    deep = zipped({"a.zip": zipped({"b.zip": zipped({"c.php": b"EVIL-ZIPPED"})})})
    names = [(m.name, m.skipped) for m in members(deep, ArchiveLimits(max_depth=2))]
    assert ("a.zip!b.zip!", MEMBER_LIMIT) in names
    (tmp_path / "bomb.zip").write_bytes(bomb)
    stats = ScanStats()
    results = list(make_scanner({"r.yar": RULE}).scan([str(tmp_path / "bomb.zip")], stats))
    assert stats.skipped[MEMBER_LIMIT] == 1
    assert [m.member for m in results[0].matches] == ["ok.php"]


def test_damaged_archives_are_counted(make_scanner, tmp_path):
    good = zipped({"a.php": b"EVIL-ZIPPED", "b.txt": b"fine" * 1000})
    damaged = good[:40] + b"\xff" * 30 + good[70:]
    (tmp_path / "d.zip").write_bytes(damaged)
    (tmp_path / "t.zip").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "plain.gz").write_bytes(tarred({"x": b"y"})[:10] + b"\0" * 50)
    stats = ScanStats()
    list(make_scanner({"r.yar": RULE}).scan([str(tmp_path)], stats))
    assert stats.skipped[BAD_ARCHIVE] >= 2
    assert stats.scanned >= 3
