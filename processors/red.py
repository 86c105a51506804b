"""RED (rate, errors, duration) pre-aggregation of finished spans, cheap enough for 100 % of spans.

Two parts with one job each. `REDStore` owns the figures: `record(span)` counts one finished span,
`snapshot()` hands readers an immutable `REDSnapshot`, `reset_after_fork()` starts a forked child
empty. `REDSpanProcessor` is only the SDK's adapter: its `on_end` is the store's `record`, bound
directly, so counting a span costs one Python call and nothing outside this module sees how the
store keeps its series.

`record` turns a span into a flat tuple of plain values (the series key) and adds it to the calling
thread's own table: a dict lookup, a bisect and a few integer adds, with no lock (a lock only guards
new series, to keep the cardinality limit global). No SDK metrics API call and no attribute-dict
allocation happens per span; everything costly (decoding keys into dimension names, seconds, hex
ids) is deferred to `snapshot()`, which readers call a few times a minute. Encoding a key (`record`)
and decoding it (`snapshot`) live in the same class, so the key layout is private to it.

Service-graph edges cost nothing extra per span while they fit the cardinality limit: a client or
producer span's key also holds the attributes its edge is made of (peer, server address, database
and messaging system), so each such series knows its edge, and `snapshot()` derives the edges from
those series. Past the limit of such keys, a span is counted under its plain key and its edge on its
own (`_record_edge`), with the same result.

Error rule (as the Collector's spanmetrics plus the HTTP semantic conventions): a span counts as an
error when its status is ERROR, or when it is a SERVER span whose status is UNSET and whose
`http.response.status_code` (or legacy `http.status_code`) is >= 500. Its `status.code` dimension
then holds `STATUS_CODE_ERROR`, so the error ratio is a plain label filter.

Fork safety: every live store is reset in a forked child by one `os.register_at_fork` hook
registered at import (fresh lock, no series, new start time), so each prefork worker reports only
its own spans and never inherits a lock held mid-update.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, cast

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanKind

from otelpipe.processors.red_snapshot import (
    HTTP_METHOD,
    HTTP_ROUTE,
    HTTP_STATUS,
    OVERFLOW,
    SERVICE_NAME,
    SPAN_KIND,
    SPAN_KIND_LABELS,
    SPAN_NAME,
    STATUS_CODE,
    STATUS_ERROR,
    AttributeValue,
    ExemplarRef,
    REDSnapshot,
    SeriesIdentity,
    SeriesStats,
)
from otelpipe.processors.unsampled import PlainAttributes

__all__ = [
    "DEFAULT_BOUNDARIES",
    "DEFAULT_DIMENSIONS",
    "DEFAULT_SPAN_KINDS",
    "LEGACY_ATTRIBUTE_NAMES",
    "REDSpanProcessor",
    "REDStore",
    "validate_boundaries",
]

_logger = logging.getLogger("otelpipe.red")

# The Collector spanmetrics connector's default buckets (2 ms ... 15 s), in seconds: the store
# keeps nanoseconds and seconds; the exporter converts to the chosen unit (ms by default).
DEFAULT_BOUNDARIES: tuple[float, ...] = (
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
)  # fmt: skip

# Extra dimensions read from span attributes (then resource attributes) when present.
DEFAULT_DIMENSIONS: tuple[str, ...] = (
    HTTP_METHOD,
    HTTP_ROUTE,
    HTTP_STATUS,
    "rpc.service",
    "rpc.method",
    "db.system",
)

# Older semantic-convention names still emitted by default by the 0.66 contrib instrumentations
# (Flask, requests and SQLAlchemy use them unless OTEL_SEMCONV_STABILITY_OPT_IN says otherwise).
LEGACY_ATTRIBUTE_NAMES: Mapping[str, str] = {
    HTTP_METHOD: "http.method",
    HTTP_STATUS: "http.status_code",
    "db.system": "db.system.name",
    "server.address": "net.peer.name",
}

# Attribute names looked up per span with the default dimensions (each name, then its legacy one).
_DEFAULT_ATTRIBUTE_KEYS = (
    HTTP_METHOD,
    "http.method",
    HTTP_ROUTE,
    HTTP_STATUS,
    "http.status_code",
    "rpc.service",
    "rpc.method",
    "db.system",
    "db.system.name",
)

# Every kind, INTERNAL included, as the spanmetrics connector counts them (totals then agree).
DEFAULT_SPAN_KINDS: frozenset[SpanKind] = frozenset(SpanKind)

_CORE_DIMENSIONS = (SERVICE_NAME, SPAN_NAME, SPAN_KIND, STATUS_CODE)

# Indexed by SpanKind._value_ / StatusCode._value_: keys hold small ints, never enums (whose
# hash is a Python-level call).
_KIND_NAMES = tuple(SPAN_KIND_LABELS[kind] for kind in sorted(SpanKind, key=lambda kind: int(kind.value)))
_STATUS_NAMES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", STATUS_ERROR)
_UNSET, _OK, _ERROR = 0, 1, 2
_SERVER = int(SpanKind.SERVER.value)
_CLIENT = int(SpanKind.CLIENT.value)
_PRODUCER = int(SpanKind.PRODUCER.value)

# Series layout (a list, mutated in place under the store lock).
_CALLS, _SUM, _MIN, _MAX, _BUCKETS, _LAST, _LAST_ERROR = range(7)
_NO_MIN = 1 << 62

_OVERFLOW_KEY: tuple[Any, ...] = ("\x00otel.metric.overflow",)
_UNKNOWN_SERVICE = "unknown_service"
_EDGE_ATTRIBUTES = ("peer.service", "server.address", "net.peer.name", "db.system", "db.system.name")
_MESSAGING_SYSTEM = "messaging.system"

_LOG_INTERVAL_S = 60.0

# Every store alive in this process, reset in a forked child by the one hook registered below
# (weak: a dropped store costs nothing at later forks, and there is one hook however many stores).
_LIVE_STORES: weakref.WeakSet[REDStore] = weakref.WeakSet()


def _reset_stores_after_fork() -> None:
    for store in list(_LIVE_STORES):
        try:
            store.reset_after_fork()
        except Exception:  # never break the child over its RED figures
            _logger.warning("could not reset a RED store in this forked process", exc_info=True)


def validate_boundaries(boundaries: Iterable[float]) -> tuple[float, ...]:
    """Return `boundaries` as a tuple, or raise ValueError unless they are sorted, positive, unique.

    Checked once at construction so that a bad `OTELPIPE_RED_BUCKETS` fails at start-up, not as
    silently misplaced counts.
    """
    values = tuple(float(value) for value in boundaries)
    if not values:
        raise ValueError("histogram boundaries must not be empty")
    for value in values:
        if not 0 < value < float("inf"):  # also rejects NaN
            raise ValueError(f"histogram boundary {value!r} must be a positive finite number of seconds")
    for low, high in itertools.pairwise(values):
        if not low < high:
            raise ValueError(f"histogram boundaries must be strictly increasing, got {low!r} before {high!r}")
    return values


def _plain(value: object) -> AttributeValue:
    """An exportable attribute value: primitives as they are, anything else as its string."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


_MAX_SHARDS = 64
_RETIRED = -1  # shard key of the tables folded from finished threads (never a thread id)


def _combine(into: list[Any], data: list[Any]) -> list[Any]:
    """Add series `data` to `into` (same layout), keeping the newer exemplar per bucket."""
    buckets = [a + b for a, b in zip(into[_BUCKETS], data[_BUCKETS], strict=True)]
    newer = [
        [b if a is None or (b is not None and b[2] > a[2]) else a for a, b in zip(mine, theirs, strict=True)]
        for mine, theirs in ((into[_LAST], data[_LAST]), (into[_LAST_ERROR], data[_LAST_ERROR]))
    ]
    return [
        sum(buckets),
        into[_SUM] + data[_SUM],
        min(into[_MIN], data[_MIN]),
        max(into[_MAX], data[_MAX]),
        buckets,
        newer[0],
        newer[1],
    ]


def _new_series(bucket_count: int) -> list[Any]:
    return [0, 0, _NO_MIN, -1, [0] * bucket_count, [None] * bucket_count, [None] * bucket_count]


class _RateLimitedLog:
    """Logs at most once per interval per message, so a broken span stream cannot flood the log."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(message, -_LOG_INTERVAL_S) >= _LOG_INTERVAL_S:
            self._last[message] = now
            _logger.warning(message, *args)


class REDStore:
    """Cumulative RED figures per dimension combination, bounded by a cardinality limit.

    The whole interface: `record(span)` on the span path (what `REDSpanProcessor.on_end` is),
    `snapshot()` for metric readers, SLO windows and incident evidence, `reset_after_fork()` (called
    for every live store by this module's one fork hook), and its settings as attributes
    (`boundaries`, `cardinality_limit`, `dimensions`, `exemplars`, `span_kinds`, `service_graph`,
    `attribute_names`; the pipeline sets `label_redactor`). Memory is O(series x buckets): at most `cardinality_limit` span series plus one overflow series, the
    same for service-graph edges, and as many client and producer series keyed with their edge.
    """

    def __init__(
        self,
        boundaries: Sequence[float] = DEFAULT_BOUNDARIES,
        *,
        cardinality_limit: int = 2000,
        dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
        exclude_dimensions: Sequence[str] = (),
        exemplars: bool = True,
        span_kinds: Iterable[SpanKind] = DEFAULT_SPAN_KINDS,
        service_graph: bool = True,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Create an empty store.

        `dimensions` are the attribute names added to the four core dimensions (service.name,
        span.name, span.kind, status.code) when a span or its resource carries them;
        `exclude_dimensions` removes any dimension, core ones included. `span_kinds` selects which
        spans `record` counts (all by default, as the spanmetrics connector); `service_graph` adds
        client→server edges for CLIENT and PRODUCER spans. `clock` returns Unix nanoseconds (start
        and snapshot times; injectable for tests).
        """
        if cardinality_limit < 1:
            raise ValueError(f"cardinality_limit must be >= 1, got {cardinality_limit!r}")
        self.boundaries = validate_boundaries(boundaries)
        self.cardinality_limit = cardinality_limit
        self.exemplars = exemplars
        self.service_graph = service_graph
        kinds = {int(kind.value) for kind in span_kinds}
        self.span_kinds: frozenset[SpanKind] = frozenset(
            kind for kind in SpanKind if int(kind.value) in kinds
        )
        self._kind_enabled = tuple(value in kinds for value in range(len(_KIND_NAMES)))
        self._exemplar_mask = 1 if exemplars else 0
        self._clock = clock
        excluded = frozenset(exclude_dimensions)
        self._core_kept = tuple(name not in excluded for name in _CORE_DIMENSIONS)
        extra = [name for name in dict.fromkeys(dimensions) if name not in excluded]
        extra = [name for name in extra if name not in _CORE_DIMENSIONS]
        self.dimensions: tuple[str, ...] = tuple(extra)
        # Attribute names read per span: each dimension, then its legacy spelling if it has one.
        lookup: list[str] = []
        self._dimension_slots: list[tuple[str, tuple[int, ...]]] = []
        for name in extra:
            slots = [len(lookup)]
            lookup.append(name)
            legacy = LEGACY_ATTRIBUTE_NAMES.get(name)
            if legacy is not None:
                slots.append(len(lookup))
                lookup.append(legacy)
            self._dimension_slots.append((name, tuple(slots)))
        self._attribute_keys: tuple[str, ...] = tuple(lookup)
        self._default_layout = self._attribute_keys == _DEFAULT_ATTRIBUTE_KEYS
        # A client or producer span's key also carries what its service-graph edge is made of (the
        # edge attributes the dimensions do not already read), so the edge is derived from the span's
        # series at snapshot time instead of being counted per span (`_edge_key`).
        self._base_length = 2 + len(lookup)
        edge_names = (*_EDGE_ATTRIBUTES, _MESSAGING_SYSTEM)
        self._edge_extension: tuple[str, ...] = tuple(name for name in edge_names if name not in lookup)
        self._edge_lookup: tuple[str, ...] = (*lookup, *self._edge_extension)
        self._edge_slots: tuple[int, ...] = tuple(2 + self._edge_lookup.index(name) for name in edge_names)
        self._edge_kinds = tuple(
            service_graph and value in (_CLIENT, _PRODUCER) for value in range(len(_KIND_NAMES))
        )
        self._bounds_ns = [round(bound * 1e9) for bound in self.boundaries]
        self._log = _RateLimitedLog()
        # Masks secrets in series labels (a span name can hold one) at snapshot time, not per span.
        self.label_redactor: Callable[[dict[str, AttributeValue]], dict[str, AttributeValue]] | None = None
        self.reset_after_fork()
        _LIVE_STORES.add(self)

    @property
    def attribute_names(self) -> frozenset[str]:
        """Every span attribute `record` reads: what a span must keep for its RED figures to be exact."""
        names = {*self._attribute_keys, "http.response.status_code", "http.status_code"}
        if self.service_graph:
            names.update((*_EDGE_ATTRIBUTES, _MESSAGING_SYSTEM))
        return frozenset(names)

    @property
    def thread_tables(self) -> int:
        """How many per-thread tables the store holds (bounded: see `_shard`)."""
        with self._lock:
            return len(self._shards)

    def reset_after_fork(self) -> None:
        """Start empty: at construction and in a forked child (whose lock may be held by a dead thread).

        Called for every live store by the module's fork hook; not meant for a running process,
        whose readers would see their cumulative series restart.
        """
        self._lock = threading.Lock()
        # One pair of tables (span series, service-graph edges) per thread: a thread updates only its
        # own series, so the span path takes no lock. Keys are added only under `_lock` (`_admit`),
        # which is what lets `snapshot()` iterate the tables safely. A lock on every span made
        # threads queue behind each other whenever the GIL switched inside the critical section.
        self._shards: dict[
            int, tuple[dict[tuple[Any, ...], list[Any]], dict[tuple[Any, ...], list[Any]]]
        ] = {}
        self._admitted: set[tuple[Any, ...]] = set()  # keys with a series (global cardinality)
        self._admitted_edges: set[tuple[Any, ...]] = set()
        # Keys of client and producer spans that carry their edge (bounded like the other two sets).
        self._admitted_carriers: set[tuple[Any, ...]] = set()
        self._overflow_warned = False
        # Read in one go by record(): the thread id function, the shard table and the bucket bounds.
        self._hot = (threading.get_ident, self._shards, self._bounds_ns)
        self._overflow_spans = 0
        self._skipped_spans = 0
        # Per distinct resource: (service.name, value of each attribute key or None). Span keys hold
        # the index, so hashing a key never re-hashes resource values.
        self._origins: list[tuple[Any, ...]] = []
        self._resource_cache: tuple[object, int] = (object(), -1)
        self.start_time_unix_nano = self._clock()

    # -- span path --

    def record(self, span: ReadableSpan) -> None:
        """Count one finished span of the selected kinds; never raises (a bad span is counted as skipped).

        The hot path: it reads each span field once (the SDK's storage, not the public properties,
        which build a mappingproxy per access) and keys on plain values (small ints, never enums).
        """
        try:
            kind = span._kind._value_
            if not self._kind_enabled[kind]:
                return
            end = span._end_time
            duration = end - span._start_time  # type: ignore[operator]
            if duration < 0:
                self._skip("end time before start time")
                return
            attributes = span._attributes
            # dict.get straight on the SDK's storage: the public property builds a mappingproxy.
            get: Callable[[str], Any]
            if type(attributes) is BoundedAttributes:
                get = attributes._dict.get
            elif type(attributes) is PlainAttributes:  # an UnsampledSpan's: hashable values only
                get = attributes.get
            else:
                get = _fallback_get(attributes)
            status = span._status._status_code._value_
            code = get("http.response.status_code")
            legacy_code = get("http.status_code")
            if status == _UNSET and kind == _SERVER:  # the 5xx rule, int fast path inline
                code_value = code if code is not None else legacy_code
                if type(code_value) is int:
                    if code_value >= 500:
                        status = _ERROR
                elif code_value is not None and _is_server_error_code(code_value):
                    status = _ERROR
            resource = span._resource
            cache = self._resource_cache
            origin = cache[1] if cache[0] is resource else self._resource_index(resource)
            # One int for origin, kind and status: fewer tuple elements to hash per span.
            head = origin * 16 + kind * 3 + status
            edge_kind = self._edge_kinds[kind]
            key: tuple[Any, ...]
            if not self._default_layout:
                key = (head, span._name, *map(get, self._edge_lookup if edge_kind else self._attribute_keys))
            elif edge_kind:  # spelled out: twice as fast as *map(get, keys)
                key = (
                    head,
                    span._name,
                    get("http.request.method"),
                    get("http.method"),
                    get("http.route"),
                    code,
                    legacy_code,
                    get("rpc.service"),
                    get("rpc.method"),
                    get("db.system"),
                    get("db.system.name"),
                    get("peer.service"),
                    get("server.address"),
                    get("net.peer.name"),
                    get(_MESSAGING_SYSTEM),
                )
            else:
                key = (
                    head,
                    span._name,
                    get("http.request.method"),
                    get("http.method"),
                    get("http.route"),
                    code,
                    legacy_code,
                    get("rpc.service"),
                    get("rpc.method"),
                    get("db.system"),
                    get("db.system.name"),
                )
            get_ident, shards, bounds = self._hot
            tables = shards.get(get_ident())
            if tables is None:
                tables = self._shard()
            bucket = bisect_left(bounds, duration)
            context: Any = span._context
            if context is None:
                context = INVALID_SPAN_CONTEXT
            exemplar_mask = self._exemplar_mask
            sampled = context[3] & exemplar_mask  # trace flags: sampled bit
            table = tables[0]
            series = table.get(key)
            carried = True  # a series found under an edge-carrying key: its edge is derived at snapshot
            if series is None:
                series = self._admit(table, key, carrier=edge_kind)
                carried = table.get(key) is series
            # No lock: only this thread writes to its own series.
            series[0] += 1
            series[1] += duration
            if duration < series[2]:  # noqa: PLR1730  # cheaper than min()/max()
                series[2] = duration
            if duration > series[3]:  # noqa: PLR1730  # cheaper than min()/max()
                series[3] = duration
            series[4][bucket] += 1
            if sampled:  # its trace will exist in the backend
                series[5][bucket] = (context, duration, end)
            if status == _ERROR and exemplar_mask and context[5]:  # is_valid
                series[6][bucket] = (context, duration, end)
            if edge_kind and not carried:  # past a cardinality limit: the edge is counted on its own
                client = self._origins[origin][0]
                entry = (context, duration, end) if sampled else None
                self._record_edge(tables[1], client, kind, status, get, duration, bucket, entry)
        except Exception as error:  # never hurt the host app
            self._on_bad_span(error)

    def _on_bad_span(self, error: Exception) -> None:
        try:
            # The type only: an exception message may quote attribute values (user data).
            self._skip(f"unexpected span data ({type(error).__name__})")
        except Exception:  # logging or the lock failing must not reach the app either
            return

    def _record_edge(
        self,
        table: dict[tuple[Any, ...], list[Any]],
        client: str,
        kind: int,
        status: int,
        get: Callable[[str], Any],
        duration: int,
        bucket: int,
        sampled_entry: Any,
    ) -> None:
        peer, address, legacy_address, db_system, db_system_name = map(get, _EDGE_ATTRIBUTES)
        messaging = get(_MESSAGING_SYSTEM)
        key = _edge_key(client, kind, status, peer, address, legacy_address, db_system, db_system_name, messaging)
        if key is None:
            return
        edge = table.get(key)
        if edge is None:
            edge = self._admit(table, key, edge=True)
        edge[0] += 1
        edge[1] += duration
        if duration < edge[2]:  # noqa: PLR1730  # cheaper than min()/max()
            edge[2] = duration
        if duration > edge[3]:  # noqa: PLR1730  # cheaper than min()/max()
            edge[3] = duration
        edge[4][bucket] += 1
        if sampled_entry is not None:
            edge[5][bucket] = sampled_entry

    # -- span path helpers (first span of a thread, resource or series) --

    def _resource_index(self, resource: Any) -> int:
        """Index in `_origins` of this resource's service name and dimension values (cached)."""
        attributes: Mapping[str, Any]
        try:
            attributes = resource.attributes or {}
        except Exception:  # a resource we cannot read still gets counted
            attributes = {}
        service = attributes.get(SERVICE_NAME)
        origin = (
            service if isinstance(service, str) else _UNKNOWN_SERVICE,
            *(_hashable(attributes.get(name)) for name in self._attribute_keys),
        )
        with self._lock:
            try:
                index = self._origins.index(origin)
            except ValueError:
                index = len(self._origins)
                self._origins.append(origin)
        self._resource_cache = (resource, index)
        return index

    def _shard(self) -> tuple[dict[tuple[Any, ...], list[Any]], dict[tuple[Any, ...], list[Any]]]:
        """This thread's tables, created on its first span (a reused thread id reuses them).

        Thread ids are recycled, so the tables stay as many as the threads that ever ran at once;
        past `_MAX_SHARDS` the tables of threads no longer alive are folded into one retired pair,
        which bounds memory for servers that start a thread per request.
        """
        with self._lock:
            if len(self._shards) >= _MAX_SHARDS:
                self._retire_dead_shards()
            return self._shards.setdefault(threading.get_ident(), ({}, {}))

    def _retire_dead_shards(self) -> None:
        """Fold the tables of finished threads into `_RETIRED` (lock held)."""
        alive = {thread.ident for thread in threading.enumerate()}
        retired = self._shards.setdefault(_RETIRED, ({}, {}))
        for ident in [i for i in self._shards if i != _RETIRED and i not in alive]:
            for source, target in zip(self._shards.pop(ident), retired, strict=True):
                for key, data in source.items():
                    known = target.get(key)
                    target[key] = _copy(data) if known is None else _combine(known, data)

    def _carried_edge(self, key: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The service-graph edge key of an edge-carrying span key (None: the span has no peer)."""
        origin, kind_status = divmod(key[0], 16)
        kind, status = divmod(kind_status, 3)
        peer, address, legacy_address, db_system, db_system_name, messaging = (key[slot] for slot in self._edge_slots)
        client = self._origins[origin][0]
        return _edge_key(client, kind, status, peer, address, legacy_address, db_system, db_system_name, messaging)

    def _admit(
        self,
        table: dict[tuple[Any, ...], list[Any]],
        key: tuple[Any, ...],
        *,
        edge: bool = False,
        carrier: bool = False,
    ) -> list[Any]:
        """Series for a key not yet in this thread's `table`: a new one, or the overflow series.

        A `carrier` key (a client or producer span's, with its edge attributes) gets a series of
        its own while its span series, its edge and the carrier keys are each within the
        cardinality limit; otherwise the span is counted under its key without the edge parts, and
        `record` sees that no series sits under the carrier key and counts the edge on its own.
        """
        with self._lock:
            if carrier:
                base = key[: self._base_length]
                limit = self.cardinality_limit
                carriers, admitted, edges = self._admitted_carriers, self._admitted, self._admitted_edges
                if key in carriers or (len(carriers) < limit and (base in admitted or len(admitted) < limit)):
                    edge_key = self._carried_edge(key)
                    if key in carriers or edge_key is None or edge_key in edges or len(edges) < limit:
                        carriers.add(key)
                        admitted.add(base)
                        if edge_key is not None:
                            edges.add(edge_key)
                        series = table[key] = _new_series(len(self._bounds_ns) + 1)
                        return series
                key = base
                known = table.get(key)
                if known is not None:
                    return known
            admitted = self._admitted_edges if edge else self._admitted
            if key in admitted or len(admitted) < self.cardinality_limit:
                admitted.add(key)
                series = table[key] = _new_series(len(self._bounds_ns) + 1)
                return series
            if not edge:
                self._overflow_spans += 1
            overflow = table.get(_OVERFLOW_KEY)
            if overflow is None:
                overflow = table[_OVERFLOW_KEY] = _new_series(len(self._bounds_ns) + 1)
            first, self._overflow_warned = not self._overflow_warned, True
        if first:
            self._log.warning(
                "RED cardinality limit %d reached; further series fold into otel.metric.overflow",
                self.cardinality_limit,
            )
        return overflow

    def _skip(self, reason: str) -> None:
        with self._lock:
            self._skipped_spans += 1
        self._log.warning("RED skipped a span: %s", reason)

    # -- read side --

    def snapshot(self) -> REDSnapshot:
        """Copy every series under the lock, then decode names, seconds and hex ids outside it."""
        with self._lock:  # keys are only added under the lock; counts are read as they stand
            now = self._clock()
            start = self.start_time_unix_nano
            raw_series = [
                (key, _copy(data)) for tables in self._shards.values() for key, data in tables[0].items()
            ]
            raw_edges = [
                (key, _copy(data)) for tables in self._shards.values() for key, data in tables[1].items()
            ]
            overflow_spans = self._overflow_spans
            skipped = self._skipped_spans
        series = _merge(self._decode_series(key, data, start) for key, data in raw_series)
        base_length = self._base_length
        raw_edges.extend(
            (edge_key, [*data[:_LAST_ERROR], [None] * len(data[_LAST_ERROR])])  # no error exemplars on edges
            for key, data in raw_series
            if len(key) > base_length and key != _OVERFLOW_KEY and (edge_key := self._carried_edge(key)) is not None
        )
        edges = _merge(self._decode_edge(key, data, start) for key, data in raw_edges)
        return REDSnapshot(
            boundaries=self.boundaries,
            series=series,
            time_unix_nano=now,
            overflow_spans=overflow_spans,
            skipped_spans=skipped,
            edges=edges,
        )

    def _decode_series(self, key: tuple[Any, ...], data: list[Any], start: int) -> SeriesStats | None:
        if data[_CALLS] == 0:
            return None
        if key == _OVERFLOW_KEY:
            return _stats({OVERFLOW: True}, data, start, error=False)
        head, name, *values = key
        origin, kind_status = divmod(head, 16)
        kind, status = divmod(kind_status, 3)
        resource = self._origins[origin]
        attributes: dict[str, AttributeValue] = {}
        core = (resource[0], name, _KIND_NAMES[kind], _STATUS_NAMES[status])
        for dimension, kept, value in zip(_CORE_DIMENSIONS, self._core_kept, core, strict=True):
            if kept:
                attributes[dimension] = _plain(value)
        for dimension, slots in self._dimension_slots:
            value = next((values[slot] for slot in slots if values[slot] is not None), None)
            if value is None:
                value = next((resource[slot + 1] for slot in slots if resource[slot + 1] is not None), None)
            if value is not None:
                attributes[dimension] = _plain(value)
        if self.label_redactor is not None:
            attributes = self.label_redactor(attributes)
        return _stats(attributes, data, start, error=status == _ERROR)

    def _decode_edge(self, key: tuple[Any, ...], data: list[Any], start: int) -> SeriesStats | None:
        if data[_CALLS] == 0:
            return None
        if key == _OVERFLOW_KEY:
            return _stats({OVERFLOW: True}, data, start, error=False)
        client, server, connection_type, failed = key
        attributes: dict[str, AttributeValue] = {"client": client, "server": _plain(server)}
        if connection_type:
            attributes["connection_type"] = connection_type
        attributes["failed"] = failed
        if self.label_redactor is not None:  # `server` is a span attribute: unsampled ones are raw
            attributes = self.label_redactor(attributes)
        return _stats(attributes, data, start, error=failed)


def _edge_key(
    client: str,
    kind: int,
    status: int,
    peer: Any,
    address: Any,
    legacy_address: Any,
    db_system: Any,
    db_system_name: Any,
    messaging_system: Any,
) -> tuple[Any, ...] | None:
    """A client or producer span's service-graph edge, as the servicegraph connector names it."""
    database = db_system or db_system_name
    server = peer or address or legacy_address or database
    if server is None:
        return None
    if database is not None:
        connection_type = "database"
    elif kind == _PRODUCER or messaging_system is not None:
        connection_type = "messaging_system"
    else:
        connection_type = ""
    if type(server) is not str:  # strings (nearly always) are hashable: no call for them
        server = _hashable(server)
    return (client, server, connection_type, status == _ERROR)


def _hashable(value: object) -> object:
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value


def _copy(series: list[Any]) -> list[Any]:
    """A copy of one series; its owner thread may be updating it right now, so the call count is
    taken as the sum of the copied buckets, which keeps count and buckets consistent."""
    buckets = list(series[_BUCKETS])
    return [
        sum(buckets),
        series[_SUM],
        series[_MIN],
        series[_MAX],
        buckets,
        list(series[_LAST]),
        list(series[_LAST_ERROR]),
    ]


def _exemplar(entry: Any, error: bool) -> ExemplarRef:
    context, duration_ns, end_ns = entry
    return ExemplarRef(
        trace_id=f"{context[0]:032x}",
        span_id=f"{context[1]:016x}",
        value=duration_ns / 1e9,
        time_unix_nano=end_ns,
        sampled=bool(context[3] & 1),
        error=error,
    )


def _stats(attributes: dict[str, AttributeValue], data: list[Any], start: int, *, error: bool) -> SeriesStats:
    exemplars = [_exemplar(entry, error) for entry in data[_LAST] if entry is not None]
    exemplars += [_exemplar(entry, True) for entry in data[_LAST_ERROR] if entry is not None]
    calls = data[_CALLS]
    return SeriesStats(
        attributes=attributes,
        calls=calls,
        errors=calls if error else 0,
        bucket_counts=tuple(data[_BUCKETS]),
        sum=data[_SUM] / 1e9,
        min=data[_MIN] / 1e9,
        max=data[_MAX] / 1e9,
        start_time_unix_nano=start,
        exemplars=tuple(exemplars),
    )


def _merge(items: Iterable[SeriesStats | None]) -> tuple[SeriesStats, ...]:
    """Fold series whose decoded attributes coincide (legacy vs new names, excluded dimensions)."""
    merged: dict[SeriesIdentity, SeriesStats] = {}
    for stats in items:
        if stats is None:
            continue
        identity = stats.identity
        known = merged.get(identity)
        if known is None:
            merged[identity] = stats
            continue
        merged[identity] = SeriesStats(
            attributes=known.attributes,
            calls=known.calls + stats.calls,
            errors=known.errors + stats.errors,
            bucket_counts=tuple(a + b for a, b in zip(known.bucket_counts, stats.bucket_counts, strict=True)),
            sum=known.sum + stats.sum,
            min=min(known.min, stats.min),
            max=max(known.max, stats.max),
            start_time_unix_nano=min(known.start_time_unix_nano, stats.start_time_unix_nano),
            exemplars=known.exemplars + stats.exemplars,
        )
    return tuple(merged.values())


class REDSpanProcessor(SpanProcessor):
    """Feeds every finished span into a `REDStore` (which selects the kinds it counts); never raises.

    Register it on the TracerProvider (with `RecordUnsampledSampler` the counts are exact whatever
    the trace sampling rate), and export the store with `otelpipe.processors.red_metrics`. It holds
    no state of its own: every RED setting is the store's.
    """

    # An unsampled span (otelpipe.processors.unsampled) needs only on_end: on_start is empty.
    unsampled_span_hooks: ClassVar[frozenset[str]] = frozenset({"on_end"})

    def __init__(self, store: REDStore) -> None:
        """Count into `store`; `on_end` becomes `store.record` itself (see the module docstring)."""
        self.store = store
        # The SDK calls on_end once per span: binding it to the store's method keeps counting a span
        # at one Python call, as when this class did the counting itself.
        self.on_end = store.record  # type: ignore[method-assign]

    @property
    def attribute_names(self) -> frozenset[str]:
        """Every span attribute the store reads (`REDStore.attribute_names`)."""
        return self.store.attribute_names

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start: RED needs the finished span."""

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span (`REDStore.record`); shadowed per instance by that bound method."""
        self.store.record(span)

    def shutdown(self) -> None:
        """Nothing to release: the store lives as long as its readers need it."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Always flushed: every span is in the store as soon as on_end returns."""
        return True


def _is_server_error_code(code: object) -> bool:
    """Whether a non-int status code attribute ("503", 503.0, ...) means a 5xx response."""
    try:
        return int(cast(Any, code)) >= 500
    except (TypeError, ValueError, OverflowError):
        return False


def _fallback_get(attributes: object) -> Callable[[str], Any]:
    """`get` for attributes that are not the SDK's BoundedAttributes (hand-built ReadableSpans)."""
    if attributes is None:
        return _no_attributes
    if isinstance(attributes, Mapping):
        return {key: _hashable(value) for key, value in attributes.items()}.get
    return _no_attributes


def _no_attributes(_name: str) -> None:
    return None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_stores_after_fork)
