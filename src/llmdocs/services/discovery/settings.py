"""The discovery-agent's own settings (`LLMDOCS_DISCOVERY_*`): the bounds that keep a
hostile or huge spec from hurting the agent, and the health watch's pace. The networks it
never fetches from are the core setting `LLMDOCS_BLOCKED_NETWORKS`."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class DiscoverySettings(BaseSettings):
    # LLMDOCS_DISCOVERY_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_DISCOVERY_", env_file=".env",
                                      extra="ignore")

    max_spec_bytes: int = 5_000_000  # a larger spec is a failed discovery
    max_spec_nodes: int = 1_000_000  # JSON values in the spec, with YAML aliases expanded
    max_spec_depth: int = 200  # nesting of the spec document
    max_operations: int = 5_000
    max_ref_depth: int = 24  # nesting while inlining $refs; deeper is cut off
    max_expanded_nodes: int = 500_000  # all operations' schemas after inlining $refs
    fetch_timeout_seconds: float = 10.0  # each connect and read
    fetch_deadline_seconds: float = 30.0  # a whole spec fetch, however slowly it arrives
    watch_interval_seconds: float = 30.0  # 0 turns the health watch off
    watch_concurrency: int = 16
    discover_on_start: bool = True  # discover every llmdocs service when the agent starts
