"""RTMP's media messages as an FLV stream (what the hub's encoder reads), and the picture size
a publisher sends: onMetaData's width and height, and its H.264 sequence header's SPS (which a
publisher cannot misstate without its own decoder failing).
"""

from __future__ import annotations

from typing import Any

from streaming import amf0

AUDIO_TAG, VIDEO_TAG, SCRIPT_TAG = 8, 9, 18
SET_DATA_FRAME = amf0.encode("@setDataFrame")
ON_META_DATA = amf0.encode("onMetaData")
AVC = 7
# Profiles whose SPS carries chroma format, bit depths and scaling lists (H.264 §7.3.2.1.1).
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def header(*, audio: bool = True, video: bool = True) -> bytes:
    flags = (4 if audio else 0) | (1 if video else 0)
    return b"FLV\x01" + bytes([flags]) + (9).to_bytes(4, "big") + (0).to_bytes(4, "big")


def tag(tag_type: int, timestamp: int, payload: bytes) -> bytes:
    """One FLV tag and its PreviousTagSize."""
    size = len(payload)
    stamp = timestamp & 0xFFFFFFFF
    return bytes([tag_type]) + size.to_bytes(3, "big") + (stamp & 0xFFFFFF).to_bytes(3, "big") \
        + bytes([stamp >> 24]) + b"\x00\x00\x00" + payload + (size + 11).to_bytes(4, "big")


def script_body(payload: bytes) -> bytes | None:
    """An RTMP data message as an FLV script tag's body: `@setDataFrame` taken off, so the tag
    is `onMetaData`; None for any other data message (cue points, sample access), not handed on."""
    if payload.startswith(SET_DATA_FRAME):
        payload = payload[len(SET_DATA_FRAME):]
    return payload if payload.startswith(ON_META_DATA) else None


def metadata(body: bytes) -> dict[str, Any]:
    """onMetaData's properties ({} when they do not decode)."""
    try:
        values = amf0.decode(body)
    except amf0.AMFError:
        return {}
    found = values[1] if len(values) > 1 else None
    return found if isinstance(found, dict) else {}


def metadata_size(properties: dict[str, Any]) -> tuple[int, int]:
    """onMetaData's width × height (0 × 0 when absent or not numbers)."""
    def number(name: str) -> int:
        value = properties.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return 0
        return int(min(max(value, 0), 1 << 20))
    return number("width"), number("height")


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= len(self.data) * 8:
            raise ValueError("the SPS ended early")
        value = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise ValueError("an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def _unescaped(nal: bytes) -> bytes:
    """The NAL unit's payload without its emulation prevention bytes (00 00 03 → 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def sps_size(sps: bytes) -> tuple[int, int]:
    """The picture's width × height from an H.264 SPS NAL unit (ValueError when it is not one)."""
    bits = _Bits(_unescaped(sps[1:]))
    profile = bits.bits(8)
    bits.bits(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            bits.bit()
        bits.ue()
        bits.ue()
        bits.bit()
        if bits.bit():
            for index in range(12 if chroma == 3 else 8):
                if bits.bit():
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    order_type = bits.ue()
    if order_type == 0:
        bits.ue()
    elif order_type == 1:
        bits.bit()
        bits.se()
        bits.se()
        cycle = bits.ue()
        if cycle > 255:
            raise ValueError("num_ref_frames_in_pic_order_cnt_cycle above 255")
        for _ in range(cycle):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frames_only = bits.bit()
    if not frames_only:
        bits.bit()
    bits.bit()
    left = right = top = bottom = 0
    if bits.bit():
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    crop_x = 2 if chroma in (1, 2) else 1
    crop_y = (2 if chroma == 1 else 1) * (2 - frames_only)
    width = width_mbs * 16 - crop_x * (left + right)
    height = (2 - frames_only) * height_units * 16 - crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("the SPS crops the whole picture away")
    return width, height


def avc_size(payload: bytes) -> tuple[int, int] | None:
    """The picture size of an FLV video body that is an H.264 sequence header; None for any
    other body (a frame, another codec) or one whose SPS does not parse."""
    if len(payload) < 13 or payload[0] & 0x0F != AVC or payload[1] != 0:
        return None
    record = payload[5:]  # AVCDecoderConfigurationRecord
    if record[5] & 0x1F == 0:
        return None
    length = int.from_bytes(record[6:8], "big")
    sps = record[8:8 + length]
    if len(sps) != length or not sps:
        return None
    try:
        return sps_size(sps)
    except ValueError:
        return None
