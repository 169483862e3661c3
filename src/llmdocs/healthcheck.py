"""The image's HEALTHCHECK (and, with mutual TLS on, the Kubernetes exec probes, as an
httpGet probe presents no client certificate): each llmdocs port that listens in this
container answers `/health/live` (one port under `serve`, all under `up`), and at least
one listens; with `--ready`, `/health?deep=false` (its own dependencies up), and with
another argument, that path."""

from __future__ import annotations

import sys
from http.client import HTTPConnection, HTTPSConnection

from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.tls import client_context


def _connection(settings: Settings, key: str, timeout: float) -> HTTPConnection:
    """Plain HTTP; with TLS on, HTTPS presenting the probed service's own certificate
    (what its container holds)."""
    context = client_context(settings, key)
    if context is None:
        return HTTPConnection("127.0.0.1", settings.port_for(key), timeout=timeout)
    return HTTPSConnection("127.0.0.1", settings.port_for(key), timeout=timeout,
                           context=context)


LIVE, READY = "/health/live", "/health?deep=false"


def healthy(settings: Settings, timeout: float = 5.0, path: str = LIVE) -> bool:
    answered = False
    for key in SERVICE_NAMES:
        try:
            connection = _connection(settings, key, timeout)
        except OSError:
            continue  # no certificate of this service here: the container does not run it
        try:
            connection.request("GET", path)
            status = connection.getresponse().status
        except ConnectionRefusedError:
            continue  # a service this container does not run
        except OSError:
            return False  # listens but does not answer in time
        finally:
            connection.close()
        if status != 200:
            return False
        answered = True
    return answered


def main() -> None:
    args = sys.argv[1:]
    path = READY if args == ["--ready"] else (args or [LIVE])[0]
    raise SystemExit(0 if healthy(Settings(), path=path) else 1)


if __name__ == "__main__":
    main()
