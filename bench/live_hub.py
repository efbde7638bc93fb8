"""The live ladder inside the app: a 720p30 publisher (testsrc2 and a sine, `-re`, FLV as RTMP
carries it) written into the hub's feed (streaming.live_hub, the fronts' interface) for N
seconds while the session is on air, then `ended`. No RTMP front and no viewers: what the
encoder half costs and how fast it publishes (bench/live_ingest.py, the whole path, is the
ingest's).

Prints: the time from a segment's first frame arriving to the segment being listed in the
public playlist (p50, max; the target is the segment's length plus 1 s), the encoder's share of
the machine's cores, the archive's duration against the time on air, and `ended` → `vod`.

    .venv/bin/python bench/live_hub.py [seconds]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from events.models import Event, Role, Unit  # noqa: E402
from events.staff import UserCreate, create_user  # noqa: E402
from server.app import create_app  # noqa: E402
from server.cli import migrate  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import get_engine  # noqa: E402
from streaming.live_playlists import parse_run  # noqa: E402

PASSWORD = "bench-password-42"
TICKS = os.sysconf("SC_CLK_TCK")


def _session(client: TestClient, engine: object) -> int:
    with Session(engine) as db:  # type: ignore[arg-type]
        create_user(db, None, UserCreate(username="bench", password=PASSWORD, role=Role.admin))
        unit = db.exec(select(Unit)).first()
        assert unit is not None
        unit_id = unit.id
        db.commit()
    csrf = client.post("/api/session", json={"username": "bench", "password": PASSWORD}).json()
    assert "csrf_token" in csrf, csrf
    client.headers["X-CSRF-Token"] = csrf["csrf_token"]
    now = datetime.now(UTC)
    body = {"kind": "open_meeting", "unit_id": unit_id, "title": "直播测试", "summary": "测试",
            "starts_at": (now + timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(), "mode": "online", "venue": "",
            "address": "", "capacity": 30,
            "registration_opens_at": (now - timedelta(days=1)).isoformat(),
            "registration_closes_at": (now + timedelta(minutes=4)).isoformat(),
            "moderation": "pre", "premiere_at": None}
    event_id = int(client.post("/api/events", json=body).json()["id"])
    for status in ("pending_review", "published", "live"):
        answer = client.post(f"/api/events/{event_id}/status", json={"status": status})
        assert answer.status_code == 200, answer.text
    return event_id


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    folder = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=folder, secret_key="bench-secret-key-of-at-least-32-bytes",
                        rtmp_port=0, public_url="http://testserver")
    migrate(settings)
    app = create_app(settings)
    engine = get_engine(settings.sqlalchemy_url)
    publisher = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                 f"testsrc2=size=1280x720:rate=30:duration={seconds}", "-f", "lavfi", "-i",
                 f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset",
                 "ultrafast", "-g", "60", "-b:v", "3000k", "-c:a", "aac", "-flush_packets", "1",
                 "-f", "flv", "pipe:1"]
    with TestClient(app) as client:
        assert client.portal is not None
        event_id = _session(client, engine)
        hub = app.state.live_hub
        feed = client.portal.call(hub.open_feed, event_id, "rtmp", "flv")
        seen: dict[str, float] = {}
        encoder_cpu = [0.0]
        done = threading.Event()

        def pump() -> None:
            process = subprocess.Popen(publisher, stdout=subprocess.PIPE)
            assert process.stdout is not None
            while chunk := process.stdout.read1(32 * 1024):
                client.portal.call(feed.write, chunk)  # type: ignore[union-attr]
            process.wait()
            done.set()

        thread = threading.Thread(target=pump, daemon=True)
        started = time.monotonic()
        thread.start()
        url = ""
        segments = []
        while not done.is_set():
            time.sleep(0.1)
            run = hub.runs.get(event_id)
            if run is not None and run.process is not None:
                encoder_cpu[0] = max(encoder_cpu[0], _cpu_s(run.process.pid))
            if not url:
                playback = client.get(f"/api/events/{event_id}/playback").json()
                url = (playback["hls_url"] or "").replace("master.m3u8", "720p/live.m3u8")
                continue
            segments = parse_run(client.get(url).text)
            now = datetime.now(UTC)
            for segment in segments:
                if segment.uri not in seen and segment.at is not None:
                    seen[segment.uri] = (now - segment.at).total_seconds()
        elapsed = time.monotonic() - started
        with Session(engine) as db:
            found = db.get(Event, event_id)
            assert found is not None
            found.starts_at = datetime.now(UTC) - timedelta(minutes=1)
            db.add(found)
            db.commit()
        event = client.post(f"/api/events/{event_id}/status", json={"status": "ended"})
        assert event.status_code == 200, event.text
        ended = time.monotonic()
        while (playback := client.get(f"/api/events/{event_id}/playback").json())["state"] \
                != "vod":
            time.sleep(0.1)
            assert time.monotonic() - ended < 60, "no vod within a minute"
        to_vod = time.monotonic() - ended
        thread.join()
    waits = sorted(seen.values())
    cores = os.cpu_count() or 1
    print(f"720p30 for {seconds} s through the hub → 720p/480p/360p + audio; {cores} cores")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| first frame of a segment → listed in the public playlist, p50 | "
          f"{statistics.median(waits):.2f} s |")
    print(f"| … max (target: 2 s segment + 1 s) | {max(waits):.2f} s |")
    print(f"| segments listed | {len(waits)} |")
    print(f"| encoder CPU share of the {cores} cores | "
          f"{encoder_cpu[0] / elapsed / cores * 100:.0f} % |")
    print(f"| archive duration / publisher's duration | {playback['duration_s']:.1f} s / "
          f"{seconds} s |")
    print(f"| `ended` → `vod` | {to_vod:.1f} s |")


if __name__ == "__main__":
    main()
