"""Mask secrets in log records, span data and metric labels, keeping keys and records, in linear time.

One :class:`Redactor` holds the policy (secret key names and value patterns); the logging Filter
here, the span processor, the OTLP log processor, the structlog processor and the RED label hook
all apply it, so every path out of the process agrees. Every scan is linear in the value's length
(tests/security/test_redaction_budget.py), because it runs on the app's request thread.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import regex

from otelpipe.processors import log_correlation

_logger = logging.getLogger("otelpipe.logs")

DEFAULT_REPLACEMENT = "[REDACTED]"

DEFAULT_SECRET_KEYS: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "set_cookie",
        "private_key",
        "client_secret",
        # Cloud and web-framework names (matched after case/separator folding, see `normalise_key`).
        "secret_key",
        "access_key",
        "secret_access_key",
        "account_key",
        "credential",
        "credentials",
        "csrf_token",
        "xsrf_token",
        "sessionid",
        "signature",
        "sig",
        "cvv",
        "cvc",
    }
)
# Values under these keys are ids, never secrets: a 16-digit span id is not a card number.
_ID_KEYS: frozenset[str] = frozenset(
    {"traceid", "spanid", "parentid", "parentspanid", "oteltraceid", "otelspanid", "linkedtraceid"}
)

# A named group ``secret`` limits the mask to that part, so "Bearer [REDACTED]" still says what it was.
# Every default pattern is linear: possessive quantifiers over classes that cannot overlap what follows,
# so a failed match never backtracks into its own run (tests/security/test_redaction_budget.py).
BEARER_PATTERN = re.compile(r"(?i)(?<![A-Za-z0-9])bearer\s++(?P<secret>[A-Za-z0-9\-._~+/]++=*+)")
JWT_PATTERN = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}+\.[A-Za-z0-9_-]{2,}+\.[A-Za-z0-9_-]*+")
# Vendor tokens with a fixed shape: AWS access key ids, GitHub, GitLab, Stripe, Slack, Google API keys.
TOKEN_PATTERN = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|gh[pousr]_[A-Za-z0-9]{36,255}+"
    r"|github_pat_[A-Za-z0-9_]{22,255}+"
    r"|glpat-[A-Za-z0-9_-]{20,255}+"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,247}+"
    r"|xox[abposre]-[A-Za-z0-9-]{10,250}+"
    r"|AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"
    r")"
)
# The password of ``scheme://user:password@host`` (or the whole userinfo when it has no ``:``,
# as in ``https://TOKEN@host``).
URL_USERINFO_PATTERN = re.compile(
    r"(?i)(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,20}+://(?:[^/\s:@?#\[\]]{1,256}+:)?+(?P<secret>[^/\s@?#]{1,256}+)@"
)
# PEM private keys (PKCS#1/#8, EC, OpenSSH, encrypted, PGP), header to END line; the body class
# excludes "-", so a block without its END line stops at the next dash.
PEM_PATTERN = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[A-Za-z0-9+/=\s:,.\\]|-(?!----))*+"
    r"(?:-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)?+"
)
# Maximal digit runs with single space/dash separators holding at least 13 digits. Matches only
# locate runs; `_card_spans` picks the card-like candidates in them with a single left-to-right scan.
CARD_PATTERN = re.compile(r"[0-9](?:[ -]?+[0-9]){12,}+")
# Substrings without which a default pattern cannot match: (match on lower-cased text?, substrings).
_HINTS: dict[re.Pattern[str], tuple[bool, tuple[str, ...]]] = {
    PEM_PATTERN: (False, ("PRIVATE KEY",)),
    URL_USERINFO_PATTERN: (False, ("://",)),
    BEARER_PATTERN: (True, ("bearer",)),
    JWT_PATTERN: (False, ("eyJ",)),
    TOKEN_PATTERN: (
        False,
        (
            "AKIA",
            "ASIA",
            "ABIA",
            "ACCA",
            "hp_",
            "ho_",
            "hu_",
            "hs_",
            "hr_",
            "_pat_",
            "glpat-",
            "k_live_",
            "k_test_",
            "xox",
            "AIza",
        ),
    ),
}
# One C-level scan standing in for the case-sensitive hint substrings above (a text holding none of
# them skips every hinted pattern): about 1 us on a short log message against 2 us for the substring
# loop, 4x faster on long text. Pure literals, no anchors: containing a hint means containing a match.
_CASED_GATE = re.compile(
    r"PRIVATE KEY|://|eyJ|A(?:KIA|SIA|BIA|CCA|Iza)|h[pousr]_|_pat_|glpat-|k_(?:live|test)_|xox"
)
_LOWER_NEEDLES: tuple[str, ...] = tuple(n for lower, ns in _HINTS.values() if lower for n in ns)
# Used only while it provably covers every case-sensitive hint (checked here, at import).
_GATE_COVERS_HINTS = all(_CASED_GATE.search(n) for lower, ns in _HINTS.values() if not lower for n in ns)
DEFAULT_PATTERNS: tuple[re.Pattern[str], ...] = (
    PEM_PATTERN,
    URL_USERINFO_PATTERN,
    BEARER_PATTERN,
    JWT_PATTERN,
    TOKEN_PATTERN,
)

_MAX_DEPTH = 8
_KEY_CACHE_LIMIT = 4096
# Results for values up to this length are remembered (at most _TEXT_CACHE_LIMIT, then cleared).
_TEXT_CACHE_MAX_LEN = 256
_TEXT_CACHE_LIMIT = 4096
_CARD_MIN, _CARD_MAX = 13, 19
# Digits per group in a separated card ("4111 1111 1111 1111", Amex "3782 822463 10005").
_GROUP_MIN, _GROUP_MAX = 3, 6
# Hard per-value budget: longer text is redacted in chunks of at most this many characters (the
# SDK attribute value cap otelpipe sets), so no pattern ever sees more than this at once.
MAX_CHUNK = 16384
# Wall-clock budget for the user's own OTELPIPE_REDACT_PATTERNS on one value; past it the value is
# masked whole (fail closed) and the timeout counted.
CUSTOM_PATTERN_TIMEOUT_S = 0.02
# Values `redact_value` returns unchanged under a non-secret key (exact types: a subclass may print
# as anything).
_CLEAN_SCALARS: frozenset[type] = frozenset({int, float, bool, type(None)})
_DIGIT_GROUP = re.compile(r"[0-9]+")
# 32 lower-case hex digits: request ids otelpipe generates (and most proxies send), uuid4().hex. No
# default pattern can match one: each needs a character outside [0-9a-f] (":", "=", "_", "-", a
# space, an upper-case or a later letter), and a 13-19-digit run inside it touches a letter or is
# the whole 32 digits, so it is never a card. Such a value skips the scan under the default
# patterns (tests/logs/test_logs_redaction.py checks the claim on generated ids).
_HEX_ID = re.compile(r"[0-9a-f]{32}").fullmatch
# A 13-19-digit group, or a stretch of 3-6-digit groups joined by one space or dash, optionally
# ended by a 1-2-digit group. Every group is checked whole by a lookahead, so nothing backtracks.
_CARD_SEGMENT = re.compile(
    r"(?<![0-9])(?:(?P<long>[0-9]{13,19}(?![0-9]))"
    r"|[0-9]{3,6}(?![0-9])(?:[ -][0-9]{3,6}(?![0-9]))*+(?:[ -][0-9]{1,2}(?![0-9]))?+)"
)
_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")  # digit -> digit sum of its double


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def normalise_key(key: str) -> str:
    """Split camelCase, lower-case and map ``-`` to ``_``: ``apiKey``, ``Api-Key`` and ``api_key``
    are one key, as are ``X-Amz-Signature`` and ``x_amz_signature``."""
    return _CAMEL_BOUNDARY.sub("_", key).lower().replace("-", "_")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment cards.

    Digit sums are taken over bytes in C: every other digit from the right is mapped to its
    doubled digit sum by `str.translate` first.
    """
    plain = digits[-1::-2]
    doubled = digits[-2::-2].translate(_LUHN_DOUBLE)
    total = sum(plain.encode()) + sum(doubled.encode()) - 48 * len(digits)
    return total % 10 == 0


def _issuer_length_ok(digits: str) -> bool:
    """A card-issuer prefix (IIN) that issues numbers of this length.

    Cuts false positives: epoch ms/us/ns timestamps start with 1, zero ids with 0, and neither
    is an issuer prefix. Visa 4; Mastercard 51-55 and 2221-2720; Mir 2200-2204; Amex 34/37;
    Diners 30/36/38/39; JCB 35; Discover, UnionPay, Maestro, RuPay 6; Maestro 50/56-59.
    """
    length = len(digits)
    first = digits[0]
    if first == "4":
        return length in (13, 16, 19)
    if first == "5":
        return length == 16 if "1" <= digits[1] <= "5" else True
    if first == "6":
        return True
    if first == "3":
        second = digits[1]
        if second in "47":
            return length == 15
        if second == "5":
            return length >= 16
        return second in "0689" and length >= 14
    if first == "2":
        prefix = int(digits[:4])
        return (2221 <= prefix <= 2720 and length == 16) or (2200 <= prefix <= 2204 and length >= 16)
    return False


def card_like(digits: str) -> bool:
    """13-19 digits with an issuer prefix for that length and a valid Luhn checksum."""
    return _CARD_MIN <= len(digits) <= _CARD_MAX and _issuer_length_ok(digits) and luhn_valid(digits)


def _glued(text: str, index: int, step: int) -> bool:
    """Whether the character at ``index`` joins a digit run to a word or a decimal number.

    A run glued to letters is part of a hex id or a word; one next to ``.`` and a digit is the
    integer or fraction part of a decimal (``0.4111111111111111``). Neither is a card.
    """
    if not 0 <= index < len(text):
        return False
    char = text[index]
    if char.isalnum() or char == "_":
        return True
    beyond = index + step
    return char == "." and 0 <= beyond < len(text) and text[beyond].isdigit()


# ``span_id=``, ``"traceId": "``, ``otelSpanID: `` just before a digit run: an id, not a card.
_ID_KEY_BEFORE = re.compile(r"(?i)(?:span|trace|parent)_?id[\"' ]{0,2}[:=][\"' ]{0,2}$")


def _after_id_key(text: str, start: int) -> bool:
    return _ID_KEY_BEFORE.search(text, max(0, start - 24), start) is not None


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Spans of card-like numbers, found in one left-to-right pass.

    Candidates are a whole digit group of 13-19 digits, or consecutive groups of 3-6 digits (the
    last may be shorter) joined by single spaces or dashes with 13-19 digits in all. `_CARD_SEGMENT`
    finds the stretches made of such groups (in C, skipping `1-1-1-…` at regex speed); each group
    is then looked at with at most four followers, so the cost is linear in ``len(text)``.
    """
    spans: list[tuple[int, int]] = []
    for segment in _CARD_SEGMENT.finditer(text):
        start, end = segment.span()
        if end - start < _CARD_MIN:
            continue
        first_ok = not _glued(text, start - 1, -1)
        last_ok = not _glued(text, end, 1)
        if segment.group("long") is not None:
            if first_ok and last_ok and card_like(segment.group()) and not _after_id_key(text, start):
                spans.append((start, end))
            continue
        groups = [(m.start() + start, m.end() + start) for m in _DIGIT_GROUP.finditer(segment.group())]
        lo = 0 if first_ok else 1
        hi = len(groups) if last_ok else len(groups) - 1
        index = lo
        while index < hi:
            g_start, g_end = groups[index]
            size = g_end - g_start
            if size < _GROUP_MIN or text[g_start] not in "23456":  # no issuer starts with 0, 1, 7-9
                index += 1
                continue
            best = -1
            parts = [text[g_start:g_end]]
            total = size
            last = index + 1
            while last < hi:
                n_start, n_end = groups[last]
                n_size = n_end - n_start
                if total + n_size > _CARD_MAX:
                    break
                parts.append(text[n_start:n_end])
                total += n_size
                if total >= _CARD_MIN and card_like("".join(parts)):
                    best = last
                if n_size < _GROUP_MIN:  # a short group only ends a card ("4222 2222 2222 2")
                    break
                last += 1
            if best >= 0:
                spans.append((g_start, groups[best][1]))
                index = best + 1
            else:
                index += 1
    return spans


def _mask_spans(text: str, spans: list[tuple[int, int]], replacement: str) -> str:
    out: list[str] = []
    position = 0
    for start, end in spans:
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)


def _chunks(text: str) -> list[str]:
    """``text`` cut into pieces of at most `MAX_CHUNK` characters, at a line break or space if any.

    Cutting at whitespace keeps most secrets whole: every pattern here stops at whitespace. A cut
    right after ``key:``/``key=`` (whose value may follow a space) moves to an earlier space.
    """
    pieces: list[str] = []
    position = 0
    length = len(text)
    while length - position > MAX_CHUNK:
        floor = position + MAX_CHUNK // 2
        end = position + MAX_CHUNK
        cut = -1
        for _ in range(8):  # bounded: a few earlier spaces, then a hard cut
            candidate = max(
                text.rfind("\n", floor, end), text.rfind(" ", floor, end), text.rfind("\t", floor, end)
            )
            if candidate < 0:
                break
            if not text[max(floor, candidate - 16) : candidate].rstrip().endswith((":", "=")):
                cut = candidate + 1
                break
            end = candidate
        if cut < 0:
            cut = position + MAX_CHUNK
        pieces.append(text[position:cut])
        position = cut
    pieces.append(text[position:])
    return pieces


def compile_custom_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a user-supplied pattern with the ``regex`` module, which can stop a runaway match.

    Python's ``re`` has no timeout: ``(\\w+\\s?)+@example\\.com`` took 9 s on 26 characters.
    Raises ``ValueError`` naming the problem; the syntax is Python's ``re`` syntax.
    """
    try:
        return regex.compile(pattern, regex.VERSION0)
    except regex.error as exc:
        raise ValueError(f"{pattern!r}: {exc}") from None


# ``key: value`` / ``key=value`` / ``"key": "value"`` in free text. Only the key and separator are
# matched here; `Redactor._key_value_spans` decides by the key (same rules as attribute keys) and
# then reads the value with `_KV_VALUE`, so a non-secret key never swallows the text after it.
_KV_KEY = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z][A-Za-z0-9_.-]{0,63}+)\\?+[\"']?+\s{0,16}+[:=]\s{0,16}+"
)
_KV_VALUE = re.compile(
    r"(?:(?i:bearer|basic|digest|token)[ \t]++)?+"
    r"\\?+(?:\"(?P<dq>[^\"\\\n]{0,4096}+(?:\\.[^\"\\\n]{0,4096}+){0,64}+)\""
    r"|'(?P<sq>[^'\n]{0,4096}+)'"
    r"|[\"']?+(?P<bare>[^\s\"',;&}\]<>\\]{1,4096}+))"
)
_TO_LINE_END = re.compile(r"[^\r\n\"]{1,4096}+")  # cookie headers: "a=1; b=2" is one secret
_WHOLE_LINE_KEYS = frozenset({"cookie", "set_cookie"})


class Redactor:
    """Secret-masking policy: key names whose values are always masked, and value patterns.

    Keys match after `normalise_key` (case, camelCase, ``-``/``_``), on their last dotted segment
    (``http.request.header.authorization``), that segment without underscores (``csrftoken``) or a
    ``_``-suffix (``db_password``). Matching values are replaced by ``replacement``; the key stays,
    so the reader knows something was there. Values under trace/span id keys are never scanned.
    """

    def __init__(
        self,
        keys: frozenset[str] = DEFAULT_SECRET_KEYS,
        patterns: Sequence[re.Pattern[str]] = DEFAULT_PATTERNS,
        replacement: str = DEFAULT_REPLACEMENT,
        custom_patterns: Sequence[str] = (),
    ) -> None:
        """``patterns`` are trusted code (Python ``re``, must be linear); ``custom_patterns`` are
        configuration text, run under `CUSTOM_PATTERN_TIMEOUT_S` per value (see `compile_custom_pattern`).
        """
        self._keys = frozenset(normalise_key(k) for k in keys)
        self._suffixes = tuple("_" + k for k in self._keys)
        self.replacement = replacement
        self._compact = frozenset(k.replace("_", "") for k in self._keys)
        # Patterns run before key=value so "Authorization: Bearer x" masks the token, not "Bearer".
        self._patterns: tuple[re.Pattern[str], ...] = tuple(patterns)
        self._hinted = tuple((pattern, _HINTS.get(pattern)) for pattern in self._patterns)
        self._gated = _GATE_COVERS_HINTS and all(hints is not None for _, hints in self._hinted)
        self._custom = tuple(compile_custom_pattern(p) for p in custom_patterns)
        # Only the default patterns are known to leave a 32-hex-digit id alone (`_HEX_ID`).
        self.hex_ids_clean = not self._custom and all(p in DEFAULT_PATTERNS for p in self._patterns)
        # The last such id found clean: the log filter and the OTLP log processor both see each
        # request's id, and the second then needs one identity check instead of the regex.
        self.clean_id: str | None = None
        self._key_cache: dict[str, bool] = {}
        self._id_key_cache: dict[str, bool] = {}
        self._text_cache: dict[str, str] = {}
        self.custom_timeouts = 0
        self.texts_scanned = 0  # a diagnostic count (not exact under threads)

    def is_secret_key(self, key: str) -> bool:
        """True when values under ``key`` must be masked whatever they look like."""
        cached = self._key_cache.get(key)
        if cached is not None:
            return cached
        segment = normalise_key(key).rsplit(".", 1)[-1]
        secret = (
            segment in self._keys
            or segment.replace("_", "") in self._compact
            or segment.endswith(self._suffixes)
        )
        if len(self._key_cache) >= _KEY_CACHE_LIMIT:
            self._key_cache.clear()
        self._key_cache[key] = secret
        return secret

    def _is_id_key(self, key: str) -> bool:
        cached = self._id_key_cache.get(key)
        if cached is None:
            cached = normalise_key(key).rsplit(".", 1)[-1].replace("_", "") in _ID_KEYS
            if len(self._id_key_cache) >= _KEY_CACHE_LIMIT:
                self._id_key_cache.clear()
            self._id_key_cache[key] = cached
        return cached

    def _hex_id_clean(self, value: str) -> bool:
        if value is self.clean_id:
            return True
        if self.hex_ids_clean and len(value) == 32 and _HEX_ID(value) is not None:
            self.clean_id = value
            return True
        return False

    def known_clean(self, key: object, value: object) -> bool:
        """True when the caches already show ``redact_value(key, value)`` returns ``value`` itself.

        A few dict lookups instead of a scan: the key is a known non-secret and the value is a
        scalar, a string under a trace/span id key, or a short string already seen clean. False
        means "unknown", never "secret": the caller then runs the full `redact_value`.
        """
        if self._key_cache.get(key) is not False:  # type: ignore[call-overload]
            return False
        kind = type(value)
        if kind is str:
            return (
                self._id_key_cache.get(key) is True  # type: ignore[call-overload]
                or self._text_cache.get(value) == value  # type: ignore[call-overload]
                or self._hex_id_clean(value)  # type: ignore[arg-type]
            )
        return kind in _CLEAN_SCALARS

    def _key_value_spans(self, text: str) -> list[tuple[int, int]]:
        """Spans of the values of secret keys written as ``key=value`` in ``text``, left to right."""
        spans: list[tuple[int, int]] = []
        covered = 0
        replacement = self.replacement
        for match in _KV_KEY.finditer(text):
            if match.start() < covered or not self.is_secret_key(match.group("key")):
                continue
            position = match.end()
            if text.startswith(replacement, position):
                covered = position + len(replacement)
                continue
            if normalise_key(match.group("key")).rsplit(".", 1)[-1] in _WHOLE_LINE_KEYS:
                line = _TO_LINE_END.match(text, position)
                if line is not None:
                    spans.append(line.span())
                    covered = line.end()
                continue
            value = _KV_VALUE.match(text, position)
            if value is None:
                continue
            group = (
                "dq" if value.group("dq") is not None else "sq" if value.group("sq") is not None else "bare"
            )
            start, end = value.span(group)
            if end > start and text[start:end] != replacement:
                if text.startswith(replacement, start):
                    continue
                spans.append((start, end))
            covered = value.end()
        return spans

    def _replace(self, match: re.Match[str] | regex.Match[str]) -> str:
        if "secret" in match.re.groupindex and match.group("secret") is not None:
            start, end = match.span("secret")
            base = match.start()
            text = match.group(0)
            return text[: start - base] + self.replacement + text[end - base :]
        return self.replacement

    def redact_text(self, text: str) -> str:
        """Mask every pattern match in ``text``; returns ``text`` itself when nothing matched.

        Linear in ``len(text)``: longer values are redacted chunk by chunk (`MAX_CHUNK`).
        """
        self.texts_scanned += 1
        if len(text) <= _TEXT_CACHE_MAX_LEN:
            # Short values repeat (methods, routes, hosts, user agents): scan each once.
            cached = self._text_cache.get(text)
            if cached is not None:
                return text if cached == text else cached  # `text` itself when nothing was masked
            masked = self._redact_chunk(text)
            if len(self._text_cache) >= _TEXT_CACHE_LIMIT:
                self._text_cache.clear()
            self._text_cache[text] = masked
            return masked
        if len(text) <= MAX_CHUNK:
            return self._redact_chunk(text)
        pieces = _chunks(text)
        redacted = [self._redact_chunk(piece) for piece in pieces]
        if all(new is old for new, old in zip(redacted, pieces, strict=True)):
            return text
        return "".join(redacted)

    def _may_match_hinted(self, text: str) -> bool:
        if _CASED_GATE.search(text) is not None:
            return True
        if _LOWER_NEEDLES:
            lowered = text.lower()
            for needle in _LOWER_NEEDLES:
                if needle in lowered:
                    return True
        return False

    def _redact_chunk(self, text: str) -> str:
        # Every pattern hinted and no hint present: no pattern can match, skip them all at once.
        hinted = self._hinted if not self._gated or self._may_match_hinted(text) else ()
        for pattern, hints in hinted:
            if hints is not None:
                # A substring test is far cheaper than a regex scan that fails at every position.
                lower, needles = hints
                haystack = text.lower() if lower else text
                for needle in needles:
                    if needle in haystack:
                        break
                else:
                    continue
            if pattern.search(text) is not None:
                text = pattern.sub(self._replace, text)
        if CARD_PATTERN.search(text) is not None:
            spans = _card_spans(text)
            if spans:
                text = _mask_spans(text, spans, self.replacement)
        if self._custom:
            text = self._redact_custom(text)
        if ":" in text or "=" in text:
            spans = self._key_value_spans(text)
            if spans:
                text = _mask_spans(text, spans, self.replacement)
        return text

    def _redact_custom(self, text: str) -> str:
        """Apply the configured patterns within one shared deadline; on timeout mask the value."""
        deadline = time.monotonic() + CUSTOM_PATTERN_TIMEOUT_S
        try:
            for pattern in self._custom:
                remaining = max(deadline - time.monotonic(), 0.0005)
                if pattern.search(text, timeout=remaining) is not None:
                    text = pattern.sub(self._replace, text, timeout=max(deadline - time.monotonic(), 0.0005))
        except TimeoutError:
            self.custom_timeouts += 1
            if self.custom_timeouts == 1:
                _logger.warning(
                    "an OTELPIPE_REDACT_PATTERNS pattern ran past %.0f ms on a %d-character value; "
                    "the value was masked whole (later timeouts are counted only)",
                    CUSTOM_PATTERN_TIMEOUT_S * 1000,
                    len(text),
                )
            return self.replacement
        return text

    def _mask(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(self.replacement for _ in value)
        return self.replacement

    def redact_value(self, key: str, value: Any, _depth: int = 0) -> Any:
        """Masked ``value`` for ``key``; the same object when nothing needed masking."""
        if self.is_secret_key(key):
            return self._mask(value)
        if isinstance(value, str) and self._is_id_key(key):
            return value
        return self._redact_any(value, _depth)

    def redact_bytes(self, value: bytes) -> bytes:
        """Bytes are redacted as their UTF-8 text (undecodable bytes kept as they are)."""
        text = value.decode("utf-8", "surrogateescape")
        redacted = self.redact_text(text)
        return value if redacted is text else redacted.encode("utf-8", "surrogateescape")

    def _redact_any(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if depth >= _MAX_DEPTH:
            # Too deep to walk: mask rather than let it through unscanned.
            if isinstance(value, (bytes, bytearray, Mapping, list, tuple)):
                return self.replacement
            return value
        if isinstance(value, (bytes, bytearray)):
            return self.redact_bytes(bytes(value))
        if isinstance(value, Mapping):
            return self.redact_mapping(value, depth + 1)
        if isinstance(value, (list, tuple)):
            items = [self._redact_any(item, depth + 1) for item in value]
            if any(new is not old for new, old in zip(items, value, strict=True)):
                return type(value)(items)
        return value

    def redact_mapping(self, mapping: Mapping[str, Any], _depth: int = 0) -> Mapping[str, Any]:
        """A copy of ``mapping`` with secrets masked, or ``mapping`` itself when nothing changed."""
        changes = self.changed_items(mapping, _depth)
        if not changes:
            return mapping
        result = dict(mapping)
        result.update(changes)
        return result

    def changed_items(self, mapping: Mapping[str, Any], _depth: int = 0) -> dict[str, Any]:
        """Only the entries whose value must change: cheap to apply in place to SDK attributes."""
        changes: dict[str, Any] = {}
        known_keys, known_ids, known_texts = self._key_cache, self._id_key_cache, self._text_cache
        hex_ids_clean = self.hex_ids_clean
        for key, value in mapping.items():
            # Fast path for the common case, `known_clean`'s rules inline (no call per item): a known
            # non-secret key with a scalar, an id, or a short value already seen clean (the first
            # time, redact_value fills the caches).
            if known_keys.get(key) is False:
                kind = type(value)
                if kind is str:
                    if known_ids.get(key) is True or known_texts.get(value) == value:
                        continue
                    if value is self.clean_id:
                        continue
                    if hex_ids_clean and len(value) == 32 and _HEX_ID(value) is not None:
                        self.clean_id = value
                        continue
                elif kind in _CLEAN_SCALARS:
                    continue
            new = self.redact_value(str(key), value, _depth)
            if new is not value and new != value:
                changes[key] = new
        return changes


class LabelRedactor:
    """Masks metric series labels (RED ``span.name`` and dimensions) with a `Redactor`.

    Called by `REDStore` per series at snapshot time; each distinct label value goes through the
    redactor once and is remembered (bounded), so the span path pays nothing.
    """

    def __init__(self, redactor: Redactor, limit: int = 8192) -> None:
        self._redactor = redactor
        self._limit = limit
        self._cache: dict[tuple[str, str], str] = {}

    def __call__(self, attributes: dict[str, Any]) -> dict[str, Any]:
        changed: dict[str, Any] | None = None
        for key, value in attributes.items():
            if not isinstance(value, str):
                continue
            masked = self._cache.get((key, value))
            if masked is None:
                masked = str(self._redactor.redact_value(key, value))
                if len(self._cache) >= self._limit:
                    self._cache.clear()
                self._cache[(key, value)] = masked
            if masked != value:
                changed = changed if changed is not None else dict(attributes)
                changed[key] = masked
        return attributes if changed is None else changed


# Attributes every LogRecord has; anything else on a record is an app-provided extra.
_STANDARD_RECORD_ATTRS: frozenset[str] = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))
) | {"message", "asctime", "taskName", "otelpipe_exception_message"}
# The same plus the correlation fields otelpipe's record factory stamps from trusted sources (ids it
# formats itself, the sampled flag, service identity from the resource); ``request_id`` is not among
# them: it may come from a client header.
_STANDARD_AND_STAMPED: frozenset[str] = _STANDARD_RECORD_ATTRS | log_correlation.STAMPED_FIELDS
# The keys of a record just as the correlation factory left it: comparing a record's keys with
# this set costs a lookup per key, where the set difference below builds and fills a new set.
_CORRELATED_RECORD_KEYS: frozenset[str] = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))
) | log_correlation.CORRELATION_FIELDS
_CORRELATED_KEY_COUNT = len(_CORRELATED_RECORD_KEYS)
_REQUEST_ID_ONLY = ("request_id",)
_SCALARS = (int, float, bool, type(None))
# Where `RedactingFilter` leaves the masked ``str(exception)``: the exception object itself is the
# app's and stays untouched, so formatters (JsonFormatter) read the message from here.
EXCEPTION_MESSAGE_ATTR = "otelpipe_exception_message"
_EXCEPTION_FORMATTER = logging.Formatter()  # stateless for formatException; one per process
_GET_MESSAGE = logging.LogRecord.getMessage


def _text_of(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ is the formatter's to render
        return f"<unprintable {type(value).__name__}>"


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message template, args, extras and formatted exception.

    Attach it to handlers (handler filters see records from every logger). It rewrites the
    record in place and always returns True: a record is never dropped for containing a secret.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor
        self._failures = 0
        # Skipping the stamped fields is exact only while the policy leaves them alone: no key of
        # theirs is a secret key, and their service values are clean (checked once per installation).
        self._skip_stamped = not any(redactor.is_secret_key(key) for key in log_correlation.STAMPED_FIELDS)
        self._static_checked: tuple[object, bool] = (None, False)

    def _check_static(self, static: Mapping[str, Any]) -> bool:
        """Whether the correlation factory's service fields (from the resource) need no masking;
        remembered for this installation's field dict."""
        redactor = self._redactor
        clean = all(
            isinstance(value, str) and redactor.redact_value(key, value) is value for key, value in static.items()
        )
        self._static_checked = (static, clean)
        return clean

    def filter(self, record: logging.LogRecord) -> bool:
        try:  # one frame per record: the redaction runs inline here
            redactor = self._redactor
            args = record.args
            if type(args) is tuple:
                for arg in args:
                    # Plain numbers and None print as themselves: only other args go to the redactor.
                    if type(arg) not in _CLEAN_SCALARS:
                        record.args = tuple([self._redact_arg(item) for item in args])
                        break
            elif isinstance(args, Mapping):
                record.args = redactor.redact_mapping(args)
            elif isinstance(args, tuple) and args:
                record.args = tuple([self._redact_arg(item) for item in args])
            if args:
                # Then redact the formatted message, not the template: `password=%s` alone would mask
                # the placeholder, leave the secret in args and break formatting (losing the line).
                try:
                    if type(record).getMessage is _GET_MESSAGE:  # LogRecord's own, inline: no call
                        msg = record.msg
                        message: str | None = (msg if type(msg) is str else str(msg)) % record.args
                    else:
                        message = record.getMessage()
                except Exception:  # a broken template is logging's to report
                    message = None
                if message is not None:
                    record.msg = redactor.redact_text(message)
                    record.args = None
            elif type(record.msg) is str or isinstance(record.msg, str):
                record.msg = redactor.redact_text(record.msg)
            elif isinstance(record.msg, Mapping):  # logger.info({"event": ..., "token": ...})
                record.msg = redactor.redact_mapping(record.msg)
            else:
                record.msg = self._redact_arg(record.msg)
            attrs = record.__dict__
            # Extras (the correlation fields among them) are checked against the caches first, inline
            # (`Redactor.known_clean`'s rules): a record's dozen known-clean extras then cost a few
            # dict lookups each, not a call and a scan.
            known_keys, known_ids = redactor._key_cache, redactor._id_key_cache
            known_texts = redactor._text_cache
            hex_ids_clean = redactor.hex_ids_clean
            # The correlation fields the factory stamped are skipped when the record carries exactly
            # the factory's latest field set (built by otelpipe: hex ids and a bool, which the policy
            # never masks) and its service values were checked clean: two C-level subset tests, no
            # call. Anything else (another thread's span in between, a field the app overwrote, a
            # new service name) scans them as extras.
            standard = _STANDARD_RECORD_ATTRS
            active = log_correlation._ACTIVE
            if active is not None and self._skip_stamped:
                _, stamped, static = active._correlator.last
                checked, clean = self._static_checked
                if checked is not static:
                    clean = self._check_static(static)
                if clean and stamped.items() <= attrs.items():
                    standard = _STANDARD_AND_STAMPED
            # Equal key sets: the same size and the set holds every key (one set lookup per key,
            # cheaper than comparing the dict's key view with the set).
            if (
                standard is _STANDARD_AND_STAMPED
                and len(attrs) == _CORRELATED_KEY_COUNT
                and _CORRELATED_RECORD_KEYS.issuperset(attrs)
            ):
                extras: Iterable[str] = _REQUEST_ID_ONLY  # no app extra: only the request id to check
            else:
                extras = attrs.keys() - standard
            for key in extras:
                value = attrs[key]
                if known_keys.get(key) is False:
                    kind = type(value)
                    if kind is str:
                        # A request id first: unique per request, it is never in the text cache.
                        if value is redactor.clean_id:
                            continue
                        if hex_ids_clean and len(value) == 32 and _HEX_ID(value) is not None:
                            redactor.clean_id = value
                            continue
                        if known_ids.get(key) is True or known_texts.get(value) == value:
                            continue
                    elif kind in _CLEAN_SCALARS:
                        continue
                if redactor.is_secret_key(key) or isinstance(value, (str, bytes, Mapping, list, tuple)):
                    new = redactor.redact_value(key, value)
                else:
                    new = self._redact_arg(value)
                if new is not value:
                    attrs[key] = new
            exc_info = record.exc_info
            if exc_info and not record.exc_text:
                record.exc_text = _EXCEPTION_FORMATTER.formatException(exc_info)
            if record.exc_text:
                record.exc_text = redactor.redact_text(record.exc_text)
            if exc_info and exc_info[1] is not None:
                attrs[EXCEPTION_MESSAGE_ATTR] = redactor.redact_text(_text_of(exc_info[1]))
            if record.stack_info:
                record.stack_info = redactor.redact_text(record.stack_info)
        except Exception:  # redaction trouble must not lose the log line
            self._failures += 1
            if self._failures == 1:
                _logger.warning("log redaction failed for a record; later failures are counted only")
        return True

    def _redact_arg(self, arg: Any) -> Any:
        if isinstance(arg, _SCALARS):
            return arg
        if isinstance(arg, str):
            return self._redactor.redact_text(arg)
        if isinstance(arg, bytes):
            return self._redactor.redact_bytes(arg)
        # Objects are formatted with %s later; check what they will print as.
        try:
            text = str(arg)
        except Exception:  # an unprintable arg is logging's problem, not ours
            return arg
        redacted = self._redactor.redact_text(text)
        return redacted if redacted != text else arg
