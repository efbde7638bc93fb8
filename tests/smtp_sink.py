"""A local stand-in for a mail server: just enough SMTP on 127.0.0.1 to receive (or refuse) a
mail and keep it for the test to read. The `smtp_sink` fixture starts one."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough of an SMTP server on 127.0.0.1 to receive (or refuse) a mail."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, refuse_recipients: bool = False) -> None:
        self.refuse_recipients = refuse_recipients
        self.received: list[bytes] = []
        super().__init__(("127.0.0.1", 0), SmtpSession)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.server_address[1]}"


class SmtpSession(socketserver.StreamRequestHandler):
    server: SmtpSink

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ready")
        while line := self.rfile.readline():
            verb = line.decode("ascii", "replace").strip().upper()
            if verb.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif verb.startswith("RCPT") and self.server.refuse_recipients:
                self.reply("550 no such mailbox")
            elif verb == "DATA":
                self.reply("354 end with .")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data)
                self.server.received.append(b"".join(lines))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp_sink() -> Iterator[Any]:
    """smtp_sink() / smtp_sink(refuse_recipients=True): a sink serving on its own thread, shut
    down after the test."""
    sinks: list[SmtpSink] = []

    def start(refuse_recipients: bool = False) -> SmtpSink:
        sink = SmtpSink(refuse_recipients)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.shutdown()
        sink.server_close()
