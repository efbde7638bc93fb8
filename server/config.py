"""Settings from the environment (the KAIFANG_ variables of the contract)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import tempfile
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("kaifang")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(value: str) -> str:
    """The host of a Host header or a host[:port] setting, lower-case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


# Anything shorter can be guessed or forged (an empty key signs an admin's cookie for anyone).
MIN_SECRET_KEY_BYTES = 32


class ConfigError(Exception):
    """A setting the service cannot run with; the CLI prints it without a traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAIFANG_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    # Failed logins per (username, address) inside the window before 429.
    login_max_failures: int = 5
    login_window_s: int = 900
    session_max_age_s: int = 12 * 3600
    # Seconds a writer waits for a lock (a session's row, SQLite's write lock) before 503 busy.
    lock_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # Seconds an HTTP request waits for a request thread, from its arrival, before 503 busy
    # (server.threads): under a load the threads cannot serve, the queue holds no more.
    thread_wait_s: float = Field(default=10.0, gt=0, le=600)
    cookie_secure: bool = False
    # Registrations' personal data is erased this many days after a session ends.
    retention_days: int = Field(default=90, ge=1)
    # The broadcast plan (events.plan): a premiere is announced (published with its time) at
    # least this many days before it plays, and its video is on the portal within
    # archive_days after; a question still unanswered answer_days after its session is
    # flagged and its unit reminded.
    announce_days: int = Field(default=3, ge=0, le=60)
    archive_days: int = Field(default=7, ge=0, le=60)
    answer_days: int = Field(default=15, ge=1, le=365)
    # `kaifang serve` runs the worker (notifications, retention) in a thread unless false.
    embedded_worker: bool = True
    # Seconds the worker sleeps between rounds.
    worker_interval_s: float = Field(default=5.0, gt=0)
    # Who may frame the embeddable player (/embed/{id}): CSP frame-ancestors sources, e.g.
    # "https://www.bjxch.gov.cn"; the service's own pages always may.
    embed_ancestors: str = ""
    # `kaifang demo` makes and transcodes its test recordings unless false (quicker loads).
    demo_recordings: bool = True
    # The largest recording a unit may upload (bytes; default 8 GiB).
    max_upload_bytes: int = Field(default=8 * 1024**3, gt=0)
    # The address space a transcode's ffmpeg may use (MiB; RLIMIT_AS): a 1080p ladder needs
    # about 0.6 GiB on two cores, more with more cores (x264 runs a thread per core or so).
    transcode_memory_mb: int = Field(default=1536, ge=256)
    # Seconds a transcode's claim lasts unless its worker renews it (a timer renews it a few
    # times a lease while ffmpeg runs, however slow): a killed worker's job is taken up again
    # this long after its last renewal. Unset: streaming.jobs.LEASE (2 min). Keep it well above
    # KAIFANG_LOCK_TIMEOUT_S: a renewal may wait that long for the database.
    job_lease_s: float | None = Field(default=None, ge=2, le=3600)
    # A transcode stops, failed with 磁盘空间不足, when the media disk's free space falls below
    # this (bytes): the rest is kept for the database, live webcasts and uploads under way.
    media_reserve_bytes: int = Field(default=256 * 1024**2, ge=0)
    # A replaced recording's files (its HLS and its source) are deleted this many seconds after
    # its successor is published: a viewer fetching a segment of it is not cut off mid-way.
    replaced_media_grace_s: int = Field(default=600, ge=0)
    # Resumable uploads a staff member may have under way (sent to in the last hour), and the
    # disk the open ones may still fill: the free space less this margin (bytes).
    max_open_uploads: int = Field(default=3, ge=1)
    upload_disk_margin_bytes: int = Field(default=2 * 1024**3, ge=0)
    # Email delivery: smtp://, smtp+starttls:// or smtps://user:pass@host:port; unset: outbox.
    smtp_url: str | None = Field(default=None, repr=False)
    mail_from: str = "kaifang@localhost"
    # X-Forwarded-For names the client only when the peer is one of these (IPs, CIDRs, *).
    trusted_proxies: str = "127.0.0.1"
    # Public registration attempts per client address and per phone within the window (0: no
    # limit); then 429 too_many_requests with Retry-After. SMS any one number gets per day.
    registration_limit_per_address: int = Field(default=60, ge=0)
    registration_limit_per_phone: int = Field(default=5, ge=0)
    registration_window_s: int = Field(default=3600, gt=0)
    sms_daily_cap: int = Field(default=10, ge=0)
    # Alibaba Cloud SMS (events.sms): texts go out only when the key, the signature and the
    # templates are all set; otherwise they stay in the outbox as unsent.
    sms_access_key_id: str = ""
    sms_access_key_secret: str = Field(default="", repr=False)
    sms_sign_name: str = ""
    # host[:port], or http(s)://host[:port]; empty: the SDK's own endpoint.
    sms_endpoint: str = ""
    # topic=SMS_123,topic2=SMS_456: the template code of each kind of text.
    sms_templates: str = ""

    # Check-in and walk-ins at the door open this many seconds before a session starts (until
    # it ends): not days before, when a walk-in would take a seat.
    checkin_opens_before_s: int = Field(default=2 * 3600, ge=0, le=7 * 86400)
    # Live webcasts (streaming.rtmp, streaming.live_hub). RTMP ingest listens on this port (0:
    # off) on rtmp_host; encoders publish to rtmp_public_url (default: the public URL's host).
    rtmp_port: int = Field(default=1935, ge=0, le=65535)
    rtmp_host: str = "0.0.0.0"
    rtmp_public_url: str = ""
    # A publisher sending more than this (kilobits a second, averaged over a few seconds) or a
    # picture larger than max_ingest_pixels is cut off with a message in the console.
    max_ingest_kbps: int = Field(default=8000, gt=0)
    max_ingest_pixels: int = Field(default=1920 * 1080, gt=0)
    # A publisher that drops and comes back within this many seconds goes on with the same
    # stream (a discontinuity); the room shows 信号中断，正在等待 meanwhile.
    live_grace_s: int = Field(default=60, ge=0)
    # An ingest key is valid this many hours after it is issued (rotated: a new one).
    ingest_key_hours: int = Field(default=48, gt=0)
    # The address in feeds, calendars, pages and messages: never taken from a request's Host.
    public_url: str = "http://127.0.0.1:8000"
    # More host names requests may name (comma-separated), beside the public URL's and loopback.
    allowed_hosts: str = ""
    # Who may read GET /metrics (comma-separated addresses or networks, as the trusted proxies);
    # any other client gets 404. The peer is what counts, never X-Forwarded-For.
    metrics_allow: str = "127.0.0.1,::1"
    # Log lines: `text` (a person reads them) or `json` (one JSON object a line, for a
    # collector). Either way no token or personal data is in a line.
    log_format: Literal["text", "json"] = "text"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment or parts.username:
            raise ValueError("KAIFANG_PUBLIC_URL must be an http:// or https:// address like "
                             "https://kaifang.example.gov.cn, without a query")
        return value.strip().rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("smtp://", "smtp+starttls://", "smtps://")):
            raise ValueError("KAIFANG_SMTP_URL must start with smtp://, smtp+starttls:// or "
                             "smtps://")
        return value or None

    @field_validator("sms_templates")
    @classmethod
    def _sms_templates(cls, value: str) -> str:
        for pair in filter(None, (part.strip() for part in value.split(","))):
            topic, _, code = pair.partition("=")
            if not topic.strip() or not code.strip():
                raise ValueError("KAIFANG_SMS_TEMPLATES must look like "
                                 "registration_confirmed=SMS_123,reminder=SMS_456")
        return value

    @property
    def sms_template_codes(self) -> dict[str, str]:
        """Template code per topic, from KAIFANG_SMS_TEMPLATES."""
        pairs = (part.partition("=") for part in self.sms_templates.split(",") if "=" in part)
        return {topic.strip(): code.strip() for topic, _, code in pairs}

    @property
    def sms_configured(self) -> bool:
        """An SMS gateway exists: texts leave the machine (and pages may promise them)."""
        return bool(self.sms_access_key_id and self.sms_access_key_secret
                    and self.sms_sign_name and self.sms_template_codes)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kaifang.db').resolve()}"

    @property
    def known_hosts(self) -> frozenset[str]:
        """Host names a request may use: the public URL's, loopback, KAIFANG_ALLOWED_HOSTS."""
        named = {host_name(name) for name in self.allowed_hosts.split(",") if name.strip()}
        return LOOPBACK_HOSTS | {host_name(urlsplit(self.public_url).netloc)} | named

    @property
    def checkin_opens_before(self) -> timedelta:
        return timedelta(seconds=self.checkin_opens_before_s)

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def prepare_data_dir(self) -> None:
        """Creates the data dir private to the service (0700). One that exists open wider is
        reported, not changed: media under it may be served by another account (nginx)."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.data_dir.stat().st_mode)
        if mode & 0o077:
            log.warning("the data dir %s is open to other accounts (mode %o): chmod 700 it, "
                        "it holds the database and the secret key", self.data_dir.resolve(),
                        mode)

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once into the data dir (never logged).
        Raises ConfigError for a key under 32 bytes, wherever it came from."""
        if self.secret_key is not None:
            key, source = self.secret_key, "KAIFANG_SECRET_KEY"
        else:
            key, source = self._key_from_file(), f"the key file {self.data_dir / 'secret_key'}"
        size = len(key.encode())
        if size < MIN_SECRET_KEY_BYTES:
            raise ConfigError(
                f"{source} holds a secret key of {size} bytes; it needs at least "
                f"{MIN_SECRET_KEY_BYTES} bytes (e.g. the output of "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
        return key

    def _key_from_file(self) -> str:
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.prepare_data_dir()
            # Written whole to a private temp file, then linked into place: a process that
            # loses the race reads the winner's complete key, never a half-written one.
            fd, temp = tempfile.mkstemp(dir=self.data_dir, prefix=".secret_key.")
            try:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(48))
                with contextlib.suppress(FileExistsError):
                    os.link(temp, path)
            finally:
                os.unlink(temp)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
