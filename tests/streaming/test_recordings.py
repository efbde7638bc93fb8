"""Upload → job → published HLS, with real ffmpeg on clips of a few seconds; the fakes refused."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from server.config import Settings
from server.db import get_engine
from streaming import jobs
from streaming.models import Recording, TranscodeJob
from streaming.transcode import run_one
from tests.conftest import event_body, publish
from tests.streaming.live import _upload


def _session(staff: Any, db: Session, **overrides: Any) -> tuple[Any, int]:
    editor = staff("editor", "education")
    now = datetime.now(UTC)
    body = event_body(db, **{"starts_at": (now - timedelta(hours=3)).isoformat(),
                             "ends_at": (now - timedelta(hours=1)).isoformat(),
                             "registration_opens_at": (now - timedelta(days=2)).isoformat(),
                             "registration_closes_at": (now - timedelta(hours=4)).isoformat(),
                             **overrides})
    created = editor.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    return editor, int(created.json()["id"])


def _run_jobs(settings: Settings) -> None:
    while run_one(settings):
        pass


def _ffprobe_duration(path: Path) -> float:
    found = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                            "-of", "json", str(path)], capture_output=True, check=True)
    return float(json.loads(found.stdout)["format"]["duration"])


def test_upload_becomes_hls_that_plays_to_the_right_duration(staff, db, settings, clips):
    editor, event_id = _session(staff, db)
    answer = _upload(editor, event_id, clips["video"], name="../../etc/passwd")
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    queued = editor.get(f"/api/jobs/{job_id}").json()
    assert (queued["state"], queued["progress"]) == ("queued", 0)
    _run_jobs(settings)
    done = editor.get(f"/api/jobs/{job_id}").json()
    assert (done["state"], done["progress"], done["error"]) == ("succeeded", 1, "")
    recording = db.exec(select(Recording).where(Recording.event_id == event_id)).one()
    folder = settings.media_dir / "hls" / recording.media_key
    assert recording.renditions == "360p"
    assert abs(_ffprobe_duration(folder / "master.m3u8") - 3.0) < 0.3
    assert (folder / "poster.jpg").stat().st_size > 0
    assert "thumbs-001.jpg#xywh=0,0,160,90" in (folder / "thumbs.vtt").read_text()
    assert not list(settings.media_dir.rglob("passwd"))
    assert not list((settings.media_dir / "uploads").iterdir())


def test_playlists_and_segments_are_served_with_their_types_caching_and_ranges(
        client, staff, db, settings, clips):
    editor, event_id = _session(staff, db)
    assert _upload(editor, event_id, clips["video"]).status_code == 202
    _run_jobs(settings)
    admin = staff("admin")
    publish(admin, event_id)
    assert admin.post(f"/api/events/{event_id}/close",
                      json={"minutes": "会议纪要：听取意见。"}).status_code == 200
    playback = client.get(f"/api/events/{event_id}/playback").json()
    assert playback["state"] == "vod" and playback["duration_s"] == pytest.approx(3, abs=0.2)
    master = client.get(playback["hls_url"])
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["cache-control"] == "public, max-age=10"
    variant_url = playback["hls_url"].replace("master.m3u8", "360p/index.m3u8")
    assert "seg_00000.ts" in client.get(variant_url).text
    segment_url = playback["hls_url"].replace("master.m3u8", "360p/seg_00000.ts")
    whole = client.get(segment_url)
    assert whole.headers["content-type"] == "video/mp2t"
    assert "immutable" in whole.headers["cache-control"]
    part = client.get(segment_url, headers={"Range": "bytes=0-187"})
    assert part.status_code == 206 and part.content == whole.content[:188]
    assert client.get(playback["hls_url"].replace("master.m3u8", "../../kaifang.db")) \
        .status_code == 404


@pytest.mark.parametrize(("clip", "status", "code"), [
    ("fake", 422, "not_a_recording"), ("cut", 422, "not_a_recording"),
    ("empty", 422, "empty_file"),
])
def test_fakes_are_refused_and_nothing_is_queued(staff, db, settings, clips, clip, status,
                                                 code):
    editor, event_id = _session(staff, db)
    answer = _upload(editor, event_id, clips[clip])
    assert (answer.status_code, answer.json()["error"]) == (status, code)
    assert db.exec(select(TranscodeJob)).all() == []
    assert not list((settings.media_dir / "uploads").iterdir())
    assert not list((settings.media_dir / "sources").iterdir())


def test_a_file_over_the_limit_is_413_and_not_kept(staff, db, settings, clips, app):
    app.state.settings = settings.model_copy(update={"max_upload_bytes": 10_000})
    editor, event_id = _session(staff, db)
    answer = _upload(editor, event_id, clips["video"])
    assert (answer.status_code, answer.json()["error"]) == (413, "too_large")
    assert not list((settings.media_dir / "uploads").iterdir())


def test_only_the_unit_and_the_office_upload(client, staff, db, clips):
    _editor, event_id = _session(staff, db)
    other = staff("editor", "health")
    host = staff("host")
    assert _upload(client, event_id, clips["video"]).status_code == 401
    assert _upload(other, event_id, clips["video"]).status_code == 404  # a draft: not theirs
    assert _upload(host, event_id, clips["video"]).status_code in (403, 404)
    assert _upload(staff("admin"), event_id, clips["video"]).status_code == 202


def test_an_audio_only_recording_gets_an_audio_rendition_and_a_still(staff, db, settings,
                                                                      clips):
    editor, event_id = _session(staff, db)
    assert _upload(editor, event_id, clips["audio"], name="talk.m4a").status_code == 202
    _run_jobs(settings)
    recording = db.exec(select(Recording).where(Recording.event_id == event_id)).one()
    folder = settings.media_dir / "hls" / recording.media_key
    assert recording.renditions == "audio"
    assert (folder / "poster.jpg").exists()
    assert abs(_ffprobe_duration(folder / "master.m3u8") - 2.0) < 0.3


def test_a_resumable_upload_goes_on_from_the_offset_after_a_drop(staff, db, settings, clips):
    editor, event_id = _session(staff, db)
    data = clips["video"].read_bytes()
    opened = editor.post(f"/api/events/{event_id}/uploads", json={"size": len(data)})
    assert opened.status_code == 201, opened.text
    url = opened.json()["url"]
    half = len(data) // 2
    first = editor.patch(url, content=data[:half], headers={"Upload-Offset": "0"})
    assert first.status_code == 204 and first.headers["upload-offset"] == str(half)
    # The connection dropped before the answer: the client asks where the server stands.
    assert editor.get(url).json()["offset"] == half
    stale = editor.patch(url, content=data[:half], headers={"Upload-Offset": "0"})
    assert (stale.status_code, stale.json()["offset"]) == (409, half)
    early = editor.post(f"{url}/recording")
    assert (early.status_code, early.json()["error"]) == (409, "upload_incomplete")
    rest = editor.patch(url, content=data[half:], headers={"Upload-Offset": str(half)})
    assert rest.headers["upload-offset"] == str(len(data))
    too_much = editor.patch(url, content=b"x", headers={"Upload-Offset": str(len(data))})
    assert too_much.status_code == 413
    finished = editor.post(f"{url}/recording")
    assert finished.status_code == 202
    assert editor.post(f"{url}/recording").json() == finished.json()  # a double click
    _run_jobs(settings)
    job = editor.get(f"/api/jobs/{finished.json()['job_id']}").json()
    assert job["state"] == "succeeded"
    assert staff("editor", "education").get(url).status_code == 404  # someone else's upload


def test_a_dead_workers_job_is_taken_up_again_after_its_lease(staff, db, settings, clips):
    editor, event_id = _session(staff, db)
    job_id = _upload(editor, event_id, clips["video"]).json()["job_id"]
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as dying:
        assert jobs.claim(dying).id == job_id  # claimed, then the worker is killed
    assert run_one(settings) is False  # its lease still holds
    later = datetime.now(UTC) + jobs.LEASE + timedelta(seconds=1)
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as worker:
        taken = jobs.claim(worker, later)
    assert taken is not None and (taken.id, taken.attempts) == (job_id, 2)
    # The worker that took it over (or the restarted one) runs it to its end.
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as worker:
        worker.execute(update(TranscodeJob).where(col(TranscodeJob.id) == job_id)
                       .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1)))
        worker.commit()
    assert run_one(settings) is True
    assert editor.get(f"/api/jobs/{job_id}").json()["state"] == "succeeded"


def test_a_failing_job_retries_then_fails_with_ffmpegs_words(staff, db, settings, clips):
    editor, event_id = _session(staff, db)
    job_id = _upload(editor, event_id, clips["video"]).json()["job_id"]
    recording = db.exec(select(Recording).where(Recording.event_id == event_id)).one()
    (settings.media_dir / "sources" / f"{recording.id}.src").write_bytes(b"garbage" * 100)
    now = datetime.now(UTC)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        db.expire_all()
        job = db.get(TranscodeJob, job_id)
        job.due_at = now  # the backoff has passed
        db.add(job)
        db.commit()
        assert run_one(settings) is True
        state = editor.get(f"/api/jobs/{job_id}").json()
        assert state["attempts"] == attempt
    assert state["state"] == "failed"
    assert "Invalid data" in state["error"]
    assert editor.get(f"/api/events/{event_id}/playback").json()["hls_url"] is None


def test_captions_attach_to_the_recording_that_plays(client, staff, db, settings, clips):
    editor, event_id = _session(staff, db)

    def attach(who: Any, content: bytes, **form: str) -> Any:
        return who.post(f"/api/events/{event_id}/tracks", files={"file": ("a.srt", content)},
                        data={"kind": "captions", "language": "zh", "label": "中文", **form})

    srt = b"1\n00:00:00,500 --> 00:00:02,000\nhello\n"
    assert attach(editor, srt).json()["error"] == "no_recording"
    assert _upload(editor, event_id, clips["video"]).status_code == 202
    _run_jobs(settings)
    assert attach(editor, b"not captions").json()["error"] == "invalid_track"
    assert attach(editor, srt, kind="karaoke").status_code == 422
    assert attach(staff("editor", "health"), srt).status_code == 404
    made = attach(editor, srt)
    assert made.status_code == 201, made.text
    again = attach(editor, srt.replace(b"hello", b"hello again"))  # replaces zh captions
    listed = editor.get(f"/api/events/{event_id}/tracks").json()
    assert [t["id"] for t in listed] == [again.json()["id"]]
    vtt = editor.get(listed[0]["src"])
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text == "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nhello again\n"
    assert client.get(listed[0]["src"]).status_code == 404  # a draft: not public yet


def test_two_workers_never_take_the_same_job(staff, db, settings, clips):
    """Claims are exclusive across workers (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""
    from concurrent.futures import ThreadPoolExecutor

    editor, event_id = _session(staff, db)
    made = [_upload(editor, event_id, clips["audio"]).json()["job_id"] for _ in range(3)]

    def claim_one(_: int) -> int | None:
        with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as worker:
            job = jobs.claim(worker)
            return job.id if job else None

    with ThreadPoolExecutor(6) as pool:
        taken = [job_id for job_id in pool.map(claim_one, range(6)) if job_id is not None]
    assert sorted(taken) == sorted(made)


def test_ffmpeg_runs_in_a_child_process_below_the_web_service(tmp_path, monkeypatch):
    """The child's niceness is raised before it runs ffmpeg (the web service keeps the CPU)."""
    import os

    from streaming import ffmpeg_child

    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho \"progress=end\"\nnice >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg_child, "FFMPEG", str(fake))
    code, said = ffmpeg_child.run_ffmpeg([], 1.0, lambda fraction: True)
    assert code == 3
    assert int(said) == os.nice(0) + ffmpeg_child.NICENESS


def test_unfinished_uploads_are_given_up_after_a_day(staff, db, settings, clips):
    import os

    editor, event_id = _session(staff, db)
    url = editor.post(f"/api/events/{event_id}/uploads", json={"size": 1000}).json()["url"]
    editor.patch(url, content=b"x" * 400, headers={"Upload-Offset": "0"})
    uploads = settings.media_dir / "uploads"
    orphan = uploads / "cut-off.part"  # a whole upload whose connection dropped
    orphan.write_bytes(b"y" * 10)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).timestamp()
    os.utime(orphan, (week_ago, week_ago))
    with Session(get_engine(settings.sqlalchemy_url)) as worker:
        assert jobs.forget_stale_uploads(worker, uploads) == 0  # still being sent
        worker.commit()
    assert not orphan.exists() and len(list(uploads.iterdir())) == 1
    with Session(get_engine(settings.sqlalchemy_url)) as worker:
        later = datetime.now(UTC) + jobs.UPLOAD_KEPT + timedelta(minutes=1)
        assert jobs.forget_stale_uploads(worker, uploads, later) == 1
        worker.commit()
    assert list(uploads.iterdir()) == []
    assert editor.get(url).status_code == 404


def test_the_recordings_api_answers_what_its_document_says(client, staff, db, settings, clips):
    from tests.server.test_openapi import check

    doc = client.get("/api/openapi.json").json()
    editor, event_id = _session(staff, db)
    with clips["video"].open("rb") as handle:
        created = editor.post(f"/api/events/{event_id}/recording",
                              files={"file": ("a.mp4", handle)})
    job_id = check(doc, "post", "/api/events/{event_id}/recording", created, 202)["job_id"]
    check(doc, "get", "/api/jobs/{job_id}", editor.get(f"/api/jobs/{job_id}"), 200)
    _run_jobs(settings)
    check(doc, "get", "/api/events/{event_id}/playback",
          editor.get(f"/api/events/{event_id}/playback"), 200)
    opened = editor.post(f"/api/events/{event_id}/uploads", json={"size": 10})
    url = check(doc, "post", "/api/events/{event_id}/uploads", opened, 201)["url"]
    token_path = "/api/uploads/{token}"
    wrong = editor.patch(url, content=b"12345", headers={"Upload-Offset": "3"})
    check(doc, "patch", token_path, wrong, 409)
    check(doc, "get", token_path, editor.get(url), 200)
    check(doc, "post", "/api/uploads/{token}/recording", editor.post(f"{url}/recording"), 409)
    track = editor.post(f"/api/events/{event_id}/tracks",
                        files={"file": ("a.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")})
    check(doc, "post", "/api/events/{event_id}/tracks", track, 201)
    check(doc, "get", "/api/events/{event_id}/tracks",
          editor.get(f"/api/events/{event_id}/tracks"), 200)
    fake = editor.post(f"/api/events/{event_id}/recording",
                       files={"file": ("a.mp4", b"not a video")})
    check(doc, "post", "/api/events/{event_id}/recording", fake, 422)


def test_a_failed_re_upload_leaves_the_good_recording_playing(client, staff, db, settings,
                                                             clips):
    editor, event_id = _session(staff, db)
    assert _upload(editor, event_id, clips["video"]).status_code == 202
    _run_jobs(settings)
    admin = staff("admin")
    publish(admin, event_id)
    assert admin.post(f"/api/events/{event_id}/close", json={"minutes": "纪要"}).status_code \
        == 200
    playing = client.get(f"/api/events/{event_id}/playback").json()["hls_url"]
    assert playing and client.get(playing).status_code == 200
    # A second upload whose transcode fails for good (its source damaged on disk).
    second = _upload(editor, event_id, clips["audio"]).json()["job_id"]
    recording_id = db.exec(select(TranscodeJob.recording_id)
                           .where(TranscodeJob.id == second)).one()
    (settings.media_dir / "sources" / f"{recording_id}.src").write_bytes(b"damaged" * 50)
    for _ in range(jobs.MAX_ATTEMPTS):
        with Session(get_engine(settings.sqlalchemy_url)) as worker:
            worker.execute(update(TranscodeJob).where(col(TranscodeJob.id) == second)
                           .values(due_at=datetime.now(UTC)))
            worker.commit()
        run_one(settings)
    assert editor.get(f"/api/jobs/{second}").json()["state"] == "failed"
    assert client.get(f"/api/events/{event_id}/playback").json()["hls_url"] == playing
    assert client.get(playing).status_code == 200
    room = client.get(f"/events/{event_id}/live").text
    assert "纪要" in room and "邀请家长代表列席" in room  # the minutes and the summary
