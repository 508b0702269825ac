"""The block reader: the lines a split gives, whatever the block size; over-long lines and the
decompression limit reported where they are."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.screen.reader import LineReader, TooLarge, TooLong


@given(
    st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    st.integers(1, 9),
    st.integers(1, 10),
    st.booleans(),
)
def test_the_reader_gives_the_lines_a_split_gives_whatever_the_block_size(
    lines: list[bytes], block: int, limit: int, newline_at_end: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    reader = LineReader(io.BytesIO(data), 1, limit, block=block)  # type: ignore[arg-type]
    got = list(reader)
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    expected = [
        (n, line if len(line) <= limit else TooLong(len(line))) for n, line in enumerate(pieces, 1) if line
    ]
    assert got == expected
    assert reader.blank == sum(1 for line in pieces if not line)


def test_the_reader_stops_at_the_decompressed_limit() -> None:
    data = b"a\n" * 100
    reader = LineReader(io.BytesIO(data), 1, 10, decompressed=150, block=16)  # type: ignore[arg-type]
    with pytest.raises(TooLarge) as raised:
        list(reader)
    assert raised.value.line == 76  # byte 151 is the first of line 76
