"""What one publisher may send: a bitrate over a sliding window, and a picture size.

Averaged over a few seconds so a keyframe or a publisher catching up after a network stall is
not cut off, while a stream far above the cap is within seconds.
"""

from __future__ import annotations

from collections import deque

# The bitrate is measured over this sliding window.
RATE_WINDOW_S = 4.0
# A publisher at its cap sends a message more or less in a window, as its timing jitters.
TOLERANCE = 1.05
TOO_FAST = "推流码率超过上限（{kbps} kbps），推流已断开"
TOO_LARGE = "推流画面超过上限（{pixels} 像素），推流已断开"


class LimitExceeded(Exception):
    """`code` for the log (too_fast | too_large), `message` (Chinese) for the console."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class StreamLimits:
    def __init__(self, max_kbps: int, max_pixels: int, window_s: float = RATE_WINDOW_S) -> None:
        self.max_kbps = max_kbps
        self.max_pixels = max_pixels
        self.window_s = window_s
        self._sizes: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def count(self, now: float, size: int) -> None:
        """`size` media bytes arrived at `now` (monotonic seconds); LimitExceeded when the
        last window held more than the cap allows for a whole window."""
        self._sizes.append((now, size))
        self._bytes += size
        while self._sizes[0][0] <= now - self.window_s:
            self._bytes -= self._sizes.popleft()[1]
        if self._bytes * 8 > self.max_kbps * 1000 * self.window_s * TOLERANCE:
            raise LimitExceeded("too_fast", TOO_FAST.format(kbps=self.max_kbps))

    def check_picture(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise LimitExceeded("too_large", TOO_LARGE.format(pixels=self.max_pixels))
