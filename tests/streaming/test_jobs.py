"""Transcode jobs in the database: fencing, the database's clock, bounded attempts, fairness
between units, a folder per attempt and the sweep of what dead attempts left."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from server.db import get_engine
from streaming import jobs
from streaming.ladder import Source
from streaming.storage import LocalStorage
from tests.streaming.jobs_helpers import claim, fresh, queue, recording_of, run_out, unit_session


def test_a_run_that_lost_its_lease_can_neither_publish_nor_mark_the_job(staff, db, settings):
    job = queue(db, settings, unit_session(staff, db, "education"))
    engine = get_engine(settings.sqlalchemy_url)
    first = claim(settings)
    assert first is not None and first.id == job.id
    run_out(settings, job.id)  # A stalls; its lease runs out and B takes the job over
    second = claim(settings)
    assert second is not None and (second.id, second.attempts) == (job.id, 2)
    assert first.lease != second.lease
    with Session(engine, expire_on_commit=False) as db_a:
        assert jobs.renew(db_a, first.id, first.lease, 0.5) is False
        assert jobs.succeed(db_a, first, "a-key", ["360p"]) is None
        assert jobs.fail(db_a, first, "A's complaint") is None
        assert jobs.release(db_a, first) is False
    now = fresh(settings, job.id)
    assert (now.state, now.lease, now.attempts, now.error) == ("running", second.lease, 2, "")
    assert recording_of(settings, job).media_key == ""  # A's output was never named
    with Session(engine, expire_on_commit=False) as db_b:
        assert jobs.renew(db_b, second.id, second.lease, 0.5) is True
        recording = jobs.succeed(db_b, second, "b-key", ["360p"])
    assert recording is not None and recording.media_key == "b-key"
    assert (fresh(settings, job.id).state, recording.state) == ("succeeded", "succeeded")


def test_leases_are_compared_with_the_databases_clock(staff, db, settings, clock):
    job = queue(db, settings, unit_session(staff, db, "education"))
    assert claim(settings) is not None
    clock.advance(timedelta(hours=1))  # a worker whose own clock runs an hour ahead
    assert claim(settings) is None  # the lease still holds by the database's clock
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as worker:
        held = fresh(settings, job.id)
        assert jobs.renew(worker, held.id, held.lease, 0.2)
    renewed = fresh(settings, job.id).claimed_until
    assert renewed is not None and renewed < clock.now - timedelta(minutes=50)


def test_an_abandoned_job_ends_failed_after_its_attempts_not_claimed_forever(
        staff, db, settings):
    event = unit_session(staff, db, "education")
    job = queue(db, settings, event)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        taken = claim(settings)
        assert taken is not None and (taken.id, taken.attempts) == (job.id, attempt)
        run_out(settings, job.id)  # its worker was killed mid-run
    assert claim(settings) is None
    ended = staff("admin").get(f"/api/jobs/{job.id}").json()
    assert (ended["state"], ended["attempts"]) == ("failed", jobs.MAX_ATTEMPTS)
    assert "interrupted 3 times" in ended["error"] and "已放弃" in ended["error"]
    assert recording_of(settings, job).state == "failed"


def test_the_next_job_is_from_the_unit_that_has_had_the_least_running(staff, db, settings):
    busy = unit_session(staff, db, "education")
    other = unit_session(staff, db, "health")
    a1, a2, a3 = (queue(db, settings, busy) for _ in range(3))
    b1 = queue(db, settings, other)
    engine = get_engine(settings.sqlalchemy_url)

    def take() -> int | None:
        taken = claim(settings)
        if taken is None:
            return None
        with Session(engine, expire_on_commit=False) as worker:
            jobs.succeed(worker, taken, f"k{taken.id}", ["360p"])
        return taken.id

    first = claim(settings)  # neither unit has run anything: the oldest job
    assert first is not None and first.id == a1.id
    assert take() == b1.id  # the education bureau has one running: the health bureau's next
    with Session(engine, expire_on_commit=False) as worker:
        jobs.succeed(worker, first, "k1", ["360p"])
    assert take() == a2.id
    b2 = queue(db, settings, other)  # queued after a3, but its unit last ran longer ago
    assert take() == b2.id
    assert take() == a3.id
    assert take() is None


def test_the_short_lane_takes_no_long_recording(staff, db, settings):
    event = unit_session(staff, db, "education")
    long = queue(db, settings, event, source=Source(3600.0, 640, 360, True))
    short = queue(db, settings, event, source=Source(6.0, 640, 360, True))
    taken = claim(settings, longest_s=600)
    assert taken is not None and taken.id == short.id
    assert claim(settings, longest_s=600) is None
    anything = claim(settings)
    assert anything is not None and anything.id == long.id


def test_each_attempt_has_its_own_folder_and_what_dead_ones_left_is_swept(staff, db, settings):
    from streaming.transcode import sweep

    storage = LocalStorage(settings.media_dir)
    event = unit_session(staff, db, "education")
    job = queue(db, settings, event)
    first = claim(settings)
    assert first is not None and first.id is not None
    mine = storage.work_dir(first.id, first.lease)
    (mine / "seg_00000.ts").write_bytes(b"A's segment")
    run_out(settings, job.id)
    second = claim(settings)
    assert second is not None and second.id is not None
    theirs = storage.work_dir(second.id, second.lease)
    assert (mine / "seg_00000.ts").read_bytes() == b"A's segment"  # not emptied by B
    # A died after publishing and before marking the job; B is still running.
    (mine / "master.m3u8").write_text("#EXTM3U\n")
    orphan = storage.publish(mine, event.id, job.recording_id)
    assert sweep(db, storage) == 0  # B may still publish: A's folder is kept meanwhile
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as worker:
        assert jobs.succeed(worker, second, storage.publish(theirs, event.id,
                                                            job.recording_id), ["360p"])
    kept = recording_of(settings, job).media_key
    dead = storage.work_dir(second.id, "a-dead-attempt")
    assert sweep(db, storage) == 2
    assert not (storage.hls_root / orphan).exists() and not dead.exists()
    assert (storage.hls_root / kept).is_dir()
