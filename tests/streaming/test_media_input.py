"""Bad input to the media routes is a 4xx with a JSON code, never a 500: odd media paths,
malformed multipart bodies, offsets that are not numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from tests.conftest import event_body

KEY = "1-1-0123456789abcdef01234567"


def _session(staff: Any, db: Session) -> tuple[Any, int]:
    editor = staff("editor", "education")
    now = datetime.now(UTC)
    body = event_body(db, **{"starts_at": (now - timedelta(hours=3)).isoformat(),
                             "ends_at": (now - timedelta(hours=1)).isoformat(),
                             "registration_opens_at": (now - timedelta(days=2)).isoformat(),
                             "registration_closes_at": (now - timedelta(hours=4)).isoformat()})
    created = editor.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    return editor, int(created.json()["id"])


@pytest.mark.parametrize("path", [
    f"/media/hls/{KEY}/master%00.m3u8",
    f"/media/hls/{KEY}%00/master.m3u8",
    f"/media/hls/{KEY}/{'a' * 300}.ts",
    f"/media/hls/{KEY}/{'a/' * 2100}seg.ts",
    f"/media/hls/{KEY}/{'a' * 250}/{'b' * 250}/{'c' * 250}/seg.ts",
    f"/media/hls/{'1' * 300}-1-0123456789abcdef/master.m3u8",
    f"/media/hls/{KEY}/360p/..%2f..%2f..%2fkaifang.db",
])
def test_odd_media_paths_are_404_not_500(client, path):
    answer = client.get(path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"


def _multipart(editor: Any, event_id: int, body: bytes,
               boundary: str = "XyZ") -> Any:
    return editor.post(f"/api/events/{event_id}/recording", content=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


PART = b'Content-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'


@pytest.mark.parametrize("body", [
    b"--XyZ\r\n" + PART + b"data data",  # cut off before the closing boundary
    b"--XyQ\r\n" + PART + b"data\r\n--XyQ--\r\n",  # another boundary than declared
    b"garbage without any boundary at all",
    b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nX-Long: "
    + b"x" * 20_000 + b"\r\n\r\ndata\r\n--XyZ--\r\n",  # "Maximum header size exceeded"
    b"--XyZ\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + PART
    + b"data\r\n--XyZ--\r\n",  # too many part headers
    b"--XyZ\r\nno colon in this header line\r\n\r\ndata\r\n--XyZ--\r\n",
])
def test_malformed_multipart_is_400_with_a_code(staff, db, settings, body):
    editor, event_id = _session(staff, db)
    answer = _multipart(editor, event_id, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "malformed_multipart"
    assert not list((settings.media_dir / "uploads").iterdir())


def test_malformed_multipart_to_the_tracks_is_400_with_a_code(staff, db):
    editor, event_id = _session(staff, db)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.vtt\"\r\n"
            b"X-Long: " + b"x" * 20_000 + b"\r\n\r\nWEBVTT\r\n--XyZ--\r\n")
    answer = editor.post(f"/api/events/{event_id}/tracks", content=body,
                         headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert answer.status_code == 400, answer.text
    assert "error" in answer.json()


@pytest.mark.parametrize("offset", ["²", "١٢", "9" * 5000, "-1", "+5", "0x10", "1e3",
                                    "5 6"])
def test_an_upload_offset_that_is_not_a_plain_number_is_400_bad_offset(staff, db, offset):
    editor, event_id = _session(staff, db)
    url = editor.post(f"/api/events/{event_id}/uploads", json={"size": 100}).json()["url"]
    answer = editor.patch(url, content=b"x" * 10,
                          headers={"Upload-Offset": offset.encode("utf-8")})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_offset"
    assert editor.get(url).json()["offset"] == 0


def test_an_upload_without_an_offset_still_says_which_header(staff, db):
    editor, event_id = _session(staff, db)
    url = editor.post(f"/api/events/{event_id}/uploads", json={"size": 100}).json()["url"]
    answer = editor.patch(url, content=b"x" * 10)
    assert answer.json()["error"] == "offset_required"
