"""A keyframe becomes a JPEG 320 px wide (decoded by a fresh PyAV decoder, scaled, encoded by mjpeg), for VP8 and
H.264; a frame that does not decode is refused."""
from __future__ import annotations

import io
from fractions import Fraction

import av
import pytest

from live.media.embedded.thumbs import jpeg_of_keyframe


def decode_jpeg(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data), format="image2pipe") as image:
        assert image.streams.video[0].codec_context.name == "mjpeg"
        return next(image.decode(video=0))


def test_a_keyframe_becomes_a_jpeg_320_wide_and_garbage_is_refused():
    for codec, mime in (("libvpx", "video/VP8"), ("libx264", "video/H264")):
        enc = av.CodecContext.create(codec, "w")
        enc.width, enc.height, enc.pix_fmt, enc.time_base = 640, 360, "yuv420p", Fraction(1, 30)
        frame = av.VideoFrame(640, 360, "yuv420p")
        frame.pts = 0
        packets = enc.encode(frame) + enc.encode(None)
        image = decode_jpeg(jpeg_of_keyframe(mime, bytes(packets[0])))
        assert (image.width, image.height) == (320, 180)
    with pytest.raises(ValueError):
        jpeg_of_keyframe("video/VP8", b"\x10\x02\x00garbage")
