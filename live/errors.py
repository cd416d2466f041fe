"""Domain errors and the one registry of their codes.

`Code` lists every error code the server answers, each once, with its HTTP status and default message; a code
means the same status over REST, in a socket ack (`ack=True`: docs/protocol.md lists these) and in a webhook's
answer. A raise site names a code (`DomainError("conflict", "...")`) and never a status; `error_body` builds the
`{code, message, details?}` object that REST answers as `{"error": ...}` and acks as `{ok: false, error: ...}`.
tests/http/test_errors_registry.py checks that every code used under live/ is here, and that docs/protocol.md and the
OpenAPI document agree with this table."""
from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Error code -> HTTP status, default message, and whether a socket ack may carry it."""

    status: int
    message: str
    ack: bool

    def __new__(cls, value: str, status: int, message: str, ack: bool = False) -> "Code":
        member = str.__new__(cls, value)
        member._value_ = value
        member.status, member.message, member.ack = status, message, ack
        return member

    # 400
    INVALID = "invalid", 400, "invalid request", True
    INVALID_SIGNATURE = "invalid_signature", 400, "invalid webhook signature"  # the caller is a provider
    INVALID_PAYLOAD = "invalid_payload", 400, "the webhook's content does not fit"
    # 401: who is calling is unknown, or the credential is refused
    UNAUTHORIZED = "unauthorized", 401, "authentication required", True
    INVALID_CODE = "invalid_code", 401, "wrong code"
    CODE_EXPIRED = "code_expired", 401, "the code has expired; request a new one"
    SIGNATURE_MISMATCH = "signature_mismatch", 401, "the signature does not match the address"
    NONCE_USED = "nonce_used", 401, "unknown or already used nonce; request a new one"
    NONCE_EXPIRED = "nonce_expired", 401, "the nonce has expired; request a new one"
    # 403
    FORBIDDEN = "forbidden", 403, "not allowed", True
    SUSPENDED = "suspended", 403, "this account is suspended"
    BANNED = "banned", 403, "you are banned from this stream", True
    MUTED = "muted", 403, "you are muted", True
    # 404, 405, 408
    NOT_FOUND = "not_found", 404, "not found", True
    PUSH_DISABLED = "push_disabled", 404, "Web Push is off on this server (no VAPID keys configured)"
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, "method not allowed"
    REQUEST_TIMEOUT = "request_timeout", 408, "the request did not arrive in time"
    # 409: the request is fine, the state of things refuses it
    CONFLICT = "conflict", 409, "conflict", True
    OUT_OF_STOCK = "out_of_stock", 409, "sold out", True
    LIMIT_EXCEEDED = "limit_exceeded", 409, "more of this item than one buyer may hold", True
    HOLD_EXPIRED = "hold_expired", 409, "your hold on this item has ended", True
    STREAM_NOT_LIVE = "stream_not_live", 409, "the stream is not live", True
    CART_EMPTY = "cart_empty", 409, "your cart is empty"
    PRODUCT_UNAVAILABLE = "product_unavailable", 409, "some products are no longer sold"
    IN_PROGRESS = "in_progress", 409, "a checkout with this Idempotency-Key is in progress; retry shortly"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict", 409, "the payment provider refused the idempotency key"
    COUPON_EXHAUSTED = "coupon_exhausted", 409, "this coupon has been used up"
    RATE_EXPIRED = "rate_expired", 409, "the shipping rate has expired or no longer fits the cart; choose a fresh one"
    LABEL_EXISTS = "label_exists", 409, "the order already has a live label (void it first)"
    NOT_RETURNABLE = "not_returnable", 409, "this order cannot be returned (details.reason says why)"
    LIVEKIT_BACKEND = "livekit_backend", 409, "this server's video goes through LiveKit: use the join ack's media"
    LIVEKIT_NOT_CONFIGURED = "livekit_not_configured", 409, "LiveKit is not configured on this server (LIVEKIT_URL)"
    FOLLOW_LIMIT = "follow_limit", 409, "you follow as many sellers as one user may (FOLLOW_MAX); unfollow one first"
    # 411, 413, 415
    LENGTH_REQUIRED = "length_required", 411, "a Content-Length is required"
    PAYLOAD_TOO_LARGE = "payload_too_large", 413, "body too large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, "unsupported media type"
    # 422: understood, but not acceptable
    VALIDATION_FAILED = "validation_failed", 422, "invalid request body"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused", 422, "this Idempotency-Key was used with a different request"
    INVALID_COUPON = "invalid_coupon", 422, "this coupon cannot be used"
    PROVIDER_UNAVAILABLE = "provider_unavailable", 422, "this payment provider is not available"
    REFUND_REFUSED = "refund_refused", 422, "the payment provider refused the refund"
    # 429
    RATE_LIMITED = "rate_limited", 429, "too many requests; try again later", True
    TOO_MANY_CONNECTIONS = "too_many_connections", 429, "too many connections from your address are opening"
    # 5xx
    INTERNAL = "internal", 500, "internal server error", True
    PAYMENT_PROVIDER_ERROR = "payment_provider_error", 502, "the payment provider failed"
    CARRIER_ERROR = "carrier_error", 502, "the shipping carrier failed"
    MEDIA_SERVER_ERROR = "media_server_error", 502, "the media server (LiveKit) failed or refused the call"
    WEBHOOK_FAILED = "webhook_failed", 502, "the webhook could not be delivered"
    UNAVAILABLE = "unavailable", 503, "temporarily unavailable"


def error_body(code: str, message: str, details: object = None) -> dict:
    """The error object of every answer: REST `{"error": <this>}`, socket ack `{ok: false, error: <this>}`."""
    err: dict = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return err


class DomainError(Exception):
    """An expected failure with a registered code (`Code`, which gives its HTTP status) and a human message
    (the code's default message when none is given)."""

    def __init__(self, code: str, message: str | None = None, *, details: object = None):
        entry = Code(code)  # an unregistered code is a bug: ValueError
        message = message or entry.message
        super().__init__(message)
        self.code = entry.value
        self.message = message
        self.status = entry.status
        self.details = details

    def body(self) -> dict:
        return error_body(self.code, self.message, self.details)


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
