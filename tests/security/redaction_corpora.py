"""Redaction corpora: secret shapes real apps leak (must all be caught) and ids and numbers that
look secret-ish but are not (must all be left alone). Shared by the tests and bench/redaction.py.

The fake secrets are built from pieces so no scanner mistakes this file for a real leak.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

_B64 = "MIIEowIBAAKCAQEAuQ8fW2bJ0rZ5s3Y9kTq1Nn6Xx0hZf7Lw4XcR2T9pQ1vV8yB3mK+/="
_PEM_BODY = "\n".join(_B64[i : i + 32] for i in range(0, len(_B64), 32))


def _pem(kind: str) -> str:
    head = f"-----BEGIN {kind}PRIVATE KEY-----"
    return f"{head}\n{_PEM_BODY}\n-----END {kind}PRIVATE KEY-----"


_GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
_GH_FINE = "github_pat_" + "11ABCDEFG0abcdefghij_klmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV"
_STRIPE = "sk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQrSt"
_STRIPE_RESTRICTED = "rk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQrSt"
_SLACK_BOT = "xoxb-" + "2480561234-2468013579-AbCdEfGhIjKlMnOpQrStUvWx"
_SLACK_USER = "xoxp-" + "2480561234-2468013579-1357924680-0123456789abcdef"
_AWS_ID = "AKIA" + "Z3MXQWLP7RKT4HNE"
_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
_JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

# (text as it appears in a log line or attribute, the parts that must not survive)
SECRETS: list[tuple[str, tuple[str, ...]]] = [
    ("connecting to postgres://shop:Sup3r-S3cret@db:5432/shop", ("Sup3r-S3cret",)),
    ("clone https://x-access-token:Tk9zZWNyZXQxMjM@github.com/o/r.git", ("Tk9zZWNyZXQxMjM",)),
    ("sentry dsn https://4f9c2e1ab37d4b0c8f@o1.ingest.example.io/42", ("4f9c2e1ab37d4b0c8f",)),
    (f"aws key {_AWS_ID} in use", (_AWS_ID,)),
    (f"aws_secret_access_key = {_AWS_SECRET}", (_AWS_SECRET,)),
    (f"AWS_SECRET_ACCESS_KEY={_AWS_SECRET}", (_AWS_SECRET,)),
    (f"token {_GH} rejected", (_GH,)),
    (f"using {_GH_FINE}", (_GH_FINE,)),
    (f"charge with {_STRIPE}", (_STRIPE,)),
    (f"restricted {_STRIPE_RESTRICTED}", (_STRIPE_RESTRICTED,)),
    (f"slack {_SLACK_BOT}", (_SLACK_BOT,)),
    (f"slack user {_SLACK_USER}", (_SLACK_USER,)),
    (_pem("RSA "), (_B64[:32], _B64[32:64])),
    (_pem(""), (_B64[:32],)),
    (_pem("OPENSSH "), (_B64[:32],)),
    (_pem("EC "), (_B64[:32],)),
    ('{"key": ' + repr(_pem("ENCRYPTED "))[1:-1].join('""') + "}", (_B64[:32],)),
    ('{"apiKey": "k-1f2e3d4c5b6a"}', ("k-1f2e3d4c5b6a",)),
    ('{"clientSecret": "cs_9f8e7d6c5b4a"}', ("cs_9f8e7d6c5b4a",)),
    ('{"accessToken":"at-a1b2c3d4e5"}', ("at-a1b2c3d4e5",)),
    ("csrftoken=Zx81kLmN0pQr; sessionid=9s8d7f6g5h4j", ("Zx81kLmN0pQr", "9s8d7f6g5h4j")),
    (
        "GET /b/o?X-Amz-Credential=x&X-Amz-Signature=9f1c2b7e4d&X-Amz-SignedHeaders=host",
        ("9f1c2b7e4d",),
    ),
    (
        "https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sig=Zm9vYmFyJTJCcXV4&se=2030",
        ("Zm9vYmFyJTJCcXV4",),
    ),
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=QUJDREVGR0hJSktM==;", ("QUJDREVGR0hJSktM",)),
    ('login failed password="correct horse battery" for bob', ("correct", "horse", "battery")),
    ("login failed password='two words' for bob", ("two", "words")),
    ('payload {"password": "pa ss wo rd", "user": "bob"}', ("pa ss wo rd",)),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", ("abcdefghijklmnopqrstuvwxyz012345",)),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", ("dXNlcjpwYXNzd29yZA",)),
    ("Cookie: theme=dark; session=Qm9ndXNTZXNzaW9u", ("Qm9ndXNTZXNzaW9u",)),
    (f"id token {_JWT}", (_JWT[:40],)),
    ("card 4111 1111 1111 1111 declined", ("4111 1111 1111 1111",)),
    ("card 5555-5555-5555-4444 declined", ("5555-5555-5555-4444",)),
    ("amex 378282246310005", ("378282246310005",)),
    ("amex 3782 822463 10005", ("3782 822463 10005",)),
    ("discover 6011111111111117, ok", ("6011111111111117",)),
    ("db_password: hunter2hunter2", ("hunter2hunter2",)),
    ("DB-PASSWORD=hunter2hunter2", ("hunter2hunter2",)),
    ("refresh_token=rt.8f7e6d5c4b3a", ("rt.8f7e6d5c4b3a",)),
    ("x-api-key: 5b3f0c1e9a7d", ("5b3f0c1e9a7d",)),
    ("private_key=MIICdgIBADANBgkqhkiG9w0B", ("MIICdgIBADANBgkqhkiG9w0B",)),
]

# Must come out unchanged.
FALSE_POSITIVES: list[str] = [
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "span_id=0000000000000000 trace_id=00000000000000000000000000000000",
    "0000000000000000",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "uuid 12345678-1234-5678-1234-567812345678",
    "at 1732700000000 (epoch ms)",
    "at 1732700000000000 (epoch us)",
    "at 1732700000000000000 (epoch ns)",
    "order 4111111111111112 shipped",  # card prefix, Luhn-invalid
    "order 1234567890123 shipped",  # no card prefix
    "order 9111111111111111111 shipped",
    "duration 0.4111111111111111 s",
    "ratio 4111111111111111.5",
    "phone +1 415 555 2671",
    "isbn 978-3-16-148410-0",
    "http://example.com:8080/path?q=1&page=2",
    "user=bob count=3 token_count=5 max_tokens=100 passwordless=true",
    "GET /api/v1/items/42?sort=asc",
    "version 1.2.3-rc.4",
    "[REDACTED]",
    "ip 192.168.10.200 port 5432",
    "sha 3f786850e387550fdab836ed7e6dc881de23001b",
]


def leaked_after(redactor: Any, case: tuple[str, tuple[str, ...]]) -> list[str]:
    """The secret parts of `case` still present after redaction (empty when caught)."""
    text, secrets = case
    redacted = redactor.redact_text(text)
    return [secret for secret in secrets if secret in redacted]


def _epoch(rnd: random.Random, scale: int) -> str:
    return str(rnd.randrange(978_307_200, 2_000_000_000) * scale + rnd.randrange(scale))


def _order_number(rnd: random.Random) -> str:
    return "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(13, 20)))


def random_ids(kind: str, count: int, seed: int = 12) -> list[str]:
    rnd = random.Random(seed)
    makers: dict[str, Callable[[], str]] = {
        "trace ids (32 hex)": lambda: format(rnd.getrandbits(128), "032x"),
        "span ids (16 hex)": lambda: format(rnd.getrandbits(64), "016x"),
        "UUIDs": lambda: str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "epoch ms/us/ns timestamps": lambda: _epoch(rnd, rnd.choice((1000, 1_000_000, 1_000_000_000))),
        "13-19-digit order numbers": lambda: _order_number(rnd),
    }
    make = makers[kind]
    return [make() for _ in range(count)]


RANDOM_ID_KINDS = (
    "trace ids (32 hex)",
    "span ids (16 hex)",
    "UUIDs",
    "epoch ms/us/ns timestamps",
    "13-19-digit order numbers",
)
