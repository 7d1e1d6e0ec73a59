"""Every status code Pombo answers, with its exact text (SPEC §2, §4).

HTTP statuses live at the edge (api/), not here.
"""

from __future__ import annotations

OK = 0
WR = 1
FAIL_AUTHENTICATION = 100
SID_NOT_FOUND = 102
ACCOUNT_INACTIVE = 110
PERMISSION_DENIED = 123
IP_TRIALS_EXCEEDED = 131
USER_TRIALS_EXCEEDED = 132
INVALID_USER_PASS = 140
IP_NOT_ALLOWED = 142
TOKENS_BLOCKED = 198
IP_BLOCKED = 199
NO_SMS_ACCOUNT = 220
NO_DEST = 230
NO_TEXT = 235
TEXT_TOO_LONG = 238
MOBILE_NOT_VALID = 240
HTTP_DUPLICATE = 244
NIGHT_LIMIT = 245
NO_CREDIT = 250
NO_TARIFF = 255
NUMBER_BLOCKED = 260
BLOCKED_TEXT = 270
PROVIDER_ERROR = 300
BAD_REQUEST = 400
REQUEST_TIMEOUT = 408
REQUEST_TOO_LARGE = 413

TEXTS: dict[int, str] = {
    OK: "OK",
    WR: "WR",
    FAIL_AUTHENTICATION: "fail authentication",
    SID_NOT_FOUND: "SID not found",
    ACCOUNT_INACTIVE: "account inactive",
    PERMISSION_DENIED: "permission denied",
    IP_TRIALS_EXCEEDED: "IP trials exceeded",
    USER_TRIALS_EXCEEDED: "user trials exceeded",
    INVALID_USER_PASS: "invalid user/pass",
    IP_NOT_ALLOWED: "IP not allowed",
    TOKENS_BLOCKED: "tokens blockeds",
    IP_BLOCKED: "IP blocked",
    NO_SMS_ACCOUNT: "No sms account",
    NO_DEST: "No dest",
    NO_TEXT: "No text",
    # 238's text carries numbers: see text_too_long().
    TEXT_TOO_LONG: "Text NN ch more than 160 ch",
    MOBILE_NOT_VALID: "Mobile is not valid",
    HTTP_DUPLICATE: "http duplicidade",
    NIGHT_LIMIT: "night limit",
    NO_CREDIT: "no credit",
    NO_TARIFF: "no sms tarif",
    NUMBER_BLOCKED: "number blocked by list",
    BLOCKED_TEXT: "Blocked text",
    PROVIDER_ERROR: "error sms provider",
    BAD_REQUEST: "bad request",
    REQUEST_TIMEOUT: "request timeout",
    REQUEST_TOO_LARGE: "request too large",
}

# The codes that count as a failed authentication attempt (SPEC §2).
FAILED_ATTEMPT_CODES = frozenset({FAIL_AUTHENTICATION, SID_NOT_FOUND, INVALID_USER_PASS})


def text_too_long(length: int, limit: int) -> str:
    """The 238 text: the body's length and the customer's limit."""
    return f"Text {length} ch more than {limit} ch"


class Rejection:
    """A refusal with its code and exact text; cheap, immutable, comparable."""

    __slots__ = ("code", "status")

    def __init__(self, code: int, status: str | None = None) -> None:
        self.code = code
        self.status = status if status is not None else TEXTS[code]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rejection) and (self.code, self.status) == (other.code, other.status)

    def __hash__(self) -> int:
        return hash((self.code, self.status))

    def __repr__(self) -> str:
        return f"Rejection({self.code}, {self.status!r})"


def unsupported_type(ctype: str) -> Rejection:
    """400 for a body of a type Pombo cannot read (SPEC §1), naming the type."""
    return Rejection(BAD_REQUEST, f"unsupported content type: {ctype[:100]}")


RURL_NOT_ALLOWED = Rejection(BAD_REQUEST, "rurl not allowed")


def reject(code: int) -> Rejection:
    """The rejection for a code with its fixed text."""
    return Rejection(code)
