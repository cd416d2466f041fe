"""Domain errors. Transport layers turn them into HTTP `{"error": {code, message}}` or ack `{ok: false, error}`."""
from __future__ import annotations

STATUS_FOR_CODE = {
    "invalid": 400,
    "bad_request": 400,
    "unauthorized": 401,
    "invalid_code": 401,
    "code_expired": 401,
    "invalid_signature": 401,
    "nonce_used": 401,
    "nonce_expired": 401,
    "forbidden": 403,
    "banned": 403,
    "muted": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "conflict": 409,
    "out_of_stock": 409,
    "stream_not_live": 409,
    "idempotency_conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_failed": 422,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}


class DomainError(Exception):
    """An expected failure with a stable machine-readable code and a human message."""

    def __init__(self, code: str, message: str, *, status: int | None = None, details: object = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_FOR_CODE.get(code, 400)
        self.details = details

    def to_dict(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        return err


def not_found(what: str) -> DomainError:
    return DomainError("not_found", f"{what} not found")


def forbidden(message: str = "not allowed") -> DomainError:
    return DomainError("forbidden", message)


def unauthorized(message: str = "authentication required") -> DomainError:
    return DomainError("unauthorized", message)


class UnknownUser(DomainError):
    """A signed token whose user does not exist (never did, or was deleted since): nothing is written for it."""

    def __init__(self):
        super().__init__("unauthorized", "unknown user")
