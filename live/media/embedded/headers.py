"""The picture size of an encoded keyframe, read from its headers without decoding it: a VP8 keyframe's frame
header (RFC 6386 9.1), an H.264 access unit's sequence parameter set (ITU-T H.264 7.3.2.1.1, with its cropping).
The recorder needs it before it writes a file's header (a muxer refuses a video stream of unknown size)."""
from __future__ import annotations

H264_HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


class _Bits:
    """An RBSP read bit by bit (most significant first), with Exp-Golomb codes; ValueError past its end."""

    def __init__(self, data: bytes):
        self._value, self._size, self._pos = int.from_bytes(data, "big"), len(data) * 8, 0

    def u(self, n: int) -> int:
        self._pos += n
        if self._pos > self._size:
            raise ValueError("the parameter set ends early")
        return (self._value >> (self._size - self._pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 or 00 00 00 01)."""
    units, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
        end = len(data) if i < 0 else i
        units.append(data[start:end].rstrip(b"\x00") if i >= 0 else data[start:end])
    return units


def _sps_size(nal: bytes) -> tuple[int, int]:
    b = _Bits(nal[1:].replace(b"\x00\x00\x03", b"\x00\x00"))  # emulation prevention bytes out
    profile = b.u(8)
    b.u(16)  # constraint flags, level
    b.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in H264_HIGH_PROFILES:
        chroma = b.ue()
        if chroma == 3:
            b.u(1)  # separate_colour_plane_flag
        b.ue(), b.ue(), b.u(1)  # bit depths, qpprime_y_zero_transform_bypass_flag
        if b.u(1):  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma == 3 else 8):
                if b.u(1):
                    last = following = 8
                    for _ in range(16 if i < 6 else 64):
                        if following:
                            following = (last + b.se() + 256) % 256
                        last = following or last
    b.ue()  # log2_max_frame_num_minus4
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1), b.se(), b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue(), b.u(1)  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = b.ue() + 1, b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)  # mb_adaptive_frame_field_flag
    b.u(1)  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if b.u(1):
        left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
    crop_x = 1 if chroma in (0, 3) else 2
    crop_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - (left + right) * crop_x
    height = (2 - frame_mbs_only) * height_units * 16 - (top + bottom) * crop_y
    return width, height


def frame_size(mime: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) of a keyframe of `mime` (video/VP8 or video/H264), or None when its headers do not say."""
    mime = mime.lower()
    if mime == "video/vp8":
        if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
            return None
        size = (int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF)
    elif mime == "video/h264":
        sps = [n for n in nal_units(data) if n and n[0] & 0x1F == 7]
        if not sps:
            return None
        try:
            size = _sps_size(sps[0])
        except ValueError:
            return None
    else:
        return None
    return size if size[0] > 0 and size[1] > 0 else None
