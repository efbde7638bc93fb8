"""A Chromium with a fake camera and microphone (its test pattern and a beep), allowed without
asking: the go-live page's browser tests. Launched by the session's Playwright (the `browser`
fixture's), not a second one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def camera_browser(browser: Any) -> Iterator[Any]:
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                           args=[*CHROMIUM_ARGS, *FAKE_MEDIA])
    yield chromium
    chromium.close()
