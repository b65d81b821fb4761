"""Seeded generator of realistic e-commerce traffic (JSON lines).

Pure module: no clock reads, no environment access, only stdlib + orjson.
Used for the embedded default input, for tests and for benchmarks.

Event schema (one JSON object per line, UTF-8, no trailing newline in the
yielded bytes)::

    event_id   str    unique per valid event, "e0000000042" (generation order)
    user_id    str    "u000123"
    type       str    login | logout | product_view | add_to_cart |
                      remove_from_cart | checkout_start | payment_complete
    ts         int | str
                      epoch milliseconds, or RFC 3339 with an offset
                      ("...T10:00:00.123+00:00", "...Z", or a non-UTC offset
                      such as "+02:00" that denotes the same instant)
    source     str    auth (login/logout), catalog (product_view),
                      cart (add/remove/checkout), payment (payment_complete)
    product_id str    on product_view, add_to_cart, remove_from_cart
    category   str    same events; deterministic per product
    price      float  same events; 2 decimals; deterministic per product
    quantity   int    add_to_cart / remove_from_cart; >= 1; sometimes omitted
                      (only when it is 1, i.e. the documented default)

Traffic model
-------------
* Every session of a user follows a behaviour drawn from the seed:
  ``browse`` (optional login, views, sometimes logout), ``abandon`` (views,
  1-3 adds, maybe one removal, no logout: ends by the inactivity gap) or
  ``buyer`` (views, adds, checkout_start, usually payment_complete, often
  logout; rarely checkout without payment, rarely an add after paying).
* Within a session consecutive events of the user are 1 s .. 2 min apart
  (log-uniform, capped at 0.4 * gap_ms so they stay well below the gap) and
  strictly increasing.  Between two sessions of the same user the idle time
  is at least 1.5 * gap_ms (drawn log-uniform in [1.5, 10] * gap_ms, longer
  if the user simply is not picked again for a while).  Hence every per-user
  gap is either <= min(120 s, 0.4 * gap_ms) or >= 1.5 * gap_ms.
* Sessions start as a random process whose rate makes the whole stream
  average ``rate_per_s`` events per second of event time; the user of a new
  session is picked at random among the users that are idle long enough.
  ``rate_per_s`` is therefore a *target*: a user pool sustains at most
  about ``users * 6.3 / (2.5 min + 4.5 * gap_ms)`` events/s (6.3 events per
  session on average), i.e. ~4.3 events/s per 1 000 users with a 5 min gap,
  so ~230 000 users are needed for 1 000 events/s.  Beyond that the stream
  runs as dense as the pool allows and spans longer than
  ``events / rate_per_s``: session realism and ``users`` are never violated
  to reach the rate.  Within capacity the span is ``events / rate_per_s``
  within a few percent.
* The stream is in steady state from its first event: the session process
  starts with a warm-up before ``start_ms`` whose events are dropped (so
  some users are already mid-session at ``start_ms``; every ts is
  >= ``start_ms``), and exactly ``events`` valid events are emitted
  (sessions still running at the end are cut).  Event ids are assigned in
  event-time order (ties broken by a generation sequence number).
* ts_format "mixed": per event, 50 % epoch ms and 50 % RFC 3339 (of those,
  half "+00:00", a quarter "Z", a quarter a non-UTC offset); "rfc3339" uses
  the same RFC 3339 variants for every event.

Arrival order, duplicates, bad records
--------------------------------------
* Each valid event gets an arrival key ``ts + d`` with ``d`` uniform in
  ``[0, max_disorder_ms]`` and lines are emitted in (key, sequence) order via
  a heap.  A line is only released when no later-generated event can have a
  smaller key, so for any two emitted valid lines i before j:
  ``ts_i <= key_i <= key_j <= ts_j + max_disorder_ms``, i.e. every valid line
  satisfies ``ts >= max(previous valid ts) - max_disorder_ms``.
  With ``max_disorder_ms == 0`` the stream is in non-decreasing ts order.
* A duplicate is the exact same bytes re-emitted with key ``ts + d'`` where
  ``d <= d' <= max_disorder_ms``: it arrives after its original (a few
  lines later; right after it when ``max_disorder_ms == 0``) and obeys the
  same bound.
* Bad records are extra lines (about ``bad_rate * events``) with exactly one
  defect each, tagged by :func:`generate_with_truth` with the expected
  rejection reason (see ``REJECTION_REASONS``).  They carry event ids
  "b..." that never collide with valid ones and are not subject to the
  disorder bound.  Variants: not_json (truncated object, garbage bytes with
  invalid UTF-8, unquoted keys, trailing "{"); missing_field (no user_id,
  no ts, no type, add_to_cart without product_id); wrong_type (user_id or
  product_id as a number, quantity as a string, a JSON array / string /
  null instead of an object); unknown_type ("teleport", "wishlist_add",
  "refund"); bad_timestamp ("yesterday", RFC 3339 without offset, negative
  epoch ms, impossible date "2026-02-30..."); invalid_value (user_id "",
  quantity 0 or negative, negative price); oversized (a valid add_to_cart
  with a "padding" field making the line > 64 KiB, < 2 % of bad records).
  Lines never contain "\\n" or "\\r".
* Independent random streams are used for traffic, timestamp formatting,
  disorder, duplicates and bad records: for a given seed/users/events/...
  the multiset of valid ("ok") lines does not depend on ``max_disorder_ms``,
  ``duplicate_rate`` or ``bad_rate``, and the parsed events (with ts
  normalised to epoch ms) do not depend on ``ts_format`` either.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
from dataclasses import dataclass
from heapq import heappop, heappush
from operator import itemgetter
from typing import Iterator

import orjson

__all__ = [
    "GeneratorConfig",
    "EVENT_TYPES",
    "REJECTION_REASONS",
    "MAX_LINE_BYTES",
    "TS_FORMATS",
    "format_rfc3339",
    "generate",
    "generate_with_truth",
    "write_jsonl",
]

EVENT_TYPES = (
    "login",
    "logout",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "payment_complete",
)
SOURCES = {
    "login": "auth",
    "logout": "auth",
    "product_view": "catalog",
    "add_to_cart": "cart",
    "remove_from_cart": "cart",
    "checkout_start": "cart",
    "payment_complete": "payment",
}
REJECTION_REASONS = (
    "not_json",
    "missing_field",
    "wrong_type",
    "unknown_type",
    "bad_timestamp",
    "oversized",
    "invalid_value",
)
#: lines strictly longer than this are "oversized"
MAX_LINE_BYTES = 64 * 1024
TS_FORMATS = ("epoch_ms", "rfc3339", "mixed")

# type codes (indexes into EVENT_TYPES)
_LOGIN, _LOGOUT, _VIEW, _ADD, _REMOVE, _CHECKOUT, _PAY = range(7)

_CATEGORIES = (
    # name, min price, max price
    ("shoes", 25.0, 180.0),
    ("books", 4.0, 45.0),
    ("electronics", 15.0, 1500.0),
    ("clothing", 8.0, 150.0),
    ("home", 5.0, 400.0),
    ("toys", 3.0, 90.0),
    ("beauty", 4.0, 120.0),
    ("sports", 10.0, 350.0),
    ("grocery", 1.0, 40.0),
    ("garden", 6.0, 250.0),
)
# non-UTC offsets used for RFC 3339 timestamps (minutes, suffix)
_OFFSETS = ((120, "+02:00"), (-300, "-05:00"), (330, "+05:30"), (540, "+09:00"),
            (-210, "-03:30"), (60, "+01:00"))
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000

# weights of the bad-record reasons; oversized stays below 1 in 50
_BAD_WEIGHTS = (
    ("not_json", 3.0),
    ("missing_field", 3.0),
    ("wrong_type", 3.0),
    ("unknown_type", 2.0),
    ("bad_timestamp", 3.0),
    ("invalid_value", 3.0),
    ("oversized", 0.3),
)


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 7
    users: int = 1_000
    events: int = 10_000            # valid events (before duplicates/bad records)
    start_ms: int = 1_767_225_600_000   # 2026-01-01T00:00:00Z
    rate_per_s: float = 1_000.0     # target average event-time rate (see module doc)
    gap_ms: int = 300_000           # the session gap the traffic is shaped around
    max_disorder_ms: int = 0        # bounded disorder of arrival order
    duplicate_rate: float = 0.0     # fraction of events re-emitted (same bytes)
    bad_rate: float = 0.0           # extra malformed records, fraction of events
    ts_format: str = "mixed"        # "epoch_ms" | "rfc3339" | "mixed"
    products: int = 500

    def validate(self) -> None:
        def _int(name: str, lo: int) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"GeneratorConfig.{name} must be an int >= {lo}, got {v!r}")

        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"GeneratorConfig.seed must be an int, got {self.seed!r}")
        _int("users", 1)
        _int("events", 0)
        _int("start_ms", 0)
        if self.start_ms > 100_000_000_000_000:  # year ~5138; keeps dates formattable
            raise ValueError(f"GeneratorConfig.start_ms too large: {self.start_ms!r}")
        _int("gap_ms", 10)
        _int("max_disorder_ms", 0)
        _int("products", 1)
        if not (isinstance(self.rate_per_s, (int, float)) and self.rate_per_s > 0
                and math.isfinite(self.rate_per_s)):
            raise ValueError(f"GeneratorConfig.rate_per_s must be > 0, got {self.rate_per_s!r}")
        for name in ("duplicate_rate", "bad_rate"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"GeneratorConfig.{name} must be in [0, 1], got {v!r}")
        if self.ts_format not in TS_FORMATS:
            raise ValueError(f"GeneratorConfig.ts_format must be one of {TS_FORMATS}, "
                             f"got {self.ts_format!r}")


# --------------------------------------------------------------------------
# catalog


def _catalog(n: int) -> list[tuple[str, str, float]]:
    """(product_id, category, price) per product index.

    Independent of the seed and prefix-stable: product i always has the same
    category and price.
    """
    rnd = random.Random("session-promotions:catalog")
    out = []
    ncat = len(_CATEGORIES)
    for i in range(n):
        name, lo, hi = _CATEGORIES[int(rnd.random() * ncat)]
        # log-uniform prices look more like a real catalog
        price = round(lo * math.exp(rnd.random() * math.log(hi / lo)), 2)
        out.append((f"p{i:05d}", name, price))
    return out


def _date_str(day: int) -> str:
    return _dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


_SEC_MS: list[str] = []


def _sec_ms_table() -> list[str]:
    """"SS.mmm" for every millisecond of a minute (built once, ~3 MB)."""
    if not _SEC_MS:
        _SEC_MS.extend([f"{i // 1000:02d}.{i % 1000:03d}" for i in range(60_000)])
    return _SEC_MS


def format_rfc3339(ts_ms: int, offset_minutes: int = 0, suffix: str = "+00:00") -> str:
    """RFC 3339 text with milliseconds for epoch ms ``ts_ms`` shown at the
    given offset (``suffix`` must match ``offset_minutes``; "Z" for 0)."""
    local = ts_ms + offset_minutes * 60_000
    day, rem = divmod(local, _DAY_MS)
    h, rem = divmod(rem, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{_date_str(day)}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}{suffix}"


# --------------------------------------------------------------------------
# session scripts

_M64 = (1 << 64) - 1


def _affinity(salt: int, u: int) -> float:
    """Seeded per-user probability that a session is a buyer's (0.08 .. 0.48)."""
    h = ((u + salt) * 0x9E3779B97F4A7C15) & _M64  # splitmix64 finaliser
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _M64
    h ^= h >> 31
    return 0.08 + 0.4 * ((h & 0xFFFFFFFF) / 4294967296.0) * ((h >> 32) / 4294967296.0)


def _make_session(r, prod, qty, buyer_affinity: float) -> list[tuple[int, int, int]]:
    """One session as a list of (type code, product index, quantity field).

    quantity field: 0 = field omitted (means 1), else the value.
    product index -1 for events without a product.
    """
    evs: list[tuple[int, int, int]] = []
    app = evs.append
    x = r()
    if x < buyer_affinity:
        kind = 2  # buyer
    elif x < buyer_affinity + (1.0 - buyer_affinity) * 0.4:
        kind = 1  # abandon
    else:
        kind = 0  # browse

    if kind == 0:
        if r() < 0.5:
            app((_LOGIN, -1, 0))
        for _ in range(1 + int(r() * 8)):
            app((_VIEW, prod(), 0))
        if r() < 0.3:
            app((_LOGOUT, -1, 0))
        return evs

    if r() < (0.6 if kind == 1 else 0.75):
        app((_LOGIN, -1, 0))
    for _ in range(int(r() * 4)):
        app((_VIEW, prod(), 0))
    cart: dict[int, int] = {}
    for _ in range(1 + int(r() * 3)):
        p = prod()
        if r() < 0.7:
            app((_VIEW, p, 0))
        q = qty()
        cart[p] = cart.get(p, 0) + q
        app((_ADD, p, q if (q > 1 or r() < 0.8) else 0))
        if r() < 0.3:
            app((_VIEW, prod(), 0))
    if r() < (0.3 if kind == 1 else 0.15):
        items = list(cart.items())
        p, have = items[int(r() * len(items))]
        # a buyer never empties the cart before checking out
        if kind == 1 or len(items) > 1 or have > 1:
            rq = 1 + int(r() * (have if kind == 1 or len(items) > 1 else have - 1))
            app((_REMOVE, p, rq if (rq > 1 or r() < 0.8) else 0))
    if kind == 1:
        return evs  # abandoned cart: no logout, the session times out

    app((_CHECKOUT, -1, 0))
    if r() < 0.92:
        app((_PAY, -1, 0))
        y = r()
        if y < 0.03:  # rare: keeps shopping after paying
            p = prod()
            app((_VIEW, p, 0))
            app((_ADD, p, qty()))
        elif y < 0.08:
            app((_VIEW, prod(), 0))
    if r() < 0.65:
        app((_LOGOUT, -1, 0))
    return evs


# --------------------------------------------------------------------------
# bad records


def _bad_record(r, n: int, uid: str, ts: int, catalog) -> tuple[bytes, str]:
    """One malformed line with exactly one defect, and its rejection reason."""
    total = sum(w for _, w in _BAD_WEIGHTS)
    x = r() * total
    for reason, w in _BAD_WEIGHTS:
        x -= w
        if x < 0:
            break
    pid, cat, price = catalog[int(r() * len(catalog))]
    eid = f"b{n:010d}"

    def add_event(**over):
        d = {"event_id": eid, "user_id": uid, "type": "add_to_cart", "ts": ts,
             "source": "cart", "product_id": pid, "category": cat, "price": price,
             "quantity": 1 + int(r() * 3)}
        for k, v in over.items():
            if v is _DROP:
                del d[k]
            else:
                d[k] = v
        return d

    v = int(r() * 1_000_000)
    if reason == "not_json":
        k = v % 4
        if k == 0:  # truncated line
            full = orjson.dumps(add_event())
            line = full[: 5 + v % (len(full) - 6)]
        elif k == 1:  # random bytes incl. invalid UTF-8
            body = bytes(b for b in _r_bytes(r, 8 + v % 40) if b not in (10, 13))
            line = b"\xff\xfe" + body
        elif k == 2:  # JSON-ish garbage
            line = b"{user_id: " + uid.encode() + b", type: login}"
        else:  # two objects glued together
            line = orjson.dumps(add_event()) + b"{"
        return line, reason
    if reason == "missing_field":
        k = v % 4
        if k == 0:
            d = add_event(user_id=_DROP)
        elif k == 1:
            d = add_event(product_id=_DROP)
        elif k == 2:
            d = add_event(ts=_DROP)
        else:
            d = {"event_id": eid, "user_id": uid, "ts": ts, "source": "auth"}  # no type
        return orjson.dumps(d), reason
    if reason == "wrong_type":
        k = v % 6
        if k == 0:
            d = add_event(user_id=int(uid[1:]))
        elif k == 1:
            d = add_event(quantity=str(1 + v % 3))
        elif k == 2:
            d = add_event(product_id=int(pid[1:]))
        elif k == 3:
            d = [eid, uid, "login", ts]
        elif k == 4:
            d = f"{uid} login {ts}"
        else:
            d = None
        return orjson.dumps(d), reason
    if reason == "unknown_type":
        name = ("teleport", "wishlist_add", "refund")[v % 3]
        d = {"event_id": eid, "user_id": uid, "type": name, "ts": ts, "source": "cart"}
        return orjson.dumps(d), reason
    if reason == "bad_timestamp":
        k = v % 4
        if k == 0:
            bad_ts = "yesterday"
        elif k == 1:  # no offset
            bad_ts = format_rfc3339(ts)[:19]
        elif k == 2:
            bad_ts = -(ts if ts > 0 else 1)
        else:  # impossible date
            bad_ts = "2026-02-30T10:00:00.000Z"
        return orjson.dumps(add_event(ts=bad_ts)), reason
    if reason == "invalid_value":
        k = v % 4
        if k == 0:
            d = add_event(user_id="")
        elif k == 1:
            d = add_event(quantity=0)
        elif k == 2:
            d = add_event(quantity=-(1 + v % 5))
        else:
            d = add_event(price=-round(price, 2) if price > 0 else -1.0)
        return orjson.dumps(d), reason
    # oversized: otherwise valid event padded beyond the limit
    d = add_event(padding="x" * (MAX_LINE_BYTES + 1024 + v % 4096))
    return orjson.dumps(d), "oversized"


class _Drop:
    __slots__ = ()


_DROP = _Drop()


def _r_bytes(r, n: int) -> bytes:
    return bytes(int(r() * 256) for _ in range(n))


# --------------------------------------------------------------------------
# core


def _core(cfg: GeneratorConfig) -> Iterator[tuple[bytes, str]]:
    seed = cfg.seed
    rnd = random.Random(f"traffic:{seed}").random
    fmt_r = random.Random(f"ts-format:{seed}").random
    dis_r = random.Random(f"disorder:{seed}").random
    dup_r = random.Random(f"duplicates:{seed}").random
    bad_r = random.Random(f"bad:{seed}").random

    n_events = cfg.events
    n_users = cfg.users
    n_products = cfg.products
    rate_per_ms = cfg.rate_per_s / 1000.0
    gap = cfg.gap_ms
    max_dis = cfg.max_disorder_ms
    dup_rate = cfg.duplicate_rate
    bad_rate = cfg.bad_rate

    catalog = _catalog(n_products)
    # per-user share of buyer sessions: a seeded hash of the user index, so
    # nothing is materialised per user (benchmarks use millions of users)
    user_salt = random.Random(f"users:{seed}").getrandbits(64)

    # intra-session gap: log-uniform in [lo, hi]; idle: log-uniform [1.5, 10] * gap
    hi = min(120_000.0, 0.4 * gap)
    lo = min(1_000.0, hi / 20.0)
    log_intra = math.log(hi / lo)
    idle_lo = 1.5 * gap
    log_idle = math.log(10.0 / 1.5)
    exp = math.exp
    log = math.log

    def prod() -> int:  # popularity skew: low indexes are popular
        x = rnd()
        return int(n_products * x * x)

    def qty() -> int:
        x = rnd()
        return 1 if x < 0.7 else (2 if x < 0.9 else 3 + int(rnd() * 3))

    # JSON fragments
    type_frag = [f'"type":"{t}","ts":' for t in EVENT_TYPES]
    src_frag = [f',"source":"{SOURCES[t]}"' for t in EVENT_TYPES]
    prod_frag = [
        f',"product_id":"{pid}","category":"{cat}","price":{orjson.dumps(price).decode()}'
        for pid, cat, price in catalog
    ]
    qty_frag = [""] + [f',"quantity":{q}' for q in range(1, 64)]  # max possible is 15
    ts_format = cfg.ts_format
    mixed = ts_format == "mixed"
    epoch_only = ts_format == "epoch_ms"
    minute_cache: dict[int, str] = {}  # local minute -> '"YYYY-MM-DDTHH:MM:'
    sec_ms = _sec_ms_table()

    # Event-time merge of all sessions through a calendar queue: events are
    # appended to buckets of width W ms and each bucket is sorted by (ts, seq)
    # once all sessions that can put events into it have been started.  The
    # output order is the global (ts, seq) order whatever W is; W only tunes
    # speed (about 256 events per bucket at the expected density).
    mean_intra = (hi - lo) / log_intra
    mean_idle = idle_lo * (10.0 / 1.5 - 1.0) / log_idle
    capacity_per_ms = n_users * 6.3 / (6.3 * mean_intra + mean_idle)  # rough
    width = max(1, int(256.0 / min(rate_per_ms, capacity_per_ms)))
    buckets: dict[int, list] = {}
    bucket_ids: list[int] = []  # heap of the keys of `buckets`

    # Steady state from the first event on: the session process starts a
    # warm-up before start_ms (events before start_ms are dropped, so the
    # stream opens with sessions already in progress) and every user begins
    # "idle", the ends of these initial idle times being spread evenly over
    # one mean cycle in a seeded random order of the users.
    start_ms = cfg.start_ms
    mean_cycle = 6.3 * mean_intra + mean_idle
    warmup = int(min(6.3 * mean_intra, n_events / rate_per_ms))  # ~ one mean session
    next_start = start_ms - warmup
    # Initial idle ends are spread evenly over one cycle, in the order of a
    # seeded permutation k -> (perm_a * k + perm_b) % n_users (lazy, O(1) memory).
    first_free = next_start
    cycle = max(1, int(mean_cycle))
    perm_a = 1 + int(rnd() * (n_users - 1))
    while math.gcd(perm_a, n_users) != 1:
        perm_a += 1
    perm_b = int(rnd() * n_users)
    k_init = 0                  # users [0, k_init) of the permutation have been released
    avail: list = []            # (time the user may start a new session, user index)
    pool: list[int] = []        # users idle long enough
    seq = 0
    n = 0
    n_bad = 0
    out_heap: list = []         # (arrival key, seq, line, tag)
    out_seq = 0
    use_heap = max_dis > 0
    mdp1 = max_dis + 1

    while n < n_events:
        if not bucket_ids or next_start < (bucket_ids[0] + 1) * width:
            # ---- start a session
            t = next_start
            while k_init < n_users and first_free + k_init * cycle // n_users <= t:
                pool.append((perm_a * k_init + perm_b) % n_users)
                k_init += 1
            while avail and avail[0][0] <= t:
                pool.append(heappop(avail)[1])
            if pool:
                i = int(rnd() * len(pool))
                u = pool[i]
                pool[i] = pool[-1]
                pool.pop()
            else:  # pool exhausted: rate capped by the users' realism
                t_init = (first_free + k_init * cycle // n_users if k_init < n_users
                          else None)
                if t_init is None or (avail and avail[0][0] <= t_init):
                    t, u = heappop(avail)
                else:
                    t, u = t_init, (perm_a * k_init + perm_b) % n_users
                    k_init += 1
            script = _make_session(rnd, prod, qty, _affinity(user_salt, u))
            ts = t
            for code, p, q in script:
                b = ts // width
                lst = buckets.get(b)
                if lst is None:
                    lst = buckets[b] = []
                    heappush(bucket_ids, b)
                lst.append((ts, seq, u, code, p, q))
                seq += 1
                ts += int(lo * exp(rnd() * log_intra)) or 1
            # ts is now past the last event by one intra gap; idle >= 1.5 gap on top
            heappush(avail, (ts + int(idle_lo * exp(rnd() * log_idle)), u))
            next_start = t + max(1, int(-len(script) / rate_per_ms * log(1.0 - rnd())))
            continue

        # ---- the earliest bucket is complete: emit it in (ts, seq) order
        bucket = buckets.pop(heappop(bucket_ids))
        bucket.sort()
        if bucket[0][0] < start_ms:  # warm-up
            bucket = [e for e in bucket if e[0] >= start_ms]
        if len(bucket) > n_events - n:
            del bucket[n_events - n:]
        for ts, _, u, code, p, q in bucket:
            if epoch_only:
                tsj = ts
            else:
                x = fmt_r()
                if mixed and x < 0.5:
                    tsj = ts
                else:
                    if mixed:
                        x = (x - 0.5) * 2.0
                    if x < 0.5:
                        off, suffix = 0, "+00:00"
                    elif x < 0.75:
                        off, suffix = 0, "Z"
                    else:
                        off, suffix = _OFFSETS[int((x - 0.75) * 4.0 * len(_OFFSETS))]
                    minute, sms = divmod(ts + off * 60_000, 60_000)
                    pre = minute_cache.get(minute)
                    if pre is None:
                        if len(minute_cache) > 100_000:
                            minute_cache.clear()
                        day, hm = divmod(minute, 1440)
                        pre = minute_cache[minute] = (
                            f'"{_date_str(day)}T{hm // 60:02d}:{hm % 60:02d}:')
                    tsj = f'{pre}{sec_ms[sms]}{suffix}"'
            if p >= 0:
                line = (f'{{"event_id":"e{n:010d}","user_id":"u{u:06d}",{type_frag[code]}'
                        f'{tsj}{src_frag[code]}{prod_frag[p]}{qty_frag[q]}}}').encode()
            else:
                line = (f'{{"event_id":"e{n:010d}","user_id":"u{u:06d}",{type_frag[code]}'
                        f'{tsj}{src_frag[code]}}}').encode()
            n += 1

            if use_heap:
                # release all lines no future event can precede (future keys >= ts)
                while out_heap and out_heap[0][0] <= ts:
                    item = heappop(out_heap)
                    yield item[2], item[3]
                dly = int(dis_r() * mdp1)
                heappush(out_heap, (ts + dly, out_seq, line, "ok"))
                out_seq += 1
                if dup_rate and dup_r() < dup_rate:
                    heappush(out_heap, (ts + dly + int(dup_r() * (mdp1 - dly)), out_seq, line,
                                        "duplicate"))
                    out_seq += 1
            else:
                yield line, "ok"
                if dup_rate and dup_r() < dup_rate:
                    yield line, "duplicate"
            if bad_rate and bad_r() < bad_rate:
                yield _bad_record(bad_r, n_bad, f"u{u:06d}", ts, catalog)
                n_bad += 1

    while out_heap:
        item = heappop(out_heap)
        yield item[2], item[3]


# --------------------------------------------------------------------------
# public API


def generate_with_truth(config: GeneratorConfig | None = None) -> Iterator[tuple[bytes, str]]:
    """Same stream as :func:`generate`, each line tagged "ok", "duplicate"
    or the expected rejection reason of a bad record (``REJECTION_REASONS``)."""
    cfg = config if config is not None else GeneratorConfig()
    cfg.validate()
    return _core(cfg)


def generate(config: GeneratorConfig | None = None) -> Iterator[bytes]:
    """Yields JSON lines (bytes, no trailing newline) in ARRIVAL order."""
    return map(itemgetter(0), generate_with_truth(config))


def write_jsonl(path, config: GeneratorConfig | None = None) -> int:
    """Writes the stream to ``path`` ("\\n" after each line); returns the
    number of lines written."""
    count = 0
    buf: list[bytes] = []
    with open(path, "wb") as f:
        for line in generate(config):
            buf.append(line)
            if len(buf) >= 8192:
                buf.append(b"")
                f.write(b"\n".join(buf))
                count += len(buf) - 1
                buf.clear()
        if buf:
            buf.append(b"")
            f.write(b"\n".join(buf))
            count += len(buf) - 1
    return count
