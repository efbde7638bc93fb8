"""What the recordings API answers, as models (the XPublic pattern of events/schemas.py)."""

from __future__ import annotations

from typing import Literal

from events.schemas import IsoTime, PublicModel


class JobCreated(PublicModel):
    job_id: int


class JobPublic(PublicModel):
    id: int
    event_id: int
    recording_id: int
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    error: str
    attempts: int


class UploadPublic(PublicModel):
    upload_id: str
    event_id: int
    size: int
    offset: int
    job_id: int | None
    url: str


class TrackPublic(PublicModel):
    id: int
    kind: Literal["captions", "subtitles", "chapters"]
    srclang: str
    label: str
    src: str
    default: bool


class PlaybackPublic(PublicModel):
    state: Literal["upcoming", "premiere", "live", "vod", "unavailable"]
    hls_url: str | None
    server_time: IsoTime
    position_s: float | None
    duration_s: float | None
    premiere_at: IsoTime | None
    poster_url: str | None
    thumbnails_url: str | None
    # A live webcast's publisher: on | waiting (dropped, within the grace time) | lost | null.
    signal: Literal["on", "waiting", "lost"] | None = None


class WebcastPublic(PublicModel):
    """A session's webcast as the console shows it (GET /api/events/{id}/live)."""

    state: Literal["idle", "preview", "on_air", "waiting", "ended"]
    signal: Literal["on", "waiting", "lost"] | None
    source: Literal["rtmp", "browser"] | None
    width: int
    height: int
    runs: int
    on_air_at: IsoTime | None
    preview_url: str | None
    last_error: str
    peak_viewers: int
    total_viewers: int
    recording_id: int | None


class ViewerJoined(PublicModel):
    viewer_id: int
    viewer_token: str
    nickname: str


class LiveMessagePublic(PublicModel):
    seq: int | None
    id: int
    kind: Literal["comment", "question", "reply"]
    author: str
    text: str
    video_time: float | None
    created_at: IsoTime
    pinned: bool
    reply_to: int | None  # a host's reply (kind reply): the message it answers
    registered: bool  # its author linked a registration for the session
    viewer_id: int | None = None  # held messages, for hosts: whom to ban


class RoomRules(PublicModel):
    open: bool
    closed: bool
    moderation: Literal["pre", "post"]
    slow_mode_s: int


class BanDone(PublicModel):
    viewer_id: int
    removed: list[int]


class BlockedWords(PublicModel):
    words: list[str]


class QuestionPublic(PublicModel):
    """A question of a session's list; `voted`: the viewer the request's token or cookie names
    voted for it; `merged_into`, `message_id`: the question it joined, its chat message;
    `outcome`: a suggestion's (null: none given), `outcome_reason` shown with it (always for
    not_adopted)."""

    id: int
    text: str
    author: str
    votes: int
    state: Literal["held", "approved", "rejected", "shortlisted", "answering", "answered",
                   "merged"]
    answer: str
    answered_at_video_time: float | None
    answered_at: IsoTime | None
    created_at: IsoTime
    merged_into: int | None
    message_id: int | None
    voted: bool
    outcome: Literal["adopted", "partly_adopted", "not_adopted"] | None = None
    outcome_reason: str = ""
