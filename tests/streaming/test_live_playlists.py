"""A webcast's playlists composed from its runs (streaming.live_playlists): pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streaming.ladder import Rendition
from streaming.live_ladder import Layout
from streaming.live_playlists import (
    Cut,
    cut_of,
    in_every_rendition,
    master_playlist,
    media_playlist,
    on_clock,
    parse_run,
    select,
)

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _run(first: int, count: int, start: datetime) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:2",
             f"#EXT-X-MEDIA-SEQUENCE:{first}", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    for index in range(count):
        at = start + timedelta(seconds=2 * index)
        lines += ["#EXTINF:2.000000,",
                  f"#EXT-X-PROGRAM-DATE-TIME:{at.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}+0000",
                  f"seg_{first + index:05d}.ts"]
    return "\n".join(lines) + "\n"


RUNS = [parse_run(_run(1, 5, T0)), parse_run(_run(6, 3, T0 + timedelta(seconds=40)))]


def test_ffmpegs_run_playlist_is_read_with_its_wall_clock() -> None:
    first = RUNS[0]
    assert [s.number for s in first] == [1, 2, 3, 4, 5]
    assert first[2].at == T0 + timedelta(seconds=4) and first[2].duration == 2.0


def test_the_public_part_starts_at_the_first_segment_on_air_and_ends_off_air() -> None:
    assert cut_of(RUNS, None, None) == Cut(None)
    cut = cut_of(RUNS, T0 + timedelta(seconds=3), None)
    assert cut == Cut(3) and [s.number for run in select(RUNS, cut) for s in run] == \
        [3, 4, 5, 6, 7, 8]
    ended = cut_of(RUNS, T0 + timedelta(seconds=3), T0 + timedelta(seconds=41))
    assert ended == Cut(3, 7) and not ended.holds(2) and not ended.holds(7)
    # Off air after the last segment began: everything written.
    assert cut_of(RUNS, T0, T0 + timedelta(hours=1)) == Cut(1, 9)


def test_runs_are_apart_by_a_discontinuity_and_the_archive_ends() -> None:
    live = media_playlist(select(RUNS, Cut(4)))
    assert live.startswith("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n"
                           "#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-PLAYLIST-TYPE:EVENT\n")
    assert live.count("#EXT-X-DISCONTINUITY\n") == 1
    assert live.index("seg_00005.ts") < live.index("#EXT-X-DISCONTINUITY") < \
        live.index("seg_00006.ts")
    assert "#EXT-X-ENDLIST" not in live
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T10:00:06.000+00:00" in live
    archive = media_playlist(select(RUNS, Cut(4, 7)), vod=True)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in archive and archive.endswith("#EXT-X-ENDLIST\n")
    assert "seg_00007.ts" not in archive


def test_a_run_is_dated_from_its_first_byte() -> None:
    late = on_clock(RUNS[0], T0 - timedelta(seconds=1.5))
    assert late[0].at == T0 - timedelta(seconds=1.5) and late[1].at == T0 + timedelta(seconds=0.5)


def test_renditions_list_the_same_segments() -> None:
    ahead = [parse_run(_run(1, 6, T0))]
    kept = in_every_rendition({"720p": ahead, "audio": [RUNS[0]]})
    assert [s.number for s in kept["720p"][0]] == [1, 2, 3, 4, 5]


def test_the_master_shares_one_sound_or_has_none() -> None:
    ladder = (Rendition("720p", 1280, 720, 2800), Rendition("360p", 640, 360, 800))
    assert master_playlist(Layout(ladder, True), "live.m3u8") == (
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,'
        'URI="audio/live.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=2928000,RESOLUTION=1280x720,AUDIO="audio"\n720p/live.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=928000,RESOLUTION=640x360,AUDIO="audio"\n360p/live.m3u8\n')
    assert master_playlist(Layout(ladder[1:], False), "index.m3u8") == (
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n")
    assert master_playlist(Layout((), True), "live.m3u8").endswith(
        '#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS="mp4a.40.2"\naudio/live.m3u8\n')
