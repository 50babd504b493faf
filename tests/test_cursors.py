"""Cursors: one format for every keyset-paginated list, refused when not ours."""

import pytest

from app import cursors


def test_a_cursor_round_trips_its_key():
    assert cursors.decode(cursors.encode("q", 70, 9_223_372_036_854_775_807), "q", 2) == (70, 9_223_372_036_854_775_807)


@pytest.mark.parametrize("cursor", [
    cursors.encode("id", 5),  # another list's cursor
    cursors.encode("q", 5),  # too short a key
    cursors.encode("q", 5, 10**19),  # 20 digits: no bigint
    "", "garbage", "!!!!",
])
def test_a_cursor_that_is_not_one_of_ours_is_refused(cursor):
    with pytest.raises(ValueError, match="invalid cursor"):
        cursors.decode(cursor, "q", 2)
