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


GIB = 1024**3


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The free disk the upload checks see (bytes), set by the test."""
    from streaming import upload_room

    free = {"bytes": 100 * GIB}
    monkeypatch.setattr(upload_room, "free_bytes", lambda folder: free["bytes"])
    return free


def test_a_staff_member_holds_at_most_three_uploads_open(staff, db, disk):
    from sqlalchemy import update
    from sqlmodel import col

    from streaming import upload_room
    from streaming.models import Upload

    editor, event_id = _session(staff, db)
    opened = [editor.post(f"/api/events/{event_id}/uploads", json={"size": 1000})
              for _ in range(3)]
    assert [answer.status_code for answer in opened] == [201, 201, 201]
    fourth = editor.post(f"/api/events/{event_id}/uploads", json={"size": 1000})
    assert (fourth.status_code, fourth.json()["error"]) == (409, "too_many_uploads")
    assert fourth.json()["max_open"] == 3
    # Another member of the unit is not held up by these.
    colleague = staff("editor", "education")
    assert colleague.post(f"/api/events/{event_id}/uploads", json={"size": 1000}) \
        .status_code == 201
    # One left for an hour no longer counts toward the three (an abandoned attempt does not
    # lock its owner out until it is given up after a day).
    token = opened[0].json()["upload_id"]
    db.execute(update(Upload).where(col(Upload.token) == token)
               .values(updated_at=datetime.now(UTC) - upload_room.IDLE - timedelta(minutes=1)))
    db.commit()
    assert editor.post(f"/api/events/{event_id}/uploads", json={"size": 1000}) \
        .status_code == 201
    again = editor.post(f"/api/events/{event_id}/uploads", json={"size": 1000})
    assert again.status_code == 409


def test_open_uploads_may_not_promise_more_than_the_free_disk(staff, db, disk, settings):
    from sqlalchemy import update

    from streaming import jobs, upload_room
    from streaming.models import Upload

    disk["bytes"] = 10 * GIB  # the margin (2 GiB) leaves 8 for uploads
    editor, event_id = _session(staff, db)
    other = staff("editor", "education")
    assert settings.upload_disk_margin_bytes == 2 * GIB
    first = editor.post(f"/api/events/{event_id}/uploads", json={"size": 5 * GIB})
    assert first.status_code == 201
    full = other.post(f"/api/events/{event_id}/uploads", json={"size": 4 * GIB})
    assert (full.status_code, full.json()["error"]) == (507, "no_space")
    assert other.post(f"/api/events/{event_id}/uploads", json={"size": 3 * GIB}) \
        .status_code == 201
    # A whole upload that declares more than is left is refused before its body is read.
    whole = other.post(f"/api/events/{event_id}/recording",
                       files={"file": ("a.mp4", b"x" * 1000)})
    assert (whole.status_code, whole.json()["error"]) == (507, "no_space")
    assert not list((settings.media_dir / "uploads").iterdir())
    disk["bytes"] = 11 * GIB  # room again: the file itself is looked at (and is no video)
    whole = other.post(f"/api/events/{event_id}/recording",
                       files={"file": ("a.mp4", b"x" * 1000)})
    assert (whole.status_code, whole.json()["error"]) == (422, "not_a_recording")
    # An idle upload still holds its room on the disk; one given up after a day does not.
    disk["bytes"] = 10 * GIB
    db.execute(update(Upload).values(
        updated_at=datetime.now(UTC) - upload_room.IDLE - timedelta(minutes=1)))
    db.commit()
    idle = other.post(f"/api/events/{event_id}/uploads", json={"size": 1 * GIB})
    assert (idle.status_code, idle.json()["error"]) == (507, "no_space")
    db.execute(update(Upload).values(
        updated_at=datetime.now(UTC) - jobs.UPLOAD_KEPT - timedelta(minutes=1)))
    db.commit()
    assert other.post(f"/api/events/{event_id}/uploads", json={"size": 7 * GIB}) \
        .status_code == 201


def test_parallel_opens_cannot_pass_the_cap_together(staff, db, disk):
    from concurrent.futures import ThreadPoolExecutor

    editor, event_id = _session(staff, db)

    def open_one(_: int) -> int:
        return int(editor.post(f"/api/events/{event_id}/uploads",
                               json={"size": 1000}).status_code)

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(open_one, range(12)))
    assert statuses.count(201) == 3 and set(statuses) <= {201, 409, 503}


def test_a_content_length_of_thousands_of_digits_is_413_not_500(client, staff, db):
    editor, event_id = _session(staff, db)
    for who, path in ((client, "/api/events"), (editor, f"/api/events/{event_id}/recording")):
        request = who.build_request("POST", path, content=b"{}",
                                    headers={"Content-Type": "application/json"})
        request.headers["Content-Length"] = "9" * 5000
        answer = who.send(request)
        assert (answer.status_code, answer.json()["error"]) == (413, "too_large"), path
