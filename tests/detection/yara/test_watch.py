"""Watched web roots: a new or changed file is scanned within seconds, with
inotify and with the polling fallback; links are not followed."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time

import pytest

from detection.yara import scanner as sc
from detection.yara.watch import WatchSettings, YaraWatch

RULE = 'rule dropped { strings: $a = "EVIL-DROP" condition: $a }\n'


def start(scanner, root, **settings):
    seen: queue.Queue = queue.Queue()
    watch = YaraWatch(scanner, [str(root)], seen.put, WatchSettings(**settings))
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    assert watch.ready.wait(10)
    return watch, thread, seen


def next_result(seen, timeout=5.0):
    return seen.get(timeout=timeout)


@pytest.mark.parametrize("mode", ["inotify", "polling"])
@pytest.mark.timeout(60)
def test_new_and_changed_files_are_scanned_within_seconds(make_scanner, tmp_path, mode):
    root = tmp_path / "uploads"
    root.mkdir()
    (root / "old.php").write_text("EVIL-DROP")  # there before watching: not rescanned
    scanner = make_scanner({"r.yar": RULE})
    watch, thread, seen = start(scanner, root, inotify=mode == "inotify",
                                poll_seconds=0.5, settle_seconds=0.2)
    try:
        assert watch.mode == mode
        started = time.monotonic()
        (root / "shell.php").write_text("<?php EVIL-DROP")
        result = next_result(seen)
        assert result.path == str(root / "shell.php") and result.matches
        assert time.monotonic() - started < 5
        # a new directory and a file in it
        (root / "2026" / "11").mkdir(parents=True)
        time.sleep(0.3)
        (root / "2026" / "11" / "img.jpg.php").write_text("EVIL-DROP")
        assert next_result(seen).path == str(root / "2026" / "11" / "img.jpg.php")
        # a clean file changed into a bad one
        page = root / "index.html"
        page.write_text("<html>ok</html>")
        time.sleep(1.2)
        page.write_text("<html>EVIL-DROP</html>")
        assert next_result(seen).path == str(page)
        # a link to a file outside the root is reported, never read
        outside = tmp_path / "outside.txt"
        outside.write_text("EVIL-DROP")
        os.symlink(outside, root / "link.txt")
        link_results = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                link_results.append(next_result(seen, 0.5))
        assert all(not r.matches for r in link_results)
        assert {r.skipped for r in link_results} <= {sc.SYMLINK_NOT_FOLLOWED}
        assert all(r.path != str(root / "old.php") for r in link_results)
    finally:
        watch.stop()
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.timeout(60)
def test_initial_scan_and_file_held_open(make_scanner, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "before.php").write_text("EVIL-DROP")
    watch, thread, seen = start(make_scanner({"r.yar": RULE}), root, initial_scan=True,
                                settle_seconds=0.3)
    try:
        assert next_result(seen).path == str(root / "before.php")
        # written but still open: scanned once quiet for settle_seconds
        with open(root / "slow.php", "w") as fh:
            fh.write("EVIL-DROP")
            fh.flush()
            assert next_result(seen).path == str(root / "slow.php")
    finally:
        watch.stop()
        thread.join(10)


@pytest.mark.timeout(60)
def test_watch_source_feeds_the_pipeline_and_the_detector_raises_alerts(
        make_scanner, tmp_path, config):
    from detection.yara.detector import YaraMatchDetector
    from detection.yara.watch import YaraWatchSource
    from govsoc.pipeline import Pipeline
    from store import open_store

    root = tmp_path / "portal"
    root.mkdir()
    source = YaraWatchSource(make_scanner({"r.yar": RULE}), [str(root)],
                             WatchSettings(settle_seconds=0.1), batch_seconds=0.3)
    store = open_store(config)
    pipeline = Pipeline(store, [YaraMatchDetector()])
    try:
        batches = source.batches()
        threading.Timer(1.0, lambda: (root / "drop.aspx").write_text("EVIL-DROP")).start()
        batch = next(batches)
        pipeline.submit(batch)
        source.stop()
        for rest in batches:
            pipeline.submit(rest)
        alerts = store.list_alerts().items
        assert [a.rule_id for a in alerts] == ["yara:dropped"]
        assert alerts[0].fields["file.path"] == str(root / "drop.aspx")
        assert store.get_events(alerts[0].event_ids)[0]["event"]["dataset"] == "yara.match"
    finally:
        source.stop()
        store.close()
