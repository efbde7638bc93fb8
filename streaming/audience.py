"""Evidence of a webcast's reach: the most viewers watching at once while the session was live
(LiveStream.peak_viewers) and how many distinct viewers watched it (total_viewers), shown with
its close-out and in the compliance drill-down (plan 二: a webcast meeting is evidence like one
held in a hall).

Counted from the room's sockets, not from the HLS requests: the room is where a viewer is
(media segments come from caches and players fetch them ahead).

- Peak: the distinct viewers (below) watching at once: this process's count whenever a socket
  enters, and every EVERY_S the sum over the processes (with Redis: each process's count in a
  hash, summed over those alive, as the broker sums the room's `viewers` count). A viewer's
  second tab is one viewer. Never above the total.
- Total: distinct viewers. A room socket is anonymous until its viewer joins, so a viewer is
  whom the page says it is: the random id the room page keeps in the browser's storage
  (`watch=`: a browser, not a person, and nothing personal), else the joined viewer's id, else
  (a client that sends neither) a keyed hash of its address bucket (streaming.room's, the same
  as the per-address limits'). An address counts at most PER_ADDRESS_IDS page ids a session,
  so a script that makes up ids cannot grow the total without bound. Only keyed hashes of these
  are kept: in this process, or in a Redis set per session (with several processes), which
  expires a week after the last viewer came.

Written to the database on a cadence (every EVERY_S, and at off air in the status change's own
transaction), not per socket: a thousand viewers arriving in a minute is a few writes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import weakref
from collections import Counter, defaultdict
from typing import Any

import anyio.to_thread
from sqlalchemy import case, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from events.lifecycle import on_status_change
from events.models import Event, EventStatus
from events.timeutil import utcnow
from server.db import get_engine
from server.security import Signer
from streaming.broker import Broker, RedisBroker
from streaming.models import LiveStream

log = logging.getLogger("kaifang.audience")
EVERY_S = 10.0
PER_ADDRESS_IDS = 50
# What a page's id may look like (the room page makes 16 random bytes, base64url).
WATCH_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
SEEN_TTL_S = 7 * 24 * 3600

_audiences: weakref.WeakSet[Audience] = weakref.WeakSet()


class Audience:
    """One app's (one process's) view of who watches which room. `enter` and `leave` run on
    the event loop; `flush` in a thread."""

    def __init__(self, broker: Broker, signer: Signer, database_url: str,
                 redis_url: str | None = None) -> None:
        self.broker = broker
        self.signer = signer
        self.database_url = database_url
        self._guard = threading.Lock()
        self._present: dict[int, Counter[str]] = defaultdict(Counter)
        self._entered: dict[int, set[str]] = defaultdict(set)  # since the last flush
        self._peak: dict[int, int] = defaultdict(int)  # this process's most since then
        self._page_ids: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._seen: dict[int, set[str]] = defaultdict(set)  # without Redis: every viewer seen
        self._redis: Any = None
        self._seen_prefix = ""
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=5)
            db_number = self._redis.connection_pool.connection_kwargs.get("db", 0)
            self._seen_prefix = f"kaifang:{db_number}:audience:"
        _audiences.add(self)

    # ---- on the loop -------------------------------------------------------------------------

    def enter(self, event_id: int, address_key: str, watch_id: str = "",
              viewer_id: int | None = None) -> str:
        """A socket entered the room: who it is (a keyed hash), to hand back to `leave`."""
        with self._guard:
            if watch_id and WATCH_ID.fullmatch(watch_id):
                who = self._hash(event_id, "page", watch_id)
                ids = self._page_ids[event_id][address_key]
                if who not in ids and len(ids) >= PER_ADDRESS_IDS:
                    who = self._hash(event_id, "address", address_key)
                else:
                    ids.add(who)
            elif viewer_id is not None:
                who = self._hash(event_id, "viewer", str(viewer_id))
            else:
                who = self._hash(event_id, "address", address_key)
            self._present[event_id][who] += 1
            self._entered[event_id].add(who)
            self._peak[event_id] = max(self._peak[event_id], len(self._present[event_id]))
        return who

    def leave(self, event_id: int, who: str) -> None:
        with self._guard:
            present = self._present.get(event_id)
            if present is None:
                return
            present[who] -= 1
            if present[who] <= 0:
                del present[who]
            if not present and not self._entered.get(event_id):
                self._forget(event_id)

    def _hash(self, event_id: int, kind: str, value: str) -> str:
        return self.signer.keyed_hash("live-audience", f"{event_id}:{kind}:{value}")[:24]

    def _forget(self, event_id: int) -> None:
        self._present.pop(event_id, None)
        self._entered.pop(event_id, None)
        self._peak.pop(event_id, None)

    # ---- the cadence -------------------------------------------------------------------------

    async def run(self) -> None:
        """Flushes every EVERY_S until cancelled (the app's lifespan runs it: one per loop that
        serves the app)."""
        while True:
            await asyncio.sleep(EVERY_S)
            try:
                await anyio.to_thread.run_sync(self.flush)
            except Exception as exc:  # the next round tries again
                log.warning("viewer evidence not written (%s)", type(exc).__name__)

    def flush(self) -> None:
        """Writes the rooms watched here since the last flush whose session is live."""
        with self._guard:
            rooms = set(self._present) | {e for e, seen in self._entered.items() if seen}
        if not rooms:
            return
        with Session(get_engine(self.database_url)) as db:
            live = set(db.exec(select(Event.id).where(
                col(Event.id).in_(rooms), Event.status == EventStatus.live)))
            for event_id in rooms:
                if event_id in live:
                    self.record(db, event_id)
                else:
                    self.went_live(event_id)  # nothing before it goes live counts (or after)
            db.commit()

    def went_live(self, event_id: int) -> None:
        """From now on it counts: who entered before and left, and the counts meanwhile, not."""
        with self._guard:
            self._entered.pop(event_id, None)
            self._peak.pop(event_id, None)
            if not self._present.get(event_id):
                self._forget(event_id)

    def off_air(self, event_id: int) -> None:
        """The session is over: who watched it need not be remembered here any longer (its
        counts are in its row)."""
        with self._guard:
            self._seen.pop(event_id, None)
            self._page_ids.pop(event_id, None)

    def record(self, db: Session, event_id: int) -> None:
        """Adds what this process saw since the last time to the session's LiveStream row (made
        if missing), in `db`'s transaction."""
        with self._guard:
            viewers = set(self._present.get(event_id, ())) | self._entered.pop(event_id, set())
            peak = self._peak.pop(event_id, 0)
            if not self._present.get(event_id):
                self._forget(event_id)
        if not viewers:
            return
        with self._guard:
            here = len(self._present.get(event_id, ()))
        try:
            peak = max(peak, self._watching_everywhere(event_id, here))
            total = self._count_seen(event_id, viewers)
        except Exception as exc:  # Redis away: this process's own counts (they only raise)
            log.warning("viewer counts of other processes unavailable (%s)", type(exc).__name__)
            peak, total = max(peak, here), self._count_seen_here(event_id, viewers)
        _raise_evidence(db, event_id, peak, total)

    def _watching_everywhere(self, event_id: int, here: int) -> int:
        """The viewers watching now over every process: this one's count beside the others'
        in a Redis hash, summed over the processes alive (RedisBroker's `alive` keys, so a
        process that died stops counting), as the room's own count is."""
        broker = self.broker
        if self._redis is None or not isinstance(broker, RedisBroker):
            return here
        key = f"{self._seen_prefix}now:{event_id}"
        with self._redis.pipeline() as pipe:
            pipe.hset(key, broker.process, here)
            pipe.expire(key, 3600)
            pipe.hgetall(key)
            counts = {p.decode(): int(n) for p, n in pipe.execute()[-1].items()}
        alive = self._redis.mget([broker.alive_prefix + p for p in counts])
        return sum(n for (p, n), up in zip(counts.items(), alive, strict=True)
                   if up is not None or p == broker.process)

    def _count_seen(self, event_id: int, viewers: set[str]) -> int:
        if self._redis is None:
            return self._count_seen_here(event_id, viewers)
        key = f"{self._seen_prefix}{event_id}"
        with self._redis.pipeline() as pipe:
            pipe.sadd(key, *sorted(viewers))
            pipe.expire(key, SEEN_TTL_S)
            pipe.scard(key)
            return int(pipe.execute()[-1])

    def _count_seen_here(self, event_id: int, viewers: set[str]) -> int:
        with self._guard:
            seen = self._seen[event_id]
            seen |= viewers
            return len(seen)


def _raise_evidence(db: Session, event_id: int, peak: int, total: int) -> None:
    """The row's counts raised to these, never lowered (several processes write in turn)."""
    dialect = db.get_bind().dialect.name
    values = LiveStream(event_id=event_id).model_dump(exclude={"id"})
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.execute(insert(LiveStream).values(**values)
               .on_conflict_do_nothing(index_elements=["event_id"]))
    total_col, peak_col = col(LiveStream.total_viewers), col(LiveStream.peak_viewers)
    new_total = case((total_col < total, total), else_=total_col)
    raised_peak = case((peak_col < peak, peak), else_=peak_col)
    db.execute(update(LiveStream).where(col(LiveStream.event_id) == event_id).values(
        total_viewers=new_total,
        peak_viewers=case((raised_peak > new_total, new_total), else_=raised_peak),
        updated_at=utcnow()).execution_options(synchronize_session=False))


def _status_changed(db: Session, event: Event, previous: EventStatus) -> None:
    """Going live starts the count afresh; going off air writes it at once (the close-out may
    follow within seconds, before the next round)."""
    if event.id is None:
        return
    for audience in list(_audiences):
        if event.status == EventStatus.live:
            audience.went_live(event.id)
        elif previous == EventStatus.live:
            audience.record(db, event.id)
            audience.off_air(event.id)


def watch_status_changes() -> None:
    on_status_change(_status_changed)


def evidence_of(db: Session, event_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(peak, total) of each session that was webcast live and watched."""
    if not event_ids:
        return {}
    rows = db.exec(select(LiveStream).where(col(LiveStream.event_id).in_(event_ids)))
    return {row.event_id: (row.peak_viewers, row.total_viewers) for row in rows
            if row.total_viewers > 0}
