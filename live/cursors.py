"""Opaque page cursors: a base64url JSON list of the last row's sort key and id.

A cursor comes back from the client, so it is untrusted input: `decode_cursor` checks the shape and the type and
range of every part (a timestamp the database can hold, a uuid, a bigint, a finite float) and answers 400
`invalid` for anything this server could not have given out, before any of it reaches SQL.
"""
from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from typing import Any

import orjson

from live.errors import DomainError
from live.ids import is_uuid

MAX_BIGINT = 2**63 - 1


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def _forged() -> DomainError:
    return DomainError("invalid", "cursor is not one this server gave out",
                       details=[{"field": "cursor", "message": "not a cursor of this server"}])


def _ts(v: Any) -> datetime:
    if not isinstance(v, str):
        raise ValueError
    ts = datetime.fromisoformat(v)
    if ts.tzinfo is None or not 1 < ts.year < 9999:
        raise ValueError
    return ts


def _uuid(v: Any) -> str:
    if not isinstance(v, str) or not is_uuid(v):
        raise ValueError
    return v


def _bigint(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not -MAX_BIGINT <= v <= MAX_BIGINT:
        raise ValueError
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError
    return float(v)


def _text(v: Any) -> str:
    if not isinstance(v, str) or len(v) > 100 or "\x00" in v:
        raise ValueError
    return v


KINDS = {"ts": _ts, "uuid": _uuid, "bigint": _bigint, "float": _float, "text": _text, "any": lambda v: v}


def decode_cursor(cursor: str, *kinds: str) -> list:
    """The parts of `cursor`, one per kind (ts, uuid, bigint, float, text, any), each checked; 400 otherwise."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError
        return [KINDS[kind](part) for kind, part in zip(kinds, parts)]
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _forged() from None


def cursor_value(kind: str, value: Any) -> Any:
    """One part of a decoded cursor (decoded with kind `any`) checked as `kind`: 400 if it is not one."""
    try:
        return KINDS[kind](value)
    except (ValueError, TypeError):
        raise _forged() from None
