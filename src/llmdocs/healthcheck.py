"""The image's HEALTHCHECK: each llmdocs port that listens in this container answers
`/health/live` (one port under `serve`, all under `up`), and at least one listens."""

from __future__ import annotations

from http.client import HTTPConnection

from llmdocs.core.config import SERVICE_NAMES, Settings


def healthy(settings: Settings, timeout: float = 5.0) -> bool:
    answered = False
    for key in SERVICE_NAMES:
        connection = HTTPConnection("127.0.0.1", settings.port_for(key), timeout=timeout)
        try:
            connection.request("GET", "/health/live")
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
    raise SystemExit(0 if healthy(Settings()) else 1)


if __name__ == "__main__":
    main()
