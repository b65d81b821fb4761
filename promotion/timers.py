"""Deadlines of many users, in buckets of event time: one list slot per scheduled user.

A heap of (deadline, user_id) tuples costs ~64 bytes per open user; bucketing by
`deadline // width` costs 8, plus one small heap of bucket numbers. Buckets are only a coarse
index: the caller checks each user's exact deadline, so closing times stay exact.
"""

from __future__ import annotations

import heapq
from typing import Final

DEFAULT_WIDTH_MS: Final = 1_000


class DeadlineWheel:
    __slots__ = ("width", "_buckets", "_order")

    def __init__(self, width_ms: int = DEFAULT_WIDTH_MS) -> None:
        self.width = width_ms
        self._buckets: dict[int, list[str]] = {}
        self._order: list[int] = []  # heap of the bucket numbers in use

    def add(self, due: int, user_id: str) -> None:
        number = due // self.width
        bucket = self._buckets.get(number)
        if bucket is None:
            self._buckets[number] = [user_id]
            heapq.heappush(self._order, number)
        else:
            bucket.append(user_id)

    def take_due(self, watermark: int) -> tuple[int, list[str]] | None:
        """Remove and return the earliest bucket that may hold a deadline below the watermark."""
        order = self._order
        if not order or order[0] * self.width >= watermark:
            return None
        number = heapq.heappop(order)
        return number, self._buckets.pop(number)

    def clear(self) -> None:
        self._buckets.clear()
        self._order.clear()

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())
