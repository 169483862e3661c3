"""The discovery-agent's own settings (`LLMDOCS_DISCOVERY_*`): the bounds that keep a
hostile or huge spec from hurting the agent, and the health watch's pace."""

from __future__ import annotations

from ipaddress import ip_network

from pydantic import IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict

# link-local: where clouds serve instance metadata and credentials to whoever asks
LINK_LOCAL = (ip_network("169.254.0.0/16"), ip_network("fe80::/10"))


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
    # specs and health checks never go to an address in these (a spec URL can come from
    # any user); add private ranges where services are reached only through a gateway
    blocked_networks: list[IPvAnyNetwork] = list(LINK_LOCAL)
    watch_interval_seconds: float = 30.0  # 0 turns the health watch off
    watch_concurrency: int = 16
    discover_on_start: bool = True  # discover every llmdocs service when the agent starts
