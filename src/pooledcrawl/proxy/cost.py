"""What a crawl costs: bytes on the wire per request, priced per profile.

Residential and mobile traffic is billed per GB both ways, and providers count
what crosses the wire: the request line and headers, the response headers and
the body as transferred (compressed). Some also bill per request. The meter
adds those up per profile, tier and domain and projects where the crawl will
end, so ``--budget`` can stop it before the money runs out rather than after.
Pure: the transport measures the bytes, the engine reports them here.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pooledcrawl.errors import UsageError

if TYPE_CHECKING:
    from pooledcrawl.proxy.tiers import TierSet

__all__ = ["CostMeter", "Price", "cost_meter", "request_head_bytes"]

GB = 1_000_000_000  # providers bill decimal gigabytes


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """A profile's ``[cost]`` table."""

    per_gb: float = 0.0
    per_request: float = 0.0

    def __post_init__(self) -> None:
        if self.per_gb < 0 or self.per_request < 0:
            raise UsageError("cost: prices must be >= 0")

    def of(self, wire_bytes: int, requests: int = 1) -> float:
        return wire_bytes / GB * self.per_gb + requests * self.per_request


def request_head_bytes(method: str, target: str, headers: Mapping[str, str]) -> int:
    """Bytes of an HTTP/1.1 request line and header block as sent (RFC 9112 section 2)."""
    size = len(method) + 1 + len(target.encode()) + len(" HTTP/1.1\r\n")
    for name, value in headers.items():
        size += len(name) + 2 + len(value.encode("utf-8", "surrogateescape")) + 2
    return size + 2


@dataclasses.dataclass(slots=True)
class _Tally:
    requests: int = 0
    bytes: int = 0
    cost: float = 0.0

    def add(self, wire_bytes: int, cost: float) -> None:
        self.requests += 1
        self.bytes += wire_bytes
        self.cost += cost

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "bytes": self.bytes, "cost": round(self.cost, 6)}


class CostMeter:
    """Bytes and cost per profile, tier and domain; and the budget check."""

    def __init__(self, prices: Mapping[str, Price], *, budget: float | None = None) -> None:
        self.prices = dict(prices)
        self.budget = budget
        self.total = _Tally()
        self._by: dict[str, dict[str, _Tally]] = {
            "profile": defaultdict(_Tally),
            "tier": defaultdict(_Tally),
            "domain": defaultdict(_Tally),
        }
        #: the most one request has cost so far: the margin the budget check keeps
        self.max_request_cost = 0.0

    def charge(self, profile: str, tier: str, domain: str, wire_bytes: int) -> float:
        """One request's bytes (sent and received); returns what it cost."""
        price = self.prices.get(profile)
        cost = price.of(wire_bytes) if price is not None else 0.0
        self.total.add(wire_bytes, cost)
        self._by["profile"][profile].add(wire_bytes, cost)
        self._by["tier"][tier].add(wire_bytes, cost)
        self._by["domain"][domain].add(wire_bytes, cost)
        if cost > self.max_request_cost:
            self.max_request_cost = cost
        return cost

    @property
    def average_cost(self) -> float:
        return self.total.cost / self.total.requests if self.total.requests else 0.0

    def over_budget(self, inflight: int) -> bool:
        """Whether the requests in flight, at the dearest cost seen so far (plus 10%),
        could take the total past the budget: then stop sending, so the close lands
        under it."""
        if self.budget is None:
            return False
        # pages differ in size: 10% over the dearest so far covers the next ones
        projected = self.total.cost + (inflight + 1) * self.max_request_cost * 1.1
        return projected > self.budget

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {"total": self.total.to_dict()}
        if self.budget is not None:
            data["budget"] = self.budget
        for axis, tallies in self._by.items():
            data[axis] = {key: tally.to_dict() for key, tally in sorted(tallies.items())}
        return data


def cost_meter(tiers: TierSet, budget: float | None) -> CostMeter | None:
    """A meter when any tier has a price or the crawl a budget; else None (no counting)."""
    prices = {
        t.name: Price(t.settings.price_per_gb, t.settings.price_per_request) for t in tiers.tiers
    }
    priced = any(p.per_gb or p.per_request for p in prices.values())
    if budget is None and not priced and len(tiers) == 1:
        return None
    return CostMeter(prices, budget=budget)
