"""Mask secrets in log messages, log attributes and span attributes, keeping keys and records.

One :class:`Redactor` holds the policy (secret key names and value patterns); the logging Filter
here, the span processor and the OTLP log processor all apply it, so the three paths agree.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
    }
)

# A named group ``secret`` limits the mask to that part, so "Bearer [REDACTED]" still says what it was.
BEARER_PATTERN = re.compile(r"(?i)(?<![A-Za-z0-9])bearer\s+(?P<secret>[A-Za-z0-9\-._~+/]+=*)")
JWT_PATTERN = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
# Maximal digit runs with single space/dash separators; length and Luhn are checked in code.
CARD_PATTERN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,}(?![0-9])")
DEFAULT_PATTERNS: tuple[re.Pattern[str], ...] = (BEARER_PATTERN, JWT_PATTERN, CARD_PATTERN)

_MAX_DEPTH = 8
_KEY_CACHE_LIMIT = 4096
_CARD_MIN, _CARD_MAX = 13, 19


def normalise_key(key: str) -> str:
    """Lower-case and map ``-`` to ``_``, so ``Set-Cookie`` and ``set_cookie`` are one key."""
    return key.lower().replace("-", "_")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return _CARD_MIN <= len(digits) <= _CARD_MAX and luhn_valid(digits)


def _key_value_pattern(keys: Iterable[str], replacement: str) -> re.Pattern[str] | None:
    """``password=...``, ``"token": "..."``, ``Authorization: Basic ...`` inside free text.

    The auth scheme word is kept and an already-masked value is skipped, so redacting twice
    gives the same text.
    """
    alternatives = sorted((re.escape(k).replace("_", "[-_]?") for k in keys if k), key=len, reverse=True)
    if not alternatives:
        return None
    names = "|".join(alternatives)
    done = re.escape(replacement)
    return re.compile(
        rf"(?i)(?<![A-Za-z0-9])(?:{names})[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|digest)\s+)?+"
        rf"(?!{done})(?P<secret>[^\s\"',;&}}\]]+)"
    )


class Redactor:
    """Secret-masking policy: key names whose values are always masked, and value patterns.

    Keys match case-insensitively with ``-``/``_`` folded, on the whole key, its last dotted segment
    (``http.request.header.authorization``) or a ``_``-suffix (``db_password``). Matching values
    are replaced by ``replacement``; the key stays, so the reader knows something was there.
    """

    def __init__(
        self,
        keys: frozenset[str] = DEFAULT_SECRET_KEYS,
        patterns: Sequence[re.Pattern[str]] = DEFAULT_PATTERNS,
        replacement: str = DEFAULT_REPLACEMENT,
    ) -> None:
        self._keys = frozenset(normalise_key(k) for k in keys)
        self._suffixes = tuple("_" + k for k in self._keys)
        self.replacement = replacement
        key_value = _key_value_pattern(self._keys, replacement)
        # Bearer runs before key=value so "Authorization: Bearer x" masks the token, not "Bearer".
        self._patterns: tuple[re.Pattern[str], ...] = tuple(patterns) + ((key_value,) if key_value else ())
        self._key_cache: dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        """True when values under ``key`` must be masked whatever they look like."""
        cached = self._key_cache.get(key)
        if cached is not None:
            return cached
        norm = normalise_key(key)
        segment = norm.rsplit(".", 1)[-1]
        secret = norm in self._keys or segment in self._keys or segment.endswith(self._suffixes)
        if len(self._key_cache) >= _KEY_CACHE_LIMIT:
            self._key_cache.clear()
        self._key_cache[key] = secret
        return secret

    def _replace(self, match: re.Match[str]) -> str:
        if match.re is CARD_PATTERN:
            return self._replace_card(match.group(0))
        if "secret" in match.re.groupindex and match.group("secret") is not None:
            start, end = match.span("secret")
            base = match.start()
            text = match.group(0)
            return text[: start - base] + self.replacement + text[end - base :]
        return self.replacement

    def _replace_card(self, run: str) -> str:
        digits = run.replace(" ", "").replace("-", "")
        if _is_card(digits):
            return self.replacement
        if len(digits) == len(run):
            return run
        # Separated digits around a card ("12 4111 1111 1111 1111"): try group-aligned windows.
        groups = re.split(r"([ -])", run)
        parts, seps = groups[0::2], groups[1::2]
        out: list[str] = []
        index = 0
        while index < len(parts):
            found = 0
            for end in range(len(parts), index, -1):
                if _is_card("".join(parts[index:end])):
                    found = end
                    break
            if found:
                out.append(self.replacement)
                index = found
            else:
                out.append(parts[index])
                index += 1
            if index < len(parts):
                out.append(seps[index - 1])
        return "".join(out)

    def redact_text(self, text: str) -> str:
        """Mask every pattern match in ``text``; returns ``text`` itself when nothing matched."""
        for pattern in self._patterns:
            if pattern.search(text) is not None:
                text = pattern.sub(self._replace, text)
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
        return self._redact_any(value, _depth)

    def _redact_any(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if depth >= _MAX_DEPTH:
            return value
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
        for key, value in mapping.items():
            new = self.redact_value(str(key), value, _depth)
            if new is not value and new != value:
                changes[key] = new
        return changes


# Attributes every LogRecord has; anything else on a record is an app-provided extra.
_STANDARD_RECORD_ATTRS: frozenset[str] = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))
) | {"message", "asctime", "taskName"}
_SCALARS = (int, float, bool, type(None), bytes)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message template, args, extras and formatted exception.

    Attach it to handlers (handler filters see records from every logger). It rewrites the
    record in place and always returns True: a record is never dropped for containing a secret.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor
        self._failures = 0

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact_record(record)
        except Exception:  # redaction trouble must not lose the log line
            self._failures += 1
            if self._failures == 1:
                _logger.warning("log redaction failed for a record; later failures are counted only")
        return True

    def _redact_record(self, record: logging.LogRecord) -> None:
        redactor = self._redactor
        args = record.args
        if isinstance(args, Mapping):
            record.args = redactor.redact_mapping(args)
        elif isinstance(args, tuple) and args:
            record.args = tuple(self._redact_arg(arg) for arg in args)
        if args:
            # Then redact the formatted message, not the template: `password=%s` alone would mask
            # the placeholder, leave the secret in args and break formatting (losing the line).
            try:
                message: str | None = record.getMessage()
            except Exception:  # a broken template is logging's to report
                message = None
            if message is not None:
                record.msg = redactor.redact_text(message)
                record.args = None
        elif isinstance(record.msg, str):
            record.msg = redactor.redact_text(record.msg)
        attrs = record.__dict__
        for key in [k for k in attrs if k not in _STANDARD_RECORD_ATTRS]:
            value = attrs[key]
            new = redactor.redact_value(key, value)
            if new is not value:
                attrs[key] = new
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact_text(record.exc_text)

    def _redact_arg(self, arg: Any) -> Any:
        if isinstance(arg, _SCALARS):
            return arg
        if isinstance(arg, str):
            return self._redactor.redact_text(arg)
        # Objects are formatted with %s later; check what they will print as.
        try:
            text = str(arg)
        except Exception:  # an unprintable arg is logging's problem, not ours
            return arg
        redacted = self._redactor.redact_text(text)
        return redacted if redacted != text else arg
