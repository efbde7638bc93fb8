"""A publisher's bitrate over a sliding window: at the cap it goes on for ever, one at half the
cap catching up after a stall goes on, twice the cap is cut off within the window."""

from __future__ import annotations

import pytest

from streaming.ingest_limits import LimitExceeded, StreamLimits

KBPS = 1000
PER_TENTH = KBPS * 1000 // 8 // 10  # bytes in 0.1 s at the cap


def test_a_stream_at_the_cap_is_never_cut_off() -> None:
    limits = StreamLimits(KBPS, 1920 * 1080)
    for tick in range(600):  # a minute
        limits.count(tick / 10, PER_TENTH)


def test_catching_up_after_a_stall_below_the_cap_goes_on() -> None:
    limits = StreamLimits(KBPS, 1920 * 1080)
    half = PER_TENTH // 2
    for tick in range(30):
        limits.count(tick / 10, half)
    limits.count(5.0, half * 20)  # after 2 s of nothing, what it held back, at once
    for tick in range(51, 120):
        limits.count(tick / 10, half)


def test_twice_the_cap_is_cut_off_within_the_window() -> None:
    limits = StreamLimits(KBPS, 1920 * 1080)
    with pytest.raises(LimitExceeded) as exceeded:
        for tick in range(100):
            limits.count(tick / 10, PER_TENTH * 2)
    assert exceeded.value.code == "too_fast" and tick < 40


def test_the_picture_cap() -> None:
    limits = StreamLimits(KBPS, 1280 * 720)
    limits.check_picture(1280, 720)
    with pytest.raises(LimitExceeded):
        limits.check_picture(1920, 1080)


def test_a_flood_of_tiny_messages_keeps_the_window_small() -> None:
    """A publisher sending a million 1-byte messages a second (well under the cap in bytes):
    what the window remembers stays a few dozen entries, not a million."""
    limits = StreamLimits(KBPS * 100, 1920 * 1080)
    for tick in range(1_000_000):
        limits.count(tick / 1_000_000, 1)
    assert len(limits._sizes) <= 100


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
