"""Checks on an OTLP/HTTP request body: a strict Content-Length and decompression with an output cap.

Pure functions, so the receiver's limits are testable without sockets. The cap applies to the
decompressed size: 2 MiB of gzip can inflate to 4 GiB, so inflating stops as soon as the output
passes the cap, without ever holding more than the cap (plus one chunk) in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

_INFLATE_CHUNK = 256 * 1024
_ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS  # wbits that accept a zlib or a gzip header
ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")


class BodyError(ValueError):
    """A request body the receiver refuses; `status` is the HTTP answer (400, 411, 413, 415)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def content_length(values: Sequence[str], *, transfer_encoding: str | None, cap: int) -> int:
    """The body length announced by the Content-Length header(s), checked before reading a byte.

    Only plain decimal digits are accepted: ``int()`` would take ``-1``, ``+5``, ``1_000`` and
    whitespace, and a negative length once skipped the size check.
    """
    if transfer_encoding is not None and transfer_encoding.strip().lower() != "identity":
        raise BodyError(411, "chunked or encoded transfer is not supported; send Content-Length")
    if not values:
        raise BodyError(411, "Content-Length is required")
    distinct = {value.strip() for value in values}
    if len(distinct) != 1:
        raise BodyError(400, "conflicting Content-Length headers")
    text = distinct.pop()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise BodyError(400, f"invalid Content-Length {text[:32]!r}: expected a non-negative integer")
    length = int(text)
    if length > cap:
        raise BodyError(413, f"body of {length} bytes exceeds the {cap}-byte cap")
    return length


def decode_body(body: bytes, encoding: str, *, cap: int) -> bytes:
    """`body` decompressed per Content-Encoding; BodyError(413) as soon as the output passes `cap`."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > cap:
            raise BodyError(413, f"body exceeds the {cap}-byte cap")
        return body
    if encoding not in ENCODINGS:
        raise BodyError(415, f"unsupported Content-Encoding {encoding[:32]!r}: expected gzip or deflate")
    inflater = zlib.decompressobj(_ZLIB_OR_GZIP)
    out = bytearray()
    pending = body
    try:
        while not inflater.eof:
            limit = min(_INFLATE_CHUNK, cap + 1 - len(out))
            chunk = inflater.decompress(pending, limit)
            out += chunk
            if len(out) > cap:
                raise BodyError(413, f"body inflates past the {cap}-byte cap")
            pending = inflater.unconsumed_tail
            if not pending and len(chunk) < limit:
                break  # input used up and nothing more buffered
    except zlib.error as exc:
        raise BodyError(400, f"malformed {encoding} body: {exc}") from None
    if not inflater.eof:
        raise BodyError(400, f"truncated {encoding} body")
    return bytes(out)
