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
