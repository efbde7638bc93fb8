"""The publisher's signal as the room and the console show it (streaming.live_state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streaming.live_state import signal_of
from streaming.models import LiveStream

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _stream(state: str, *, signal_ago: float = 0, alive_ago: float = 0,
            runs: int = 1) -> LiveStream:
    return LiveStream(event_id=1, state=state, runs=runs,
                      signal_at=NOW - timedelta(seconds=signal_ago),
                      updated_at=NOW - timedelta(seconds=alive_ago))


def test_the_signal_is_on_waiting_within_the_grace_then_lost() -> None:
    assert signal_of(None, NOW, 60) is None
    assert signal_of(_stream("idle", runs=0), NOW, 60) is None
    assert signal_of(_stream("on_air", signal_ago=3600, alive_ago=5), NOW, 60) == "on"
    assert signal_of(_stream("waiting", signal_ago=59), NOW, 60) == "waiting"
    assert signal_of(_stream("waiting", signal_ago=61), NOW, 60) == "lost"
    assert signal_of(_stream("ended"), NOW, 60) is None


def test_a_stream_whose_process_fell_silent_is_lost() -> None:
    assert signal_of(_stream("on_air", alive_ago=31), NOW, 60) == "lost"
    assert signal_of(_stream("preview", alive_ago=29), NOW, 60) == "on"
