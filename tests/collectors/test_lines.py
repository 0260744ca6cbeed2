"""Reading lines: the block reader gives exactly what the line-by-line reader gives."""

import io
import random

import pytest

from collectors.lines import RawLine, read_lines, read_lines_bulk


def _random_log(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(0, 30)):
        body = bytes(rng.choice(b"ab \r\xff") for _ in range(rng.choice((0, 1, 3, 9, 10, 11, 25))))
        parts.append(body + (b"\n" if rng.random() < 0.8 else b"\r\n"))
    data = b"".join(parts)
    if rng.random() < 0.5:  # a last line still being written
        data += bytes(rng.choice(b"ab\r") for _ in range(rng.randint(1, 25)))
    return data


@pytest.mark.parametrize("seed", range(4))
def test_block_reader_agrees_with_the_line_reader(seed):
    rng = random.Random(seed)
    for _ in range(150):
        data = _random_log(rng)
        start = rng.choice((0, min(4, len(data))))
        for max_bytes in (4, 10, 100):
            for final in (True, False):
                for block in (1, 5, 64, 1 << 20):
                    one = io.BytesIO(data)
                    one.seek(start)
                    want = list(read_lines(one, max_bytes, start, 7, final))
                    bulk = io.BytesIO(data)
                    bulk.seek(start)
                    got = list(read_lines_bulk(bulk, max_bytes, start, 7, final, block))
                    assert got == want, (data, start, max_bytes, final, block)


def test_block_reader_positions_and_bounds():
    data = b"one\r\ntwo\n" + b"x" * 50 + b"\nthree\npartial"
    stream = io.BytesIO(data)
    lines = list(read_lines_bulk(stream, max_bytes=20, final_partial=False, block_bytes=8))
    assert [ln.data for ln in lines] == [b"one", b"two", b"x" * 20, b"three"]
    assert lines[2] == RawLine(3, 9, b"x" * 20, True, 51)
    assert lines[-1].offset + lines[-1].consumed == data.index(b"partial")
    # the unfinished last line is left unread for the next poll
    assert stream.tell() == data.index(b"partial")
    final = list(read_lines_bulk(io.BytesIO(data), max_bytes=20, block_bytes=8))
    assert final[-1] == RawLine(5, data.index(b"partial"), b"partial", False, 7)
