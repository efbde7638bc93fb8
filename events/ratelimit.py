"""Public registration limits: attempts per client address and per phone in a sliding window.

One client inventing numbers fills a session and its waitlist; one number registered and
cancelled in a loop floods it with texts. Each attempt that reaches the desk counts against its
address and its phone (an `already_registered` answer too, so nobody probes numbers in bulk);
past a limit the answer is 429 too_many_requests with Retry-After, until the oldest attempt in
the window has aged out. Refused attempts are not counted: waiting as told always works.

The count costs the desk's batch (events.registration_desk) one statement or two, never one per
request: in the database, one grouped COUNT and one INSERT of attempt rows inside the batch's
own transaction, behind the write lock (SQLite) or advisory locks on the keys (PostgreSQL), so
processes never both admit the last attempt; with KAIFANG_REDIS_URL, one script call that counts
and records the whole batch atomically. Keys are keyed hashes: no address or number is stored.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, func, insert, text
from sqlmodel import Session, col, select

from events.clients import address_bucket
from events.errors import DomainError, Throttled
from events.locking import write_lock
from events.models import RegistrationAttempt
from events.registration import RegistrationRequest
from events.timeutil import utcnow
from server.config import Settings
from server.security import Signer

log = logging.getLogger("kaifang.ratelimit")
Refusals = list[DomainError | None]


@dataclass(frozen=True)
class Limits:
    per_address: int  # 0: no limit
    per_phone: int
    window_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.registration_limit_per_address,
                   settings.registration_limit_per_phone, settings.registration_window_s)

    @property
    def active(self) -> bool:
        return self.per_address > 0 or self.per_phone > 0


def too_many(wait_s: float) -> Throttled:
    return Throttled("too_many_requests", "too many registration attempts from this address "
                     "or for this number; try again later",
                     retry_after_s=max(1, math.ceil(wait_s)))


class Limiter(Protocol):
    def admit(self, db: Session, requests: Sequence[RegistrationRequest]) -> Refusals:
        """One answer per request, in order: None (counted, go on) or the refusal."""


def _keys(signer: Signer, limits: Limits, request: RegistrationRequest
          ) -> list[tuple[str, int]]:
    keys = []
    if limits.per_address and request.client_address:
        keys.append((signer.keyed_hash("registration-limit",
                                       f"address:{address_bucket(request.client_address)}"),
                     limits.per_address))
    if limits.per_phone:
        keys.append((signer.keyed_hash("registration-limit", f"phone:{request.data.phone}"),
                     limits.per_phone))
    return keys


class DatabaseLimiter:
    """Attempt rows in the batch's own transaction (see the module's docstring)."""

    def __init__(self, limits: Limits, signer: Signer) -> None:
        self.limits = limits
        self.signer = signer

    def admit(self, db: Session, requests: Sequence[RegistrationRequest]) -> Refusals:
        wanted = [_keys(self.signer, self.limits, request) for request in requests]
        distinct = sorted({key for keys in wanted for key, _ in keys})
        if not distinct:
            return [None] * len(requests)
        now = utcnow()
        window = timedelta(seconds=self.limits.window_s)
        if db.connection().dialect.name == "postgresql":
            # In one order, so batches of two processes never wait for each other in a circle.
            db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                            "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"),
                       {"keys": distinct})
        else:
            write_lock(db)  # the batch is the database's one writer from here
        seen: dict[str, tuple[int, datetime]] = {
            key: (int(count), oldest) for key, count, oldest in db.execute(
                select(RegistrationAttempt.key, func.count(), func.min(RegistrationAttempt.at))
                .where(col(RegistrationAttempt.key).in_(distinct),
                       col(RegistrationAttempt.at) > now - window)
                .group_by(col(RegistrationAttempt.key)))}
        refusals: Refusals = []
        rows: list[dict[str, object]] = []
        for keys in wanted:
            waits = [(seen[key][1] + window - now).total_seconds()
                     for key, limit in keys if seen.get(key, (0, now))[0] >= limit]
            if waits:
                refusals.append(too_many(max(waits)))
                continue
            refusals.append(None)
            for key, _ in keys:
                count, oldest = seen.get(key, (0, now))
                seen[key] = (count + 1, oldest)
                rows.append({"key": key, "at": now})
        if rows:
            db.execute(insert(RegistrationAttempt.__table__), rows)  # type: ignore[attr-defined]
        return refusals


# KEYS: every key of the batch. ARGV: now and window in ms, a batch id, the number of requests,
# then per request two (key index, limit) pairs, index 0 for none. Returns the ms each request
# must wait, 0 for admitted (and recorded).
_SCRIPT = """
local now, window, batch, n = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i = 1, #KEYS do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window) end
local waits = {}
for r = 0, n - 1 do
  local base, wait = 5 + r * 4, 0
  for j = 0, 1 do
    local k, limit = tonumber(ARGV[base + j * 2]), tonumber(ARGV[base + j * 2 + 1])
    if k > 0 and redis.call('ZCARD', KEYS[k]) >= limit then
      local oldest = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest[2]) + window - now, 1)
    end
  end
  if wait == 0 then
    for j = 0, 1 do
      local k = tonumber(ARGV[base + j * 2])
      if k > 0 then redis.call('ZADD', KEYS[k], now, batch .. ':' .. r) end
    end
  end
  waits[r + 1] = wait
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], window) end
return waits
"""


class RedisLimiter:
    """Sorted sets of attempt times, one script call per batch (see the module's docstring).
    While Redis is away the database counts instead: registration goes on, still limited."""

    PREFIX = "kaifang:registration-limit:"

    def __init__(self, limits: Limits, signer: Signer, url: str) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.limits = limits
        self.signer = signer
        self._errors = (redis.RedisError,)
        # One quick try (and one more on a connection that died with a restarted Redis), not
        # redis-py's ten with backoff: a registration burst waits on it.
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=1,
                                           retry=Retry(NoBackoff(), 1))
        self._script = self._redis.register_script(_SCRIPT)
        self._fallback = DatabaseLimiter(limits, signer)

    def admit(self, db: Session, requests: Sequence[RegistrationRequest]) -> Refusals:
        wanted = [_keys(self.signer, self.limits, request) for request in requests]
        distinct = sorted({key for keys in wanted for key, _ in keys})
        if not distinct:
            return [None] * len(requests)
        index = {key: position for position, key in enumerate(distinct, start=1)}
        args: list[str | int] = [int(utcnow().timestamp() * 1000), self.limits.window_s * 1000,
                                 uuid.uuid4().hex, len(requests)]
        for keys in wanted:
            pairs = [(index[key], limit) for key, limit in keys] + [(0, 0)] * (2 - len(keys))
            args += [value for pair in pairs for value in pair]
        try:
            waits = self._script(keys=[self.PREFIX + key for key in distinct], args=args)
        except self._errors as exc:
            log.warning("registration limits counted in the database: Redis unavailable (%s)",
                        type(exc).__name__)
            return self._fallback.admit(db, requests)
        return [too_many(int(wait) / 1000) if int(wait) else None for wait in waits]


def limiter_for(settings: Settings, signer: Signer) -> Limiter | None:
    limits = Limits.from_settings(settings)
    if not limits.active:
        return None
    if settings.redis_url:
        return RedisLimiter(limits, signer, settings.redis_url)
    return DatabaseLimiter(limits, signer)


def forget_expired(db: Session, settings: Settings, now: datetime | None = None) -> int:
    """The worker's round: attempts the window has left behind are deleted. Flushes."""
    since = (now or utcnow()) - timedelta(seconds=settings.registration_window_s)
    write_lock(db)
    result = db.execute(delete(RegistrationAttempt).where(col(RegistrationAttempt.at) <= since))
    db.flush()
    return int(getattr(result, "rowcount", 0) or 0)
