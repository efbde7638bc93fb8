"""Finishing a resumable upload: clicks that come together make one recording, and a file that
is no recording ends the upload instead of leaving one that says it is complete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.streaming.test_recordings import _session


def test_clicks_that_come_together_finish_an_upload_once(staff, db, clips, live_server):
    editor, event_id = _session(staff, db)
    data = clips["video"].read_bytes()
    url = editor.post(f"/api/events/{event_id}/uploads", json={"size": len(data)}).json()["url"]
    assert editor.patch(url, content=data, headers={"Upload-Offset": "0"}).status_code == 204
    cookies = {cookie.name: cookie.value for cookie in editor.cookies.jar}
    headers = {"X-CSRF-Token": editor.headers["X-CSRF-Token"]}

    def finish(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_server, cookies=cookies, headers=headers,
                          timeout=30) as http:
            return http.post(f"{url}/recording")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(finish, range(4)))
    assert [answer.status_code for answer in answers] == [202] * 4, [a.text for a in answers]
    assert len({answer.json()["job_id"] for answer in answers}) == 1


def test_an_upload_that_is_no_recording_ends(staff, db):
    editor, event_id = _session(staff, db)
    url = editor.post(f"/api/events/{event_id}/uploads", json={"size": 10}).json()["url"]
    assert editor.patch(url, content=b"0123456789",
                        headers={"Upload-Offset": "0"}).status_code == 204
    refused = editor.post(f"{url}/recording")
    assert (refused.status_code, refused.json()["error"]) == (422, "not_a_recording")
    assert editor.get(url).status_code == 404  # not "complete" with nothing behind it
