"""The front door's frame layer (live/rooms/wsframes.py) against wsproto as an oracle: hypothesis-generated
frame sequences, cut anywhere, must give both parsers the same messages and control frames, or the same
protocol error close code."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.frontdoor.frames import chunked, frames, ours, reference, streams


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_same_events_as_wsproto(chunks):
    assert ours(chunks) == reference(chunks)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(frames(), min_size=1, max_size=12), st.data())
def test_chunking_does_not_change_the_result(frame_list, data):
    stream = b"".join(frame_list)
    whole = ours([stream])
    assert ours(data.draw(chunked(stream))) == whole
    assert ours([stream[i:i + 1] for i in range(len(stream))]) == whole  # one byte at a time
