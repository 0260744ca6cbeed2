"""An ingesting process for the kill -9 fault test: feeds a deterministic stream of
events to the search-cluster store in batches and keeps its position as a store
checkpoint after each batch, so a restarted worker resumes where the last
acknowledged batch ended.

    python -m tests.store.elastic_ingest_worker ENGINE URL PREFIX TOTAL BATCH
"""

from __future__ import annotations

import sys

from store.elastic import connect_for_tests
from tests.store.elastic_support import synth

CHECKPOINT = "fault-test:stream"


def main(argv: list[str]) -> int:
    engine, url, prefix, total, batch = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    store = connect_for_tests(engine, url, prefix=prefix)
    state = store.get_checkpoint(CHECKPOINT) or {"next": 0}
    start = int(state["next"])
    print(f"resuming at {start}", flush=True)
    while start < total:
        stop = min(total, start + batch)
        store.insert_events(list(synth(start, stop)))
        store.set_checkpoint(CHECKPOINT, {"next": stop})
        start = stop
    store.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
