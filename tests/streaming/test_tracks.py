"""Captions and chapters: SRT becomes WebVTT; what is not timed text is refused."""

from __future__ import annotations

import pytest

from events.errors import Invalid
from streaming.models import RecordingTrack
from streaming.tracks import chapter_list, to_webvtt

SRT = (b"1\r\n00:00:01,000 --> 00:00:04,500\r\n\xe6\xac\xa2\xe8\xbf\x8e\r\n\r\n"
       b"2\r\n00:00:05,000 --> 00:00:07,000\r\nsecond\r\nline two\r\n")


def test_srt_becomes_webvtt() -> None:
    assert to_webvtt(SRT) == ("WEBVTT\n\n00:00:01.000 --> 00:00:04.500\n欢迎\n\n"
                              "00:00:05.000 --> 00:00:07.000\nsecond\nline two\n")


def test_webvtt_keeps_its_cue_settings_and_drops_notes() -> None:
    vtt = (b"WEBVTT\n\nNOTE made by hand\n\nintro\n01:02.000 --> 01:03.000 line:0\nhi\n\n"
           b"00:00:09.000 --> 00:00:08.000\nbackwards\n")
    assert to_webvtt(vtt) == "WEBVTT\n\n00:01:02.000 --> 00:01:03.000 line:0\nhi\n"


@pytest.mark.parametrize("raw", [b"", b"hello world", b"\xff\xfe\x00bad", b"WEBVTT\n\n",
                                 b"<script>alert(1)</script>"])
def test_what_is_not_timed_text_is_refused(raw: bytes) -> None:
    with pytest.raises(Invalid) as refused:
        to_webvtt(raw)
    assert refused.value.code == "invalid_track"


def test_control_characters_are_dropped_as_in_every_stored_text() -> None:
    assert to_webvtt(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nbell\x07\n").endswith("\nbell\n")
    with pytest.raises(Invalid):
        to_webvtt(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nnul\x00\n")


def test_chapters_become_the_players_menu() -> None:
    body = to_webvtt(b"WEBVTT\n\n00:00:00.000 --> 00:05:00.000\n\xe5\xbc\x80\xe5\x9c\xba\n\n"
                     b"01:05:00.000 --> 01:20:00.000\nQ&A\n")
    track = RecordingTrack(recording_id=1, kind="chapters", body=body)
    assert chapter_list(track) == [{"start": 0.0, "time": "0:00", "title": "开场"},
                                   {"start": 3900.0, "time": "1:05:00", "title": "Q&A"}]
