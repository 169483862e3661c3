"""A local webhook receiver: every request is checked with the Standard Webhooks
reference implementation (`standardwebhooks`), as a subscriber's endpoint would."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Mode = Literal["ok", "fail", "hang", "gone"]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Received:
    id: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    secret: str = field(default_factory=new_secret)
    mode: Mode = "ok"
    requests: list[Received] = field(default_factory=list)  # every one, answered or not
    accepted: list[Received] = field(default_factory=list)  # those answered 2xx
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a request came in
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends a "hang"

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        try:
            Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        got = Received(headers.get("webhook-id", ""), headers, json.loads(body), verified)
        self.requests.append(got)
        self.arrived.set()
        if not verified:
            return Response(status_code=400)
        if self.mode == "hang":
            await self.release.wait()
            if await request.is_disconnected():  # its sender gave up or died: not received
                return Response(status_code=499)
        if self.mode == "fail":
            return Response("down for maintenance", status_code=503)
        if self.mode == "gone":
            return Response(status_code=410)
        self.accepted.append(got)
        return Response(status_code=204)
