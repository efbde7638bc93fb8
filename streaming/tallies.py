"""Vote counts to the room, a batch at a time: a `votes` frame ({counts: {question id: votes}})
at most once every EVERY_S per room from each process, with every count that changed since the
last one. A burst of votes in a room of N viewers is then a few frames to each socket, not one
per vote (N² in all); the first vote of a quiet second goes out at once, the rest of that
second's at its end. A vote's other changes (a question's state) still go as `question` frames.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from sqlalchemy import event as sa_event
from sqlmodel import Session

from streaming import protocol
from streaming.broker import Broker
from streaming.models import Question

_making = threading.Lock()

class VoteCounts:
    EVERY_S = 1.0

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._guard = threading.Lock()
        self._pending: dict[int, dict[int, int]] = {}  # room → question → votes
        self._sent_at: dict[int, float] = {}  # monotonic time of each room's last frame
        self._timers: dict[int, threading.Timer] = {}

    def counted(self, event_id: int, question_id: int, votes: int) -> None:
        """A vote was committed: the question now has `votes`. From any thread."""
        with self._guard:
            counts = self._pending.setdefault(event_id, {})
            counts[question_id] = max(votes, counts.get(question_id, 0))
            if event_id in self._timers:
                return
            wait = self._sent_at.get(event_id, -math.inf) + self.EVERY_S - time.monotonic()
            if wait > 0:
                timer = threading.Timer(wait, self._send, (event_id,))
                timer.daemon = True
                self._timers[event_id] = timer
                timer.start()
                return
        self._send(event_id)

    def flush(self) -> None:
        """Sends every pending count now (the app is stopping): a timer must not publish a
        stopped app's counts a second later, into whatever room has that id by then."""
        with self._guard:
            timers, self._timers = list(self._timers.items()), {}
        for event_id, timer in timers:
            timer.cancel()
            self._send(event_id)

    def _send(self, event_id: int) -> None:
        with self._guard:
            self._timers.pop(event_id, None)
            counts = self._pending.pop(event_id, None)
            if not counts:
                return
            self._sent_at[event_id] = time.monotonic()
        self.broker.publish(event_id, [votes_frame(counts)])


def votes_frame(counts: dict[int, int]) -> str:
    return protocol.encode(protocol.VOTES, counts={str(k): v for k, v in counts.items()})


def vote_counts(state: Any) -> VoteCounts:
    """The app's batcher (on `app.state`, beside its broker), made on first use."""
    with _making:
        found = getattr(state, "vote_counts", None)
        if not isinstance(found, VoteCounts) or found.broker is not state.broker:
            found = VoteCounts(state.broker)
            state.vote_counts = found
        return found


def count_after_commit(db: Session, counts: VoteCounts, question: Question) -> None:
    """Tells `counts` the question's votes once `db` commits, never if it rolls back."""
    event_id, question_id, votes = question.event_id, question.id or 0, question.votes

    def committed(_session: Session) -> None:
        counts.counted(event_id, question_id, votes)

    sa_event.listen(db, "after_commit", committed, once=True)
