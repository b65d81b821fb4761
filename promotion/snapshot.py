"""Shard snapshots: one versioned JSON document per shard, written by either engine.

Format 7 (both engines write and read it; `promotions state` reads it):

    {"version": 7,
     "watermark": W,                         # epoch ms; NO_TIME before any progress
     "high": {partition: newest ts},          # per input partition
     "users": {user_id: {"sessions": [SESSION, ...], "pending": [EVENT, ...]}},
     "profiles": {user_id: {"last_ts": ms, "sessions": n, "purchases": [ms, ...],
                            "interest": {category: score}, "interest_ts": ms}},
     "rules": {...} | null}                   # the rules document the shard decides with

    SESSION = {"start": ms, "first_event_id": id, "end": ms, "events": n, "logged_out": bool,
               "type_counts": [n per type, in EVENT_TYPES order],
               "cart": {product_id: quantity}, "prices": {product_id: price},
               "viewed": [product_id, ...], "categories": [category, ...],
               "event_ids": [event_id, ...]}
    EVENT = [ts, event_id, type, source, product_id, category, price, quantity]

`sessions` are a user's open sessions built from events below the watermark; `pending` are the
user's events at or above it, sorted by (ts, event_id). Older formats (1-6, pickled plain lists)
are migrated on load, so stores written by earlier releases resume.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Final

import orjson

SNAPSHOT_VERSION: Final = 7
#: Legacy (format <= 6) positions: accumulator slots and user list layout.
_L_START, _L_FIRST_ID, _L_END, _L_COUNT, _L_ENDED = 0, 1, 2, 3, 4
_L_TYPES, _L_CART, _L_PRICES, _L_VIEWED, _L_CATEGORIES, _L_IDS = 5, 6, 7, 8, 9, 10


def encode_state(state: dict[str, Any]) -> bytes:
    """A format-7 document as bytes (sets become sorted lists)."""
    return orjson.dumps(state, default=_sorted_list)


def _sorted_list(value: object) -> list:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not snapshot data: {type(value).__name__}")


def load_state(blob: bytes) -> dict[str, Any]:
    """Decode a shard snapshot of any supported format into a format-7 document."""
    if blob[:1] == b"{":
        state = orjson.loads(blob)
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported shard snapshot version {state.get('version')!r}")
        return state
    return _from_legacy(_load_legacy(blob))


# -- formats 1-6: pickled plain lists -----------------------------------------------------------


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every class lookup: snapshots must be builtins only."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"snapshot refers to {module}.{name}; only plain data allowed")


def _load_legacy(blob: bytes) -> dict:
    """Formats 1-5 migrated to format 6 (the last pickled one)."""
    state = _PlainUnpickler(io.BytesIO(blob)).load()
    version = state.get("version") if isinstance(state, dict) else None
    if version == 1:  # v1 had no profiles and no rules document
        state = {**state, "version": 2, "profiles": {}, "rules": None}
        version = 2
    if version == 2:  # v2 kept settled and pending events in two nested lists per user
        users = {}
        for uid, (deadline, settled, pending) in state["users"].items():
            users[uid] = [deadline, settled or None, *pending]
        state = {**state, "version": 3, "users": users}
        version = 3
    if version in (3, 4):  # v4 allowed a lone event tuple as a user; v5 accumulators keep ids
        for user in state["users"].values():
            if isinstance(user, list) and user[1]:
                for acc in user[1]:
                    if len(acc) == _L_IDS:
                        acc.append([])
        state = {**state, "version": 5}
        version = 5
    if version == 5:  # v6 pending events may be unsorted and repeated
        version = 6
    if version != 6:
        raise ValueError(f"unsupported shard snapshot version {version!r}")
    return state


def _from_legacy(state: dict) -> dict[str, Any]:
    users = {}
    for uid, user in state["users"].items():
        if isinstance(user, tuple):  # a lone pending event
            settled, raw = [], [user]
        else:
            settled, raw = list(user[1] or []), list(user[2:])
        sessions = [_legacy_session(acc) for acc in settled]
        known = {eid for s in sessions for eid in s["event_ids"]}
        pending = []
        for event in raw:  # first arrival wins; repeats of open sessions' events are dropped
            if event[1] in known:
                continue
            known.add(event[1])
            pending.append(event)
        pending.sort()
        users[uid] = {"sessions": sessions, "pending": [_legacy_event(e) for e in pending]}
    profiles = {
        uid: {"last_ts": p[0], "sessions": p[1], "purchases": list(p[2]),
              "interest": dict(p[3]), "interest_ts": p[4]}
        for uid, p in state.get("profiles", {}).items()
    }
    return {"version": SNAPSHOT_VERSION, "watermark": state["watermark"],
            "high": dict(state["high"]), "users": users, "profiles": profiles,
            "rules": state.get("rules")}


def _legacy_session(acc: list) -> dict[str, Any]:
    return {
        "start": acc[_L_START], "first_event_id": acc[_L_FIRST_ID], "end": acc[_L_END],
        "events": acc[_L_COUNT], "logged_out": bool(acc[_L_ENDED]),
        "type_counts": list(acc[_L_TYPES]), "cart": dict(acc[_L_CART] or {}),
        "prices": dict(acc[_L_PRICES] or {}), "viewed": sorted(acc[_L_VIEWED] or ()),
        "categories": sorted(acc[_L_CATEGORIES] or ()), "event_ids": sorted(acc[_L_IDS]),
    }


def _legacy_event(event: tuple) -> list:
    ts, event_id, _user, kind, source, product_id, category, price, quantity = event
    return [ts, event_id, kind, source, product_id, category, price, quantity]

