"""Prometheus-style durations (`30d`, `5m`, `1h30m`, `500ms`): the one spelling otelpipe reads anywhere.

Specs, rules, the CLI and every `OTELPIPE_*` duration variable use this grammar; a unit is always
required, so `10` is refused rather than guessed as seconds (the SDK's own `OTEL_*` timeouts are
milliseconds).
"""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """Seconds in `text` (e.g. `30d`, `5m`, `1h30m`, `500ms`, `0s` with `allow_zero`); ValueError otherwise."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"not a duration: {text!r}")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"duration must be positive: {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest Prometheus spelling of `seconds` (`2592000` -> `30d`, `8640` -> `2h24m`).

    Prometheus accepts whole milliseconds at most, so the value is rounded to them.
    """
    millis = max(1, round(seconds * 1000))
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
