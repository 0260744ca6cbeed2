"""Scanning files and trees: matches with hashes and externals, and every kind of
bad input counted with its reason while the scan goes on."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from detection.yara import scanner as sc
from detection.yara.scanner import ScanStats

MARKER = 'rule marker { strings: $a = "EVIL-MARKER" condition: $a }\n'
BY_EXTERNALS = ('rule php_named_shell { condition: extension == ".php" and '
                'filename matches /^shell/ and filetype == "PHP" and owner != "" }\n')
MANY = 'rule many_a { strings: $a = "aa" condition: #a > 3 }\n'
SLOW = ('import "math"\nrule slow { condition: for all i in (1..filesize) : '
        '(math.entropy(0, filesize) >= 0) }\n')


def scan(scanner, *paths, **kwargs):
    stats = ScanStats()
    results = list(scanner.scan([str(p) for p in paths], stats, **kwargs))
    return results, stats


def test_tree_scan_reports_matches_with_hashes_owner_and_mtime(make_scanner, tmp_path):
    root = tmp_path / "www"
    (root / "a" / "b").mkdir(parents=True)
    content = b"<html>EVIL-MARKER</html>"
    (root / "a" / "b" / "x.html").write_bytes(content)
    for i in range(50):
        (root / "a" / f"clean{i}.txt").write_text("nothing here " * i)
    scanner = make_scanner({"m.yar": MARKER}, threads=2)
    results, stats = scan(scanner, root)
    assert [r.path for r in results] == [str(root / "a" / "b" / "x.html")]
    hit = results[0]
    assert [m.rule for m in hit.matches] == ["marker"]
    assert hit.matches[0].strings[0].offset == 6
    assert hit.matches[0].strings[0].data == "EVIL-MARKER"
    assert hit.sha256 == hashlib.sha256(content).hexdigest()
    assert hit.md5 == hashlib.md5(content).hexdigest()
    assert hit.sha1 == hashlib.sha1(content).hexdigest()
    assert hit.size == len(content) and hit.owner and hit.mtime is not None
    assert stats.files == 51 and stats.scanned == 51 and stats.matched == 1
    assert not stats.skipped


def test_external_variables_are_set_per_file(make_scanner, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "shell1.php").write_text("<?php echo 1;")
    (tmp_path / "d" / "shell2.txt").write_text("<?php echo 1;")
    (tmp_path / "d" / "other.php").write_text("<?php echo 1;")
    results, _ = scan(make_scanner({"e.yar": BY_EXTERNALS}), tmp_path / "d")
    assert [os.path.basename(r.path) for r in results] == ["shell1.php"]


def test_string_matches_are_capped(make_scanner, tmp_path):
    (tmp_path / "f").write_bytes(b"a" * 1000)
    results, _ = scan(make_scanner({"m.yar": MANY}, max_strings_per_rule=5), tmp_path / "f")
    match = results[0].matches[0]
    assert len(match.strings) == 5 and match.strings_dropped > 900


def test_symlinks_never_lead_out_of_the_root(make_scanner, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("EVIL-MARKER")
    root = tmp_path / "root"
    root.mkdir()
    (root / "inside.txt").write_text("EVIL-MARKER")
    os.symlink(outside / "secret.txt", root / "link-out.txt")
    os.symlink(outside, root / "dir-out")
    os.symlink(root / "inside.txt", root / "link-in.txt")
    os.symlink(tmp_path / "nowhere", root / "dangling")
    results, stats = scan(make_scanner({"m.yar": MARKER}), root)
    matched = [r.path for r in results if r.matches]
    assert matched == [str(root / "inside.txt")]
    assert stats.skipped[sc.SYMLINK_OUT] == 2
    assert stats.skipped[sc.SYMLINK_IN] == 1
    assert stats.skipped[sc.DANGLING] == 1
    # watched paths named one by one are not followed either
    results, stats = scan(make_scanner({"m.yar": MARKER}), root / "link-out.txt",
                          follow_given=False)
    assert not any(r.matches for r in results)
    assert stats.skipped[sc.SYMLINK_NOT_FOLLOWED] == 1


@pytest.mark.timeout(30)
def test_fifos_and_devices_are_skipped_without_blocking(make_scanner, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe")
    (root / "after.txt").write_text("EVIL-MARKER")
    scanner = make_scanner({"m.yar": MARKER})
    results, stats = scan(scanner, root, "/dev/null")
    assert stats.skipped[sc.NOT_REGULAR] == 2
    assert any(r.matches for r in results)
    kinds = {r.detail for r in results if r.skipped == sc.NOT_REGULAR}
    assert kinds == {"FIFO", "character device"}


def test_huge_sparse_file_is_not_read(make_scanner, tmp_path):
    huge = tmp_path / "sparse.img"
    with open(huge, "wb") as fh:
        fh.truncate(20 * 1024**3)
    scanner = make_scanner({"m.yar": MARKER}, max_file_size=1024 * 1024)
    started = time.monotonic()
    results, stats = scan(scanner, tmp_path)
    assert time.monotonic() - started < 10
    assert stats.skipped[sc.TOO_LARGE] == 1
    assert results[0].skipped == sc.TOO_LARGE


def test_vanished_unreadable_and_excluded(make_scanner, tmp_path):
    scanner = make_scanner({"m.yar": MARKER}, exclude=("*.log", "cache"))
    root = tmp_path / "root"
    (root / "cache").mkdir(parents=True)
    (root / "cache" / "x.txt").write_text("EVIL-MARKER")
    (root / "app.log").write_text("EVIL-MARKER")
    (root / "page.txt").write_text("EVIL-MARKER")
    results, stats = scan(scanner, root, tmp_path / "gone.txt")
    assert [r.path for r in results if r.matches] == [str(root / "page.txt")]
    assert stats.skipped[sc.EXCLUDED] == 2
    assert stats.skipped[sc.VANISHED] == 1
    if os.geteuid() != 0:  # root reads anything
        locked = root / "locked.txt"
        locked.write_text("EVIL-MARKER")
        locked.chmod(0)
        _, stats = scan(scanner, locked)
        assert stats.skipped[sc.UNREADABLE] == 1


def test_per_file_timeout_is_counted_and_the_scan_goes_on(make_scanner, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 200_000)
    (tmp_path / "b.txt").write_bytes(b"x")
    scanner = make_scanner({"slow.yar": SLOW}, timeout=1, threads=1)
    started = time.monotonic()
    results, stats = scan(scanner, tmp_path / "a.bin", tmp_path / "b.txt")
    assert time.monotonic() - started < 20
    assert stats.skipped[sc.TIMEOUT] == 1
    assert [r.skipped for r in results if r.path.endswith("a.bin")] == [sc.TIMEOUT]
    assert any(r.path.endswith("b.txt") and r.matches for r in results)


def test_files_changing_while_scanned(make_scanner, tmp_path):
    root = tmp_path / "busy"
    root.mkdir()
    victim = root / "growing.txt"
    victim.write_bytes(b"x" * 100_000 + b"EVIL-MARKER")
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            i += 1
            with open(victim, "ab") as fh:
                fh.write(b"y" * 1000)
            churned = root / f"tmp{i % 20}.txt"
            churned.write_text("EVIL-MARKER")
            churned.unlink()

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        scanner = make_scanner({"m.yar": MARKER}, threads=2)
        for _ in range(20):
            results, stats = scan(scanner, root)
            # every entry is accounted for: scanned, or skipped with a reason
            assert stats.scanned + sum(stats.skipped.values()) >= stats.files
            assert set(stats.skipped) <= {sc.VANISHED, sc.CHANGED}
            assert any(r.path == str(victim) and r.matches for r in results)
    finally:
        stop.set()
        writer.join()


def test_threads_give_the_same_answer(make_scanner, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(200):
        (tree / f"f{i}.txt").write_text("EVIL-MARKER" if i % 7 == 0 else "calm")
    one, _ = scan(make_scanner({"m.yar": MARKER}, threads=1), tree)
    two, _ = scan(make_scanner({"m.yar": MARKER}, threads=2), tree)
    assert sorted(r.path for r in one) == sorted(r.path for r in two)
    assert len(one) == 29


def test_abandoning_a_scan_closes_everything(make_scanner, tmp_path):
    (tmp_path / "tree").mkdir()
    for i in range(300):
        (tmp_path / "tree" / f"f{i}.txt").write_text("EVIL-MARKER")
    scanner = make_scanner({"m.yar": MARKER}, threads=2)
    before = len(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    results = scanner.scan([str(tmp_path / "tree")])
    next(results)
    results.close()
    assert len(os.listdir("/proc/self/fd")) <= before + 2
    # the scan's worker threads are gone (other tests' daemons may still be running)
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before


def test_payload_bytes(make_scanner):
    scanner = make_scanner({"m.yar": MARKER, "e.yar": BY_EXTERNALS})
    assert [m.rule for m in scanner.scan_payload(b"..EVIL-MARKER..", "up.bin")] == ["marker"]
    assert scanner.scan_payload(b"harmless", "x") == []
