"""Registrations under a burst: one writer per process, taking what has arrived as one batch.

When a session opens, a thousand phones may press "register" in the same second. Each request
in a transaction of its own would queue on the session's lock and pay for its own lock, count,
insert and commit. Here requests wait on the event loop while one thread writes: it takes every
request that arrived meanwhile and registers them in one transaction (group commit, as
databases do with their own log). Seats still go in arrival order and are counted under the
session's lock (events.locking), so capacity holds across processes as before. A request that
arrives alone is written alone, at once: nothing waits for a batch to fill.

Why a batch failed decides what follows: a refused row or rule (IntegrityError, DomainError)
sends its requests one by one, so only the culprit is refused; a lost connection, a timeout or
a lock not had in time answers the whole batch 503 `busy` with Retry-After at once, and a commit
whose acknowledgement was lost is looked up before it is answered. A request still waiting for
its turn at its deadline (server.db.lock_timeout_s after it arrived) is answered 503 and never
written late.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, select

import server.db
from events import registration
from events.errors import Busy, Conflict, DomainError
from events.locking import busy
from events.models import Registration
from events.ratelimit import Limiter
from events.registration import Registered, RegistrationRequest
from server.security import Signer

log = logging.getLogger(__name__)
MAX_BATCH = 250
# A batch refused for what one of its requests holds: the others are written one by one.
REFUSED = (IntegrityError, DataError, DomainError)
# Failures that say nothing about the requests (a lost connection, a timeout, a full pool):
# the batch is answered 503 busy at once.
TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)


@dataclass
class _Waiting:
    request: RegistrationRequest
    answer: asyncio.Future[dict[str, Any]]
    # The loop's time after which, not yet taken into a batch, it is answered 503 busy.
    deadline: float


Outcome = dict[str, Any] | BaseException


class RegistrationDesk:
    """One per app. `register` answers what the API returns.

    A process serving HTTP has one event loop; tests may drive the app from several (one per
    TestClient), and each loop gets a lane of its own. Capacity never depends on lanes: every
    batch counts under the session's lock.
    """

    def __init__(self, engine: Engine, signer: Signer, *, limiter: Limiter | None = None,
                 sms_daily_cap: int = 0) -> None:
        self._engine = engine  # the app's, from the composition root
        self._signer = signer
        self._limiter = limiter
        self._sms_daily_cap = sms_daily_cap
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = (
            weakref.WeakKeyDictionary())
        self._lanes_guard = threading.Lock()

    async def register(self, event_id: int, data: registration.RegistrationIn,
                       form_nonce: str | None = None, client_address: str = ""
                       ) -> dict[str, Any]:
        """The public view of the new registration, with its manage token; or raises the
        refusal (a DomainError)."""
        loop = asyncio.get_running_loop()
        with self._lanes_guard:
            lane = self._lanes.get(loop)
            if lane is None:
                lane = self._lanes[loop] = _Lane(self._write)
        return await lane.submit(RegistrationRequest(event_id, data, form_nonce, client_address))

    def _write(self, requests: Sequence[RegistrationRequest]
               ) -> list[Outcome]:
        try:
            return self._write_batch(requests)
        except Busy:  # the session's lock was not had in time
            return [busy() for _ in requests]
        except REFUSED as exc:
            if len(requests) == 1:
                return [_refusal(exc)]
            failure: Exception = exc
        except TRANSIENT as exc:
            # The database is slow or gone: retrying one by one would hold the lane longer and
            # could not succeed. The clients may try again; nothing of the batch was written.
            log.warning("a registration batch of %d failed (%s); answered busy", len(requests),
                        type(exc).__name__)
            return [busy() for _ in requests]
        except Exception as exc:  # a bug: this batch answers 500 (logged), the lane goes on
            return [exc] * len(requests)
        # One request spoilt the batch (a rule's refusal, or the database refusing a row): the
        # others go on their own.
        log.warning("a registration batch of %d failed (%s); writing them one by one",
                    len(requests), type(failure).__name__)
        outcomes: list[Outcome] = []
        for request in requests:
            try:
                outcomes.extend(self._write_batch([request]))
            except TRANSIENT:
                outcomes.append(busy())
            except Exception as exc:
                outcomes.append(_refusal(exc))
        return outcomes

    def _write_batch(self, requests: Sequence[RegistrationRequest]
                     ) -> list[Outcome]:
        with Session(self._engine, expire_on_commit=False) as db:
            # Counted in this very transaction: a refused request goes no further.
            refusals = (self._limiter.admit(db, requests) if self._limiter
                        else [None] * len(requests))
            admitted = [request for request, refusal in zip(requests, refusals, strict=True)
                        if refusal is None]
            made = (registration.register_many(db, self._signer, admitted,
                                               sms_daily_cap=self._sms_daily_cap)
                    if admitted else [])
            try:
                db.commit()
            except TRANSIENT:
                # The commit may have gone through with only its answer lost: look before
                # answering, or a retry would find the citizen's own registration and be 409.
                if not self._was_committed(made):
                    raise
        made_in_order = iter(made)
        outcomes: list[Outcome] = []
        for refusal in refusals:
            outcome = refusal if refusal is not None else next(made_in_order)
            if isinstance(outcome, DomainError):
                outcomes.append(outcome)
                continue
            outcomes.append(registration.registration_public(
                None, outcome, registration.manage_token(self._signer, outcome)))
        return outcomes

    def _was_committed(self, made: Sequence[Registered | DomainError]) -> bool:
        """Whether the rows of a commit that failed are in the database (all or none are)."""
        written = [outcome for outcome in made if isinstance(outcome, Registered)]
        if not written:
            return False
        try:
            with Session(self._engine) as db:
                found = db.exec(select(Registration.code).where(
                    Registration.id == written[0].id)).first()
        except TRANSIENT:
            return False
        return found == written[0].code


def _refusal(exc: Exception) -> Exception:
    """What a request refused by the database is answered: the table refused its row."""
    if isinstance(exc, IntegrityError):
        return Conflict("try_again", "please submit again")
    return exc


Writer = Callable[[Sequence[RegistrationRequest]], list[Outcome]]


class _Lane:
    """The requests of one event loop and the one writer thread that empties them."""

    def __init__(self, write: Writer) -> None:
        self._write = write
        self._waiting: deque[_Waiting] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._thread = CapacityLimiter(1)
        # One timer for the whole queue, at its earliest deadline (not one per request: a
        # burst's thousand timers cost the event loop more than the rest of the desk).
        self._expiry: asyncio.TimerHandle | None = None

    async def submit(self, request: RegistrationRequest) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        # Not written late: a request still waiting for its turn at the deadline is answered
        # 503 busy and never written (its client may try again, or has given up).
        waiting = _Waiting(request, loop.create_future(),
                           loop.time() + server.db.lock_timeout_s)
        self._waiting.append(waiting)
        if self._expiry is None:
            self._expiry = loop.call_at(waiting.deadline, self._expire_due)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_while_waiting())
        return await waiting.answer

    def _expire_due(self) -> None:
        """Answers 503 busy every request still waiting for its turn past its deadline; the
        timer then waits for the next deadline of those left."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for waiting in self._waiting:
            if waiting.deadline <= now:
                _answer(waiting, busy())
        left = [waiting for waiting in self._waiting if not waiting.answer.done()]
        self._waiting = deque(left)
        if left:
            self._expiry = loop.call_at(min(waiting.deadline for waiting in left),
                                        self._expire_due)

    async def _write_while_waiting(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch = [self._waiting.popleft()
                         for _ in range(min(MAX_BATCH, len(self._waiting)))]
                # A client that went away before its turn, or is past its deadline, is not
                # registered.
                batch = [waiting for waiting in batch if not waiting.answer.done()]
                if not batch:
                    continue
                requests = [waiting.request for waiting in batch]
                outcomes = await anyio.to_thread.run_sync(self._write, requests,
                                                          limiter=self._thread)
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    _answer(waiting, outcome)
                batch = []
        except BaseException as exc:  # cancelled at shutdown, or a bug: nobody waits forever
            for waiting in [*batch, *self._waiting]:
                _answer(waiting, exc if isinstance(exc, Exception) else
                        RuntimeError("the registration desk stopped"))
            self._waiting.clear()
            raise
        finally:
            self._writer = None
            if not self._waiting and self._expiry is not None:
                self._expiry.cancel()
                self._expiry = None


def _answer(waiting: _Waiting, outcome: Outcome) -> None:
    if waiting.answer.done():
        return
    if isinstance(outcome, BaseException):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
