"""The access log, without capabilities or personal data in it.

Uvicorn's access log writes every path and query string as sent, and a manage link
(`/tickets/<token>`, `/api/registrations/<token>`) is a key to a citizen's ticket: whoever reads
the log could cancel it or erase it. This log writes the method, the path with every long
segment (a token) replaced by `…`, never the query string (searches, names), the status and
the time taken. The edge (server.edge) writes it.
"""

from __future__ import annotations

import logging

log = logging.getLogger("kaifang.access")
# Ids, unit codes and route words are shorter; signed tokens are far longer.
TOKEN_MIN_LENGTH = 16


def redact_path(path: str) -> str:
    return "/".join("…" if len(part) >= TOKEN_MIN_LENGTH and not part.isdigit() else part
                    for part in path.split("/"))


class SocketLineFilter(logging.Filter):
    """Uvicorn writes each websocket it accepts or refuses with the client's address and the
    query string, which carries a live room's viewer token: the line keeps the path, redacted,
    and neither of those."""

    PREFIX = '%s - "WebSocket %s"'

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self.PREFIX) \
                and isinstance(record.args, tuple) and len(record.args) >= 2:
            path = str(record.args[1]).split("?", 1)[0]
            record.args = ("-", redact_path(path), *record.args[2:])
        return True
