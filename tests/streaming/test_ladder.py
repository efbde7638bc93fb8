"""The ladder, the ffmpeg argument list, the seek-preview VTT and progress: pure functions."""

from __future__ import annotations

import pytest

from events.errors import Invalid
from streaming.ladder import (
    MAX_PIXELS,
    Progress,
    Source,
    decoder_max_pixels,
    ffmpeg_args,
    ladder,
    thumbnails_vtt,
)
from streaming.probe import ffprobe_args, source_of


def test_no_rendition_above_the_source() -> None:
    assert [r.name for r in ladder(Source(60, 1920, 1080, True))] == \
        ["1080p", "720p", "480p", "360p"]
    assert [r.name for r in ladder(Source(60, 1280, 720, True))] == ["720p", "480p", "360p"]
    assert [r.name for r in ladder(Source(60, 854, 500, True))] == ["480p", "360p"]
    small = ladder(Source(60, 320, 241, False))
    assert [(r.name, r.width, r.height) for r in small] == [("240p", 320, 240)]
    assert [r.name for r in ladder(Source(60, has_audio=True))] == ["audio"]


def test_rungs_go_by_the_short_side_and_a_portrait_video_stays_portrait() -> None:
    phone = ladder(Source(60, 1080, 1920, True))
    assert [(r.name, r.width, r.height) for r in phone] == [
        ("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640)]
    # A few lines short of 720 (a cropped 16:9 export) is still the 720p class, not 480p.
    assert [(r.name, r.width, r.height) for r in ladder(Source(60, 1280, 714, True))] == [
        ("720p", 1280, 714), ("480p", 854, 476), ("360p", 640, 358)]
    # Wider than 16:9: the long side decides too; never scaled up.
    assert [(r.name, r.width, r.height) for r in ladder(Source(60, 1920, 800, True))][:2] == [
        ("1080p", 1920, 800), ("720p", 1280, 534)]
    assert [(r.width, r.height) for r in ladder(Source(60, 1440, 1080, True))][:2] == [
        (1440, 1080), (960, 720)]


def test_the_argument_list_for_a_720p_source_with_sound() -> None:
    assert ffmpeg_args("/m/sources/7.src", "/m/work/3", Source(60.0, 1280, 720, True)) == [
        "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1",
        "-protocol_whitelist", "file",
        "-format_whitelist", "matroska,mov,mpegts,flv,avi,asf,mpeg,wav,mp3,ogg,aac,flac,amr",
        "-max_pixels", str(1920 * 1088), "-i", "file:/m/sources/7.src",
        "-filter_complex",
        "[0:v:0]scale=1280:720,format=yuv420p,split=5[out0][v1][v2][vposter][vthumbs];"
        "[v1]scale=854:480[out1];"
        "[v2]scale=640:360[out2];"
        "[vposter]trim=start=5.000,select='eq(n,0)',scale=1280:720,format=yuvj420p[poster];"
        "[vthumbs]fps=1/5,scale=160:90:force_original_aspect_ratio=decrease,"
        "pad=160:90:-1:-1,tile=10x10,format=yuvj420p[thumbs]",
        "-map", "[poster]", "-frames:v", "1", "/m/work/3/poster.jpg",
        "-map", "[thumbs]", "-fps_mode", "passthrough", "/m/work/3/thumbs-%03d.jpg",
        "-map", "[out0]", "-map", "[out1]", "-map", "[out2]", "-map", "0:a:0",
        "-fps_mode", "vfr",
        "-c:v", "libx264", "-preset", "veryfast", "-sc_threshold", "0",
        "-force_key_frames", "expr:gte(t,n_forced*4)",
        "-b:v:0", "2800k", "-maxrate:v:0", "2996k", "-bufsize:v:0", "4200k",
        "-b:v:1", "1400k", "-maxrate:v:1", "1498k", "-bufsize:v:1", "2100k",
        "-b:v:2", "800k", "-maxrate:v:2", "856k", "-bufsize:v:2", "1200k",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments", "-hls_segment_type", "mpegts",
        "-hls_segment_filename", "/m/work/3/%v/seg_%05d.ts",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "a:0,agroup:audio,name:audio,default:yes "
        "v:0,agroup:audio,name:720p v:1,agroup:audio,name:480p v:2,agroup:audio,name:360p",
        "/m/work/3/%v/index.m3u8"]


def test_the_decoder_makes_no_picture_larger_than_the_source_declared() -> None:
    assert decoder_max_pixels(Source(60, 3840, 2160, True)) == 3840 * 2176
    assert decoder_max_pixels(Source(60, 320, 240, True)) == 1920 * 1088  # the floor
    assert decoder_max_pixels(Source(60, 8192, 8192, True)) == MAX_PIXELS
    args = ffmpeg_args("/s", "/o", Source(3.0, 320, 240, False))
    assert args[args.index("-max_pixels") + 1] == str(1920 * 1088)
    assert args[args.index("-var_stream_map") + 1] == "v:0,name:240p"


def test_an_audio_only_source_gets_an_audio_rendition_and_a_still() -> None:
    args = ffmpeg_args("/s", "/o", Source(30.0, has_audio=True))
    assert "showwavespic" in args[args.index("-filter_complex") + 1]
    assert args[args.index("-var_stream_map") + 1] == "a:0,name:audio"
    assert "libx264" not in args and "/o/poster.jpg" in args


def test_seek_previews_point_into_the_sheets() -> None:
    vtt = thumbnails_vtt(Source(12.0, 1280, 720, True))
    assert vtt.splitlines()[:6] == ["WEBVTT", "", "00:00:00.000 --> 00:00:05.000",
                                    "thumbs-001.jpg#xywh=0,0,160,90", "",
                                    "00:00:05.000 --> 00:00:10.000"]
    assert "00:00:10.000 --> 00:00:12.000\nthumbs-001.jpg#xywh=320,0,160,90" in vtt
    long = thumbnails_vtt(Source(1000.0, 1280, 720, True))
    assert "00:08:20.000 --> 00:08:25.000\nthumbs-002.jpg#xywh=0,0,160,90" in long


def test_progress_rises_and_is_whole_only_at_the_end() -> None:
    progress = Progress(10.0)
    seen = []
    for line in ["frame=1", "out_time_us=2500000", "progress=continue", "out_time_us=-10",
                 "out_time_us=1000000", "progress=continue", "out_time_us=12000000",
                 "progress=continue", "progress=end"]:
        if progress.feed(line):
            seen.append(progress.fraction)
    assert seen == [0.25, 0.25, 0.99, 1.0] and progress.ended


@pytest.mark.parametrize(("found", "code_word"), [
    ({"streams": [], "format": {"format_name": "mov", "duration": "3"}}, "neither"),
    ({"streams": [{"codec_type": "video", "width": 640, "height": 360}],
      "format": {"format_name": "mov"}}, "no duration"),
    ({"streams": [{"codec_type": "video", "width": 640, "height": 360}],
      "format": {"format_name": "mov", "duration": "N/A"}}, "no duration"),
    ({"streams": [{"codec_type": "video", "width": 99999, "height": 360}],
      "format": {"format_name": "mov", "duration": "3"}}, "picture size"),
    ({"streams": [{"codec_type": "audio"}],
      "format": {"format_name": "mov", "duration": "999999"}}, "duration"),
])
def test_what_ffprobe_found_that_is_not_a_recording(found, code_word) -> None:
    with pytest.raises(Invalid) as refused:
        source_of(found)
    assert refused.value.code == "not_a_recording" and code_word in refused.value.message


def test_a_cover_picture_is_not_video() -> None:
    found = {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "200.5"},
             "streams": [{"codec_type": "video", "width": 600, "height": 600,
                          "disposition": {"attached_pic": 1}}, {"codec_type": "audio"}]}
    assert source_of(found) == Source(200.5, 0, 0, True)


def test_a_phone_held_upright_is_a_portrait_source() -> None:
    turned = {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10"},
              "streams": [{"codec_type": "video", "width": 1920, "height": 1080,
                           "side_data_list": [{"side_data_type": "Display Matrix",
                                               "rotation": -90}]}]}
    assert source_of(turned) == Source(10.0, 1080, 1920, False)


@pytest.mark.parametrize("container", ["hls", "dash", "concat", "image2", "webm_dash_manifest",
                                       "tty", ""])
def test_only_a_single_media_file_is_a_recording(container) -> None:
    found = {"format": {"format_name": container, "duration": "3"},
             "streams": [{"codec_type": "video", "width": 640, "height": 360}]}
    with pytest.raises(Invalid) as refused:
        source_of(found)
    assert "single audio or video file" in refused.value.message


def test_ffprobe_opens_the_file_as_ffmpeg_does() -> None:
    assert ffprobe_args("/m/uploads/ab.part") == [
        "ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
        "-protocol_whitelist", "file",
        "-format_whitelist", "matroska,mov,mpegts,flv,avi,asf,mpeg,wav,mp3,ogg,aac,flac,amr",
        "-max_pixels", str(MAX_PIXELS), "-i", "file:/m/uploads/ab.part"]
