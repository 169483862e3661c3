"""Every string a request sends to a provider is scanned, as it reads: a secret in a
message's name, a tool call's arguments, a JSON schema's description or a stop
sequence, an AWS key or an e-mail split by a zero-width space, an SSN written with
spaces all reached a remote provider (the fake here records what reaches it). With
policy=redact each is redacted wherever it stands, and what is sent holds nothing the
filter finds: a date of birth was kept, and a request whose redaction would leave some
goes to trusted providers only."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from llmdocs.core.config import Settings
from llmdocs.services.gateway.outgoing import _strings
from llmdocs.services.gateway.security import Detector
from llmdocs.services.gateway.settings import ProviderConfig
from services.gateway.conftest import Fake, Gateway, headers

KEY, MAIL = "AKIAIOSFODNN7EXAMPLE", "jane.doe@example.com"
HI = {"role": "user", "content": "hi"}


def schema(description: str) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
        "type": "object", "description": description,
        "properties": {"text": {"type": "string"}}}}}


# a secret in each part of a request but the message text, and where it is reported
PARTS: dict[str, tuple[dict[str, Any], str]] = {
    "name": ({"messages": [{"role": "user", "content": "hi", "name": f"key-{KEY}"}]},
             "messages[0].name"),
    "tool call": ({"messages": [
        HI, {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function", "function": {
                "name": "lookup", "arguments": json.dumps({"mail": MAIL})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"}, HI]},
        "messages[1].tool_calls[0].function.arguments"),
    "json schema": ({"messages": [HI], "response_format": schema(f"reply to {MAIL}")},
                    "json_schema.description"),
    "stop": ({"messages": [HI], "stop": ["END", f"key {KEY}"]}, "stop[1]"),
    "schema key": ({"messages": [HI], "response_format": {
        "type": "json_schema", "json_schema": {"name": "a", "schema": {
            "type": "object", "properties": {KEY: {"type": "string"}}}}}},
        "json_schema.properties.<key>"),
}
# text that reads as a secret or personal data (each routed as sensitive)
HIDDEN = {
    "key split by U+200B": "use AKIA\u200bIOSFODNN7EXAMPLE now",
    "e-mail split by U+2060": "mail jane.doe@exa\u2060mple.com",
    "SSN with spaces": "my SSN is 078 05 1120",
    "SSN with thin spaces": "SSN 078\u200905\u20091120",
    "date of birth": "Patient DOB: 1985-03-14, SSN 078-05-1120",
}


def cloud(url: str) -> ProviderConfig:
    return ProviderConfig(name="cloud", kind="openai", base_url=url, api_key=SecretStr("k"),
                          models={"gpt-4o-mini": "gpt-4o-mini"})


def sent(body: dict[str, Any]) -> list[str]:
    """Every string a provider received."""
    return [text for _, text in _strings(body, "")]


@pytest.mark.parametrize("part", list(PARTS))
async def test_a_secret_anywhere_in_a_request_is_found_and_redacted(
        part: str, gateway: Gateway, fake: Fake, settings: Settings) -> None:
    upstream, url = await fake("openai")
    app = await gateway(cloud(url))  # no trusted provider: a sensitive request is refused
    body, field = PARTS[part]
    chat = {"model": "gpt-4o-mini", "max_tokens": 5, **body}
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        refused = await http.post("/v1/chat/completions", json=chat)
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("sensitive-refused")
        assert upstream.bodies == []
        redacted = await http.post("/v1/chat/completions", json={**chat, "policy": "redact"})
        assert redacted.status_code == 200, redacted.text
    reached = json.dumps(upstream.bodies)
    assert KEY not in reached and MAIL not in reached
    assert not Detector().scan(sent(upstream.bodies[0])).sensitive
    routing = redacted.json()["gateway"]["routing"]
    assert routing["sensitive"] and routing["reason"].startswith("redacted")
    assert [f["field"] for f in routing["findings"]] == [field]


@pytest.mark.parametrize("kind", list(HIDDEN))
async def test_text_is_scanned_as_it_reads(kind: str, gateway: Gateway, fake: Fake,
                                           settings: Settings) -> None:
    upstream, url = await fake("openai")
    app = await gateway(cloud(url))
    prompt = HIDDEN[kind]
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        refused = await http.post("/query", json={"prompt": prompt, "model": "gpt-4o-mini"})
        assert refused.status_code == 422 and upstream.bodies == []
        redacted = await http.post("/query", json={"prompt": prompt, "model": "gpt-4o-mini",
                                                   "policy": "redact"})
        assert redacted.status_code == 200, redacted.text
        assert redacted.json()["response"] == "echo: " + prompt  # restored on the way out
    reached = upstream.bodies[0]["messages"][-1]["content"]
    assert not Detector().scan([reached]).sensitive
    for secret in ("IOSFODNN7EXAMPLE", "doe@", "05", "1985"):
        assert secret not in reached


async def test_a_request_whose_redaction_would_leave_a_finding_stays_trusted(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    """A run found in part (an AWS key that a longer high-entropy token goes on from)
    would leave the rest of the token in the redacted request: it is not redacted, and
    with no trusted provider it is refused."""
    upstream, url = await fake("openai")
    app = await gateway(cloud(url))
    prompt = f"token {KEY}Zq8Lm3Xw9Rt2Yv6Bn4Kp7Hd1Gs5Jf0Ca"
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        answer = await http.post("/query", json={"prompt": prompt, "model": "gpt-4o-mini",
                                                 "policy": "redact"})
    assert answer.status_code == 422, answer.text
    assert upstream.bodies == []
