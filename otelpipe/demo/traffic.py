"""Traffic driver for the demo shop: a paced, bounded mix of order and user requests.

``otelpipe demo`` runs it against the shop so the RED table, the SLO windows and the incident
engine have real requests to work on. It is single-threaded and paces by deadlines, so it never
sends more than ``rps * duration_s`` requests; when the shop slows down, the rate drops instead
of requests piling up.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

_log = logging.getLogger("otelpipe.demo.traffic")

#: SKUs the payments service sells, plus one it does not (a steady trickle of 4xx answers).
_SKUS = ("sku-book", "sku-mug", "sku-shirt", "sku-lamp", "sku-headphones")
_UNKNOWN_SKU = "sku-discontinued"
_PAYMENT_METHODS = ("card", "card", "card", "paypal", "apple_pay")
_FALLBACK_USER_IDS = (1, 2, 3)
_MAX_REMEMBERED_ORDERS = 256


@dataclass
class TrafficStats:
    """What the driver did so far: requests sent, answers by HTTP status, transport errors."""

    sent: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    elapsed_s: float = 0.0
    planned: int = 0

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(count for status, count in self.by_status.items() if status >= 500)


def drive(
    base_url: str,
    rps: float,
    duration_s: float,
    on_tick: Callable[[TrafficStats], None] | None = None,
    stop_event: threading.Event | None = None,
    *,
    request_timeout_s: float = 5.0,
    seed: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrafficStats:
    """Send about ``rps`` requests per second to the shop at ``base_url`` for ``duration_s`` seconds.

    The mix is roughly 45 % order creations, 25 % order listings, 15 % single-order reads,
    10 % user listings and 5 % user sign-ups; 2 % of orders name an unknown SKU. ``on_tick`` is
    called with the live stats after every request (for a progress bar; the object is reused, copy
    what you keep). Setting ``stop_event`` ends the run within one request. Transport errors
    (refused, timed out) are counted, never raised. ``clock`` is a seam for tests: with a fake clock
    whose ``stop_event.wait`` advances it, pacing is exact and needs no wall-clock time.
    """
    if rps <= 0 or duration_s <= 0:
        raise ValueError(f"rps and duration_s must be positive, got rps={rps!r} duration_s={duration_s!r}")
    base = base_url.rstrip("/")
    stop = stop_event or threading.Event()
    rng = random.Random(seed)
    stats = TrafficStats(planned=max(1, int(rps * duration_s)))
    interval_s = 1.0 / rps
    order_ids: list[int] = []
    start = clock()
    with requests.Session() as session:
        user_ids = _known_user_ids(session, base, request_timeout_s)
        for index in range(stats.planned):
            due = start + index * interval_s
            if stop.wait(max(0.0, due - clock())) or clock() - start >= duration_s:
                break
            status = _one_request(session, base, rng, user_ids, order_ids, timeout_s=request_timeout_s)
            stats.sent += 1
            if status is None:
                stats.transport_errors += 1
            else:
                stats.by_status[status] += 1
            stats.elapsed_s = clock() - start
            if on_tick is not None and not _tick(on_tick, stats):
                on_tick = None  # a broken progress callback is dropped, the traffic goes on
    stats.elapsed_s = clock() - start
    return stats


def _known_user_ids(session: requests.Session, base: str, timeout_s: float) -> list[int]:
    """Ask the shop for its users; fall back to the seed ids if it cannot answer yet."""
    try:
        answer = session.get(f"{base}/api/users", timeout=timeout_s)
        ids = [int(user["id"]) for user in answer.json()["users"]]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return list(_FALLBACK_USER_IDS)
    return ids or list(_FALLBACK_USER_IDS)


def _one_request(
    session: requests.Session,
    base: str,
    rng: random.Random,
    user_ids: list[int],
    order_ids: list[int],
    *,
    timeout_s: float,
) -> int | None:
    """Send one request of the mix; return its HTTP status, or None on a transport error."""
    pick = rng.random()
    try:
        if pick < 0.45:
            sku = _UNKNOWN_SKU if rng.random() < 0.02 else rng.choice(_SKUS)
            body = {
                "user_id": rng.choice(user_ids),
                "sku": sku,
                "quantity": rng.randint(1, 3),
                "payment_method": rng.choice(_PAYMENT_METHODS),
            }
            answer = session.post(f"{base}/api/orders", json=body, timeout=timeout_s)
            if answer.status_code == 201:
                _remember(order_ids, int(answer.json()["id"]))
        elif pick < 0.70:
            answer = session.get(f"{base}/api/orders", params={"limit": 10}, timeout=timeout_s)
        elif pick < 0.85:
            order_id = rng.choice(order_ids) if order_ids else 1
            answer = session.get(f"{base}/api/orders/{order_id}", timeout=timeout_s)
        elif pick < 0.95:
            answer = session.get(f"{base}/api/users", timeout=timeout_s)
        else:
            suffix = rng.getrandbits(40)
            body = {"name": f"user-{suffix}", "email": f"user-{suffix}@example.com", "tier": "bronze"}
            answer = session.post(f"{base}/api/users", json=body, timeout=timeout_s)
            if answer.status_code == 201 and len(user_ids) < _MAX_REMEMBERED_ORDERS:
                user_ids.append(int(answer.json()["id"]))
    except requests.RequestException:
        return None
    except (ValueError, KeyError, TypeError):  # a 2xx with an unexpected body still counts by status
        return answer.status_code
    return answer.status_code


def _remember(order_ids: list[int], order_id: int) -> None:
    """Keep a bounded list of recent order ids to read back."""
    order_ids.append(order_id)
    if len(order_ids) > _MAX_REMEMBERED_ORDERS:
        del order_ids[: len(order_ids) - _MAX_REMEMBERED_ORDERS]


def _tick(on_tick: Callable[[TrafficStats], None], stats: TrafficStats) -> bool:
    """Call the progress callback; return False (after logging once) if it raised."""
    try:
        on_tick(stats)
    except Exception:  # the caller's callback may fail in any way
        _log.exception("traffic on_tick callback failed; no further progress callbacks")
        return False
    return True
