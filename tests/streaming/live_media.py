"""A live HLS stream for the player's browser tests, without an encoder: 2 s segments made by
ffmpeg once, served through Playwright's routing as an EVENT playlist that grows with the
clock (one segment every 2 s, from a few at the start), as the live ladder's would."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

MASTER = ("#EXTM3U\n#EXT-X-VERSION:3\n"
          "#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180\n360p/live.m3u8\n")


def make_segments(folder: Path, seconds: int = 40) -> tuple[list[str], list[tuple[str, str]]]:
    """The playlist's head lines and its (#EXTINF, segment) pairs, 320x180 with sound."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50",
         "-sc_threshold", "0", "-c:a", "aac", "-shortest", "-f", "hls", "-hls_time", "2",
         "-hls_playlist_type", "event", "-hls_segment_filename", str(folder / "seg_%05d.ts"),
         str(folder / "live.m3u8")], check=True)
    lines = (folder / "live.m3u8").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("#EXTINF"))
    head = [line for line in lines[:first] if line]
    body = [line for line in lines[first:] if line and line != "#EXT-X-ENDLIST"]
    pairs = [(body[i], body[i + 1]) for i in range(0, len(body) - 1, 2)]
    return head, pairs


class GrowingStream:
    """Serves /media/live/<key>/… to a page: the master, the rendition's EVENT playlist (with
    `start` segments at first, one more every 2 s) and the segments."""

    def __init__(self, folder: Path, key: str = "test-live", start: int = 4) -> None:
        self.folder = folder
        self.key = key
        self.head, self.pairs = make_segments(folder)
        self.start = start
        self.began = time.monotonic()

    @property
    def url(self) -> str:
        return f"/media/live/{self.key}/master.m3u8"

    def playlist(self) -> str:
        shown = min(len(self.pairs), self.start + int((time.monotonic() - self.began) / 2))
        return "\n".join(self.head + [line for pair in self.pairs[:shown] for line in pair]) \
            + "\n"

    def route(self, page: Any) -> None:
        def serve(route: Any) -> None:
            name = route.request.url.split("?")[0].rsplit("/", 1)[-1]
            if name == "master.m3u8":
                route.fulfill(body=MASTER, content_type="application/vnd.apple.mpegurl")
            elif name == "live.m3u8":
                route.fulfill(body=self.playlist(),
                              content_type="application/vnd.apple.mpegurl")
            elif (self.folder / name).is_file() and name.startswith("seg_"):
                route.fulfill(body=(self.folder / name).read_bytes(), content_type="video/mp2t")
            else:
                route.fulfill(status=404, body="")

        page.route(f"**/media/live/{self.key}/**", serve)
