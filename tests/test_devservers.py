"""The test helpers' ports: each one handed out once per process."""

from __future__ import annotations

from llmdocs.devservers import free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    """The kernel offers just-closed ports again: two services of one `llmdocs up` in a
    test were once given the same port, and one of them never started. 3,000 draws
    from ~28,000 ephemeral ports repeat one almost surely without the guard."""
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)
