"""The discovery-agent's own settings (`LLMDOCS_DISCOVERY_*`): the spec bounds it shares
with every reader of specs, and the health watch's pace. The networks it never fetches
from are the core setting `LLMDOCS_BLOCKED_NETWORKS`."""

from __future__ import annotations

from llmdocs.openapi.bounds import SpecBounds


class DiscoverySettings(SpecBounds):
    watch_interval_seconds: float = 30.0  # 0 turns the health watch off
    watch_concurrency: int = 16
    discover_on_start: bool = True  # discover every llmdocs service when the agent starts
