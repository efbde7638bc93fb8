"""The live ladder's argument list, compared exactly (streaming.live_ladder)."""

from __future__ import annotations

from streaming.ladder import Rendition
from streaming.live_ladder import Layout, LiveSource, ffmpeg_args, layout_for, pictures_args

HEAD = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
        "-protocol_whitelist", "pipe", "-format_whitelist", "flv", "-max_pixels", "2088960",
        "-f", "flv", "-i", "pipe:0"]
X264 = ["-fps_mode", "vfr", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-profile:v", "high", "-sc_threshold", "0", "-force_key_frames", "expr:gte(t,n_forced*2)"]


def _hls(start: int, streams: str, run: str = "run_002.m3u8") -> list[str]:
    return ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "event",
            "-hls_flags", "independent_segments+program_date_time", "-hls_list_size", "0",
            "-start_number", str(start), "-hls_segment_type", "mpegts",
            "-hls_segment_filename", "/live/k/%v/seg_%05d.ts", "-var_stream_map", streams,
            f"/live/k/%v/{run}"]


def test_a_720p_publisher_gets_three_renditions_and_one_audio() -> None:
    source = LiveSource(1280, 720, True)
    layout = layout_for(source)
    assert [r.name for r in layout.renditions] == ["720p", "480p", "360p"]
    assert ffmpeg_args("flv", "/live/k", layout, source, 2, 31) == HEAD + [
        "-filter_complex", "[0:v:0]scale=1280:720,format=yuv420p,split=3[out0][v1][v2];"
        "[v1]scale=854:480[out1];[v2]scale=640:360[out2]",
        "-map", "[out0]", "-map", "[out1]", "-map", "[out2]", "-map", "0:a:0", *X264,
        "-b:v:0", "2800k", "-maxrate:v:0", "2996k", "-bufsize:v:0", "2800k",
        "-b:v:1", "1400k", "-maxrate:v:1", "1498k", "-bufsize:v:1", "1400k",
        "-b:v:2", "800k", "-maxrate:v:2", "856k", "-bufsize:v:2", "800k",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
        *_hls(31, "a:0,agroup:audio,name:audio,default:yes v:0,agroup:audio,name:720p "
                  "v:1,agroup:audio,name:480p v:2,agroup:audio,name:360p")]


def test_none_above_the_source_and_a_1080p_source_tops_at_720p() -> None:
    assert [r.name for r in layout_for(LiveSource(854, 480, True)).renditions] == \
        ["480p", "360p"]
    assert [r.name for r in layout_for(LiveSource(1920, 1080)).renditions] == \
        ["720p", "480p", "360p"]
    assert layout_for(LiveSource(320, 180, True)).renditions == (Rendition("180p", 320, 180, 400),)


def test_sound_alone_is_one_audio_rendition() -> None:
    layout = layout_for(LiveSource(0, 0, True))
    assert layout == Layout((), True) and layout.names == ["audio"]
    assert ffmpeg_args("flv", "/live/k", layout, LiveSource(0, 0, True), 2, 1) == HEAD + [
        "-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
        *_hls(1, "a:0,agroup:audio,name:audio,default:yes")]


def test_a_picture_without_sound_has_no_audio_group() -> None:
    source = LiveSource(640, 360, False)
    layout = layout_for(source)
    args = ffmpeg_args("webm", "/live/k", layout, source, 2, 7)
    assert args[:15] == [*HEAD[:8], "matroska", *HEAD[9:12], "matroska", *HEAD[13:]]
    assert args[15:] == [
        "-filter_complex", "[0:v:0]scale=640:360,format=yuv420p[out0]", "-map", "[out0]", *X264,
        "-b:v:0", "800k", "-maxrate:v:0", "856k", "-bufsize:v:0", "800k",
        *_hls(7, "v:0,name:360p")]


def test_the_archive_pictures_come_from_the_top_renditions_keyframes() -> None:
    layout = layout_for(LiveSource(1280, 720, True))
    assert pictures_args("/hls/k", layout, 60) == [
        "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-protocol_whitelist", "file", "-format_whitelist", "hls,mpegts",
        "-skip_frame", "nokey", "-f", "hls", "-i", "/hls/k/720p/index.m3u8",
        "-filter_complex", "[0:v:0]split=2[vposter][vthumbs];"
        "[vposter]trim=start=5.000,scale=1280:720,format=yuvj420p[poster];"
        "[vthumbs]fps=1/5,scale=160:90:force_original_aspect_ratio=decrease,pad=160:90:-1:-1,"
        "tile=10x10,format=yuvj420p[thumbs]",
        "-map", "[poster]", "-frames:v", "1", "/hls/k/poster.jpg",
        "-map", "[thumbs]", "-fps_mode", "passthrough", "/hls/k/thumbs-%03d.jpg"]
