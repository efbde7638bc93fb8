"""Receiving a recording: streamed to disk as it comes, never whole in memory, never past the
limit (KAIFANG_MAX_UPLOAD_BYTES), never under a name the client chose.

Two ways in. The contract's `POST /api/events/{id}/recording` takes one multipart `file` part
in one request (scripts, the district's tools). The console uploads in chunks instead
(tus-style): it opens an upload of a declared size, sends `PATCH`es each starting at the
offset the server holds, and after a dropped connection asks that offset and goes on from it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from events.errors import DomainError, Invalid
from streaming.storage import NO_SPACE

# Writes go to disk off the event loop, a megabyte at a time.
WRITE_CHUNK = 1024 * 1024
FILE_FIELD = b"file"


class TooLarge(DomainError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("too_large", f"the recording is larger than the limit of "
                         f"{limit / 1024**3:.1f} GiB", max_bytes=limit)


class DiskFilled(DomainError):
    """The disk filled up while the body was written (ENOSPC): 507 Insufficient Storage, as
    upload_room's `no_space` before a body is read, not 413 (the body is within the limit; the
    server could not store it now). What was written of it is gone."""

    status = 507

    def __init__(self) -> None:
        super().__init__("no_space", "the server's disk filled up while the recording was "
                         "sent: nothing of it was kept; try again later")


@contextlib.contextmanager
def _given_back_when_full(target: Path, keep: int) -> Iterator[None]:
    """A write that fails for want of space: the file is cut back to `keep` bytes (its closing
    flush may fail too, so after it is closed) and 507 DiskFilled raised."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        with contextlib.suppress(OSError):
            os.truncate(target, keep)
        raise DiskFilled() from exc


class MalformedMultipart(DomainError):
    """A body that is not the multipart/form-data it says (cut off, a part header past the
    parser's limits, another boundary): 400, never the parser's exception."""

    def __init__(self) -> None:
        super().__init__("malformed_multipart", "the multipart/form-data body is malformed or "
                         "cut off: send the recording again")


# An offset is plain ASCII digits, and not longer than any file can be (int() refuses 5,000).
MAX_DIGITS = 18
OFFSET = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")


def parse_offset(raw: str | None) -> int:
    """The `Upload-Offset` header's value: 422 `offset_required` without one, 400 `bad_offset`
    for anything but a plain number (`²`, `-1`, `0x10`, thousands of digits)."""
    value = (raw or "").strip(" \t")
    if not value:
        raise Invalid("offset_required", "send the Upload-Offset header (the offset from GET)")
    if OFFSET.fullmatch(value) is None:
        raise DomainError("bad_offset", "Upload-Offset must be the offset from GET, in decimal "
                          "digits")
    return int(value)


class _Sink:
    """Buffered writes in a worker thread, counted against the limit."""

    def __init__(self, handle: BinaryIO, limit: int, already: int = 0) -> None:
        self.handle = handle
        self.limit = limit
        self.written = already
        self.buffer = bytearray()

    async def add(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        if self.written > self.limit:
            raise TooLarge(self.limit)
        self.buffer += data
        if len(self.buffer) >= WRITE_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.buffer:
            chunk, self.buffer = bytes(self.buffer), bytearray()
            await anyio.to_thread.run_sync(self.handle.write, chunk)


@dataclass
class _Part:
    """The multipart part being read: its headers so far, and whether it is the file."""

    header: bytes = b""
    disposition: bytes = b""
    is_file: bool = False
    found: bool = False


def multipart_boundary(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Invalid("file_required", "send the recording as multipart/form-data with a "
                      "`file` part", field="file")
    return boundary


async def receive_multipart(body: AsyncIterator[bytes], content_type: str, target: Path,
                            limit: int) -> int:
    """Writes the `file` part of a multipart body to `target`; returns its size."""
    boundary = multipart_boundary(content_type)
    part = _Part()
    pending: list[bytes] = []  # the file's data from the parser, written after each chunk

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        if part.header.lower() == b"content-disposition":
            part.disposition += data[start:end]

    def on_header_end() -> None:
        part.header = b""

    def on_headers_finished() -> None:
        _kind, params = parse_options_header(part.disposition)
        part.is_file = params.get(b"name") == FILE_FIELD and not part.found
        part.found = part.found or part.is_file
        part.disposition = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.is_file:
            pending.append(data[start:end])

    def on_part_end() -> None:
        part.is_file = False

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    with _given_back_when_full(target, 0), target.open("xb") as handle:
        sink = _Sink(handle, limit)
        try:
            async for chunk in body:
                parser.write(chunk)
                for data in pending:
                    await sink.add(data)
                pending.clear()
            parser.finalize()
        except FormParserError as exc:
            raise MalformedMultipart() from exc
        if parser.state != MultipartState.END:
            raise MalformedMultipart()  # the closing boundary never came
        await sink.flush()
    if not part.found:
        raise Invalid("file_required", "the form has no `file` part", field="file")
    return sink.written


async def receive_chunk(body: AsyncIterator[bytes], target: Path, offset: int,
                        size: int) -> int:
    """Appends a chunk at `offset` (what the server holds) of a file that ends at `size`;
    returns the new offset. Bytes past the declared size are refused; a chunk the disk has no
    room for is cut off at `offset` (507 DiskFilled)."""
    with _given_back_when_full(target, offset), \
            target.open("r+b" if target.exists() else "xb") as handle:
        handle.seek(offset)
        handle.truncate()  # a chunk cut off mid-way left bytes the offset does not count
        sink = _Sink(handle, size, already=offset)
        async for chunk in body:
            await sink.add(chunk)
        await sink.flush()
    return sink.written
