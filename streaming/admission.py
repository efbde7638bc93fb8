"""How many live-room sockets each viewer and each address holds on this process: one viewer
(a token) at most PER_VIEWER, one address at most PER_ADDRESS (a hall on one Wi-Fi). Past
either, streaming.live_sockets refuses the socket with 4429."""

from __future__ import annotations

from collections import Counter
from typing import Any

# Sockets one process takes per viewer token, and per address.
PER_VIEWER, PER_ADDRESS = 5, 50


class Admission:
    """How many sockets each viewer and each address holds on this process (on the loop)."""

    def __init__(self) -> None:
        self.viewers: Counter[int] = Counter()
        self.addresses: Counter[str] = Counter()

    def take(self, viewer_id: int | None, address: str) -> bool:
        if (viewer_id is not None and self.viewers[viewer_id] >= PER_VIEWER) \
                or self.addresses[address] >= PER_ADDRESS:
            return False
        if viewer_id is not None:
            self.viewers[viewer_id] += 1
        self.addresses[address] += 1
        return True

    def give_back(self, viewer_id: int | None, address: str) -> None:
        if viewer_id is not None:
            self.viewers[viewer_id] -= 1
            if self.viewers[viewer_id] <= 0:
                del self.viewers[viewer_id]
        self.addresses[address] -= 1
        if self.addresses[address] <= 0:
            del self.addresses[address]


def admission_of(app: Any) -> Admission:
    """The app's Admission (one per app: its counts are this process's)."""
    found = getattr(app.state, "live_admission", None)
    if found is None:
        found = app.state.live_admission = Admission()
    return found  # type: ignore[no-any-return]
