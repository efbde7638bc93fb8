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
