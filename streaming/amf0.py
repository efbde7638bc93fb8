"""AMF0, the encoding of RTMP's commands (connect, publish, onStatus) and of onMetaData.

Only what encoders send and what the gate answers: numbers, booleans, strings, objects, ECMA
and strict arrays, null, undefined, dates. Decoding is bounded (nesting, element counts): the
bytes come from anyone who reaches the ingest port.
"""

from __future__ import annotations

import struct
from typing import Any

MAX_DEPTH = 8
MAX_ELEMENTS = 1024

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x08, 0x09, 0x0A, 0x0B, 0x0C


class AMFError(ValueError):
    """Bytes that are not the AMF0 we read."""


class Undefined:
    """AMF0's undefined (what some commands carry where a value is absent)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED_VALUE = Undefined()


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 0xFFFF:
        return bytes([LONG_STRING]) + struct.pack(">I", len(raw)) + raw
    return bytes([STRING]) + struct.pack(">H", len(raw)) + raw


def _key(name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def encode_value(value: Any) -> bytes:
    if value is None:
        return bytes([NULL])
    if isinstance(value, Undefined):
        return bytes([UNDEFINED])
    if isinstance(value, bool):
        return bytes([BOOLEAN, int(value)])
    if isinstance(value, int | float):
        return bytes([NUMBER]) + struct.pack(">d", float(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        body = b"".join(_key(str(k)) + encode_value(v) for k, v in value.items())
        return bytes([OBJECT]) + body + b"\x00\x00" + bytes([OBJECT_END])
    if isinstance(value, list | tuple):
        return bytes([STRICT_ARRAY]) + struct.pack(">I", len(value)) + \
            b"".join(encode_value(v) for v in value)
    raise TypeError(f"AMF0 has no encoding for {type(value).__name__}")


def encode(*values: Any) -> bytes:
    return b"".join(encode_value(v) for v in values)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise AMFError(f"AMF0 value cut short: {count} bytes wanted at {self.pos}, "
                           f"{len(self.data) - self.pos} left")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def text(self, length: int) -> str:
        return self.take(length).decode("utf-8", errors="replace")

    def properties(self, depth: int) -> dict[str, Any]:
        found: dict[str, Any] = {}
        while True:
            name = self.text(self.u16())
            if not name and self.data[self.pos:self.pos + 1] == bytes([OBJECT_END]):
                self.pos += 1
                return found
            if len(found) >= MAX_ELEMENTS:
                raise AMFError(f"an AMF0 object of more than {MAX_ELEMENTS} properties")
            found[name] = self.value(depth + 1)

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise AMFError(f"AMF0 nested deeper than {MAX_DEPTH}")
        marker = self.u8()
        if marker == NUMBER:
            number: float = struct.unpack(">d", self.take(8))[0]
            return number
        if marker == BOOLEAN:
            return self.u8() != 0
        if marker == STRING:
            return self.text(self.u16())
        if marker == LONG_STRING:
            return self.text(self.u32())
        if marker == OBJECT:
            return self.properties(depth)
        if marker == ECMA_ARRAY:
            self.u32()  # a count encoders do not keep to: the end marker decides
            return self.properties(depth)
        if marker == STRICT_ARRAY:
            count = self.u32()
            if count > MAX_ELEMENTS:
                raise AMFError(f"an AMF0 array of {count} elements (at most {MAX_ELEMENTS})")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == NULL:
            return None
        if marker == UNDEFINED:
            return UNDEFINED_VALUE
        if marker == DATE:
            stamp: float = struct.unpack(">d", self.take(8))[0]
            self.take(2)  # time zone, unused by the format's own rules
            return stamp
        raise AMFError(f"AMF0 type marker {marker:#04x} is not one we read")


def decode(data: bytes) -> list[Any]:
    """Every value in `data`, in order."""
    reader = _Reader(data)
    values: list[Any] = []
    while reader.pos < len(data):
        if len(values) >= MAX_ELEMENTS:
            raise AMFError(f"more than {MAX_ELEMENTS} AMF0 values in one message")
        values.append(reader.value())
    return values
