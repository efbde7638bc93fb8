"""Log lines as text or, with KAIFANG_LOG_FORMAT=json, one JSON object a line. Issue 19 fills
this in."""

from __future__ import annotations
