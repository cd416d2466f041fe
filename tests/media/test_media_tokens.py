"""LiveKit tokens, checked with livekit-api's own verifier: a viewer may subscribe and not publish; the seller
may publish; identity, name, room and expiry are the caller's."""
from __future__ import annotations

import time

import jwt
import pytest
from livekit import api as lk

from live.config import load_settings
from live.media.livekit import TOKEN_TTL, LiveKitTokens


def test_tokens_verify_with_livekit_and_carry_the_right_grants(tmp_path):
    settings = load_settings({}, livekit_api_key="key-1", livekit_api_secret="s" * 40, data_dir=str(tmp_path))
    tokens = LiveKitTokens(settings)
    verifier = lk.TokenVerifier("key-1", "s" * 40)
    viewer = verifier.verify(tokens.token("live-demo", "user-1", "Ann", publisher=False))
    assert viewer.identity == "user-1" and viewer.name == "Ann"
    assert viewer.video.room == "live-demo" and viewer.video.room_join and viewer.video.can_subscribe
    assert viewer.video.can_publish is False and viewer.video.can_publish_data is False
    assert viewer.video.can_update_own_metadata is False
    seller = verifier.verify(tokens.token("live-demo", "user-2", "Sam", publisher=True))
    assert seller.identity == "user-2" and seller.video.can_publish is True and seller.video.can_publish_data
    # the cached grants are per room and role, never shared between them
    other = verifier.verify(tokens.token("live-other", "user-1", "Ann", publisher=False))
    assert other.video.room == "live-other" and other.video.can_publish is False
    # a token signed with another secret is refused
    with pytest.raises(jwt.InvalidSignatureError):
        lk.TokenVerifier("key-1", "t" * 40).verify(tokens.token("live-demo", "user-1", "Ann", publisher=False))
    claims = jwt.decode(tokens.token("live-demo", "u", "n", publisher=False), "s" * 40, algorithms=["HS256"])
    assert abs(claims["exp"] - time.time() - TOKEN_TTL.total_seconds()) < 5 and claims["iss"] == "key-1"
