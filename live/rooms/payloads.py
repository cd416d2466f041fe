"""The payloads of the clients' Socket.IO events, as the gateway parses them (strict: no coercion), and the check
of the text they carry. One model per event shape; docs/protocol.md is their reference."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from live.ids import UUID

STREAM_REF = r"^[0-9A-Za-z][0-9A-Za-z-]{0,119}$"  # a stream's id (uuid) or slug: nothing else is looked up
# text PostgreSQL cannot store (NUL), that no client means to send (C0 controls but tab, newline and carriage
# return; DEL) or that is not text at all (a lone UTF-16 surrogate: half an emoji)
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class In(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    stream_id: str | None = Field(default=None, pattern=STREAM_REF)


def bad_text(data: dict) -> str | None:
    """The first field of a payload whose text holds a character that is not allowed, or None. Every event's
    fields are plain values (strict models), so the top level is all there is to look at."""
    for key, value in data.items():
        if isinstance(value, str) and _BAD_CHARS.search(value) is not None:
            return str(key)[:64]
    return None


class JoinIn(In):
    stream_id: str = Field(pattern=STREAM_REF)
    last_seq: int | None = Field(default=None, ge=0, le=2**53)
    epoch: str | None = Field(default=None, max_length=64)


class ChatIn(In):
    text: str = Field(max_length=2000)


class DeleteIn(In):
    message_id: int = Field(ge=1, le=2**63 - 1)


class UserIn(In):
    user_id: str = Field(pattern=UUID)

    @field_validator("user_id")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        return value.lower()  # as the database spells ids: room state and sockets are keyed by that text


class MuteIn(UserIn):
    seconds: int = Field(ge=1, le=7 * 24 * 3600)


class BanIn(UserIn):
    reason: str | None = Field(default=None, max_length=500)


class SlowIn(In):
    seconds: int = Field(ge=0, le=3600)


class ReactionIn(In):
    kind: str = Field(max_length=16)


class HighlightIn(In):
    product_id: str = Field(pattern=UUID)
