"""Security filter, routing, budgets, rate limits, events and the remote providers
(Anthropic, Ollama, Bedrock, OpenAI) against wire-format fakes on loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.services.gateway.security import DETECTOR_ERROR, Detector
from llmdocs.services.gateway.settings import Price, ProviderConfig
from services.gateway.conftest import Fake, Gateway, headers

LOCAL = ProviderConfig(name="local", kind="local", models={"smollm2": ""})
SECRET = "use key AKIAIOSFODNN7EXAMPLE and mail jane.doe@example.com"


def remote(url: str, **extra: Any) -> ProviderConfig:
    return ProviderConfig(name="cloud", kind="openai", base_url=url,
                          api_key=SecretStr("sk-test"),
                          models={"smollm2": "gpt-4o-mini", "gpt-4o-mini": "gpt-4o-mini"},
                          **extra)


def test_detector_finds_secrets_and_personal_data_by_type_and_span() -> None:
    detector = Detector(keywords=["Project Zeus"])
    text = ("card 4111 1111 1111 1111, not 4111 1111 1111 1112; IBAN DE89 3704 0044 0532 "
            "0130 00; SSN 123-45-6789; +44 20 7946 0958; ghp_abcdefghijklmnopqrstuvwxyz0123456789"
            "; postgres://bob:s3cret@db/x; password=hunter2hunter; about project zeus")
    scan = detector.scan(["clean text", text])
    found = {(f.type, text[f.start:f.end]) for f in scan.findings}
    assert {("credit_card", "4111 1111 1111 1111"), ("iban", "DE89 3704 0044 0532 0130 00"),
            ("national_id", "123-45-6789"), ("phone", "+44 20 7946 0958"),
            ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("password_assignment", "hunter2hunter"), ("keyword", "project zeus")} <= found
    assert not any("1112" in value for _, value in found)  # fails the Luhn check
    assert all(f.message == 1 for f in scan.findings)
    assert not detector.scan(["GET /users/{id} returns 200 since 2024-01-15, v1.2.3"]).sensitive


def test_a_line_found_before_is_reported_where_it_stands_now() -> None:
    """Per-line findings (detect-secrets' keyword and entropy plugins) are remembered by
    line; in another prompt, or twice in one, the same line must be reported at its own
    place."""
    secret = "kls8d7f6g5h4"
    line = f'const apiSecret = "{secret}"\n'
    memo = Detector()
    first = "short intro\n" + line + "end"
    assert [first[f.start:f.end] for f in memo.scan([first]).findings] == [secret]
    later = "a much longer introduction, then a table\n| a | b |\n" + line + "x\n" + line
    found = memo.scan(["unrelated", later]).findings
    assert [(f.message, later[f.start:f.end]) for f in found] == [(1, secret)] * 2
    assert found == Detector().scan(["unrelated", later]).findings  # as found afresh


def test_a_failing_detector_makes_the_request_sensitive() -> None:
    detector = Detector()
    detector._value_plugins = [("broken", object())]  # has no analyze_string
    scan = detector.scan(["harmless"])
    assert scan.error and scan.sensitive and scan.types == [DETECTOR_ERROR]


async def test_sensitive_requests_stay_local_or_are_refused_or_redacted(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    upstream, url = await fake("openai")
    app = await gateway(remote(url))  # no trusted provider at all
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        refused = await http.post("/query", json={"prompt": SECRET})
        assert refused.status_code == 422
        assert refused.json()["type"].endswith("sensitive-refused")
        assert "AKIA" not in refused.text and upstream.bodies == []

        redacted = await http.post("/query", json={"prompt": SECRET, "policy": "redact"})
        assert redacted.status_code == 200, redacted.text
        sent = json.dumps(upstream.bodies[-1])
        assert "AKIAIOSFODNN7EXAMPLE" not in sent and "jane.doe" not in sent
        assert "[AWS_ACCESS_KEY_1]" in sent
        body = redacted.json()
        assert body["response"] == "echo: " + SECRET  # originals restored on the way out
        assert body["routing"]["sensitive"] and body["routing"]["reason"].startswith("redacted")
        spans = [(f["type"], f["start"], f["end"]) for f in body["routing"]["findings"]]
        assert ("aws_access_key", 8, 28) in spans
        assert "AKIA" not in json.dumps(body["routing"])

    both = await gateway(remote(url), LOCAL)
    async with httpx.AsyncClient(base_url=both.url, timeout=60,
                                 headers=headers(settings)) as http:
        calls = len(upstream.bodies)
        local = await http.post("/query", json={"prompt": SECRET, "max_tokens": 4})
        assert local.json()["provider"] == "local" and len(upstream.bodies) == calls
        pinned = await http.post("/query", json={"prompt": SECRET, "provider": "cloud"})
        assert pinned.status_code == 422 and len(upstream.bodies) == calls
        plain = await http.post("/query", json={"prompt": "hello", "cost_preference": "quality"})
        assert plain.json()["provider"] == "cloud"  # priced above the free local model
        cheap = await http.post("/query", json={"prompt": "hello", "cost_preference": "low",
                                                "max_tokens": 4})
        assert cheap.json()["provider"] == "local"


async def test_a_prompt_with_a_password_schema_goes_anywhere_and_is_cached(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    """A spec's password field is no secret: with no trusted provider the request is
    not refused, it goes to the remote one and its answer is cached; the same prompt
    with a real password in it is refused."""
    upstream, url = await fake("openai")
    app = await gateway(remote(url))
    schema = next(line.strip() for line in user_service_spec().splitlines()
                  if line.strip() == "password: {type: string, format: password}")
    prompt = f"Describe the login request body:\n  email: {{type: string}}\n  {schema}"
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        first = await http.post("/query", json={"prompt": prompt})
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["provider"], body["cached"], body["routing"]["sensitive"]) == (
            "cloud", False, False)
        second = await http.post("/query", json={"prompt": prompt})
        assert second.json()["cached"] is True and second.headers["x-gateway-cache"] == "hit"
        assert len(upstream.bodies) == 1
        secret = await http.post("/query", json={"prompt": prompt + "\npassword: hunter2hunter"})
        assert secret.status_code == 422 and len(upstream.bodies) == 1


async def test_fallback_retries_then_circuit_breaker(gateway: Gateway, fake: Fake,
                                                     settings: Settings) -> None:
    broken, broken_url = await fake("openai")
    broken.fail_status = 503
    _, healthy_url = await fake("openai")
    first = ProviderConfig(name="first", kind="openai", base_url=broken_url,
                           models={"m": "m"}, prices={"m": Price(input=1, output=1)})
    second = ProviderConfig(name="second", kind="openai", base_url=healthy_url,
                            models={"m": "m"}, prices={"m": Price(input=2, output=2)})
    app = await gateway(first, second, retries=2, breaker_failures=2)
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        answer = await http.post("/query", json={"prompt": "hi", "model": "m",
                                                 "cost_preference": "low"})
        assert answer.json()["provider"] == "second"
        assert len(broken.bodies) == 2  # retried, then fell back
        again = await http.post("/query", json={"prompt": "hi again", "model": "m",
                                                "cost_preference": "low"})
        assert again.json()["provider"] == "second" and len(broken.bodies) == 2  # open
        info = (await http.get("/providers")).json()["providers"]
        assert {p["name"]: p["circuit"] for p in info} == {"first": "open",
                                                          "second": "closed"}


@pytest.mark.parametrize("kind", ["anthropic", "ollama", "bedrock", "openai"])
async def test_remote_providers_speak_their_wire_formats(
        kind: str, gateway: Gateway, fake: Fake, settings: Settings) -> None:
    upstream, url = await fake(kind)
    model = {"bedrock": "anthropic.claude-3-haiku-20240307-v1:0"}.get(kind, "model-x")
    config = ProviderConfig(
        name=kind, kind=kind, base_url=url, models={"alias": model},
        api_key=SecretStr("sk-ant-test" if kind == "anthropic" else "k"),
        aws_access_key_id=SecretStr("AKIDEXAMPLE"),
        aws_secret_access_key=SecretStr("secret"))
    app = await gateway(config)
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "the quick brown fox"}]
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        answer = await http.post("/v1/chat/completions", json={
            "model": "alias", "messages": messages, "max_tokens": 20})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["choices"][0]["message"]["content"] == "echo: the quick brown fox"
        assert body["usage"]["completion_tokens"] == 5 and body["usage"]["prompt_tokens"] > 0
        async with http.stream("POST", "/v1/chat/completions", json={
                "model": "alias", "messages": messages, "max_tokens": 20, "stream": True,
                "stream_options": {"include_usage": True}},
                headers={"Cache-Control": "no-cache"}) as streamed:
            events = [json.loads(line[5:]) async for line in streamed.aiter_lines()
                      if line.startswith("data:") and line != "data: [DONE]"]
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events
                       if e["choices"])
        assert text == "echo: the quick brown fox"
        assert events[-1]["usage"]["completion_tokens"] == 5
        assert len(upstream.bodies) == 2
        sent = upstream.bodies[0]
        if kind == "anthropic":
            assert sent["system"] == "Be brief." and sent["max_tokens"] == 20
        if kind == "bedrock":
            assert sent["modelId"] == model and sent["inferenceConfig"]["maxTokens"] == 20
        if kind == "ollama":
            assert sent["options"]["num_predict"] == 20
        health = (await http.get("/health")).json()
        assert {d["name"]: d["status"] for d in health["dependencies"]}[f"provider:{kind}"] == "up"


async def test_budget_holds_under_100_concurrent_requests(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    _, url = await fake("openai")
    priced = remote(url, prices={"gpt-4o-mini": Price(input=1000, output=1000)})
    app = await gateway(priced)
    admin = headers(settings, "user:root", "llm:*")
    # one request: ~10 prompt + at most 10 completion tokens at $1000/M → ~$0.02 reserved
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
        put = await http.put("/budgets/user/user:bob", json={"limit_usd": 0.1}, headers=admin)
        assert put.status_code == 200
        bob = headers(settings, "user:bob")

        async def one(i: int) -> int:
            response = await http.post("/query", headers=bob, json={
                "prompt": f"question number {i}", "model": "gpt-4o-mini", "max_tokens": 10})
            return response.status_code

        statuses = await asyncio.gather(*(one(i) for i in range(100)))
        assert set(statuses) == {200, 402} and statuses.count(200) >= 3
        budget = next(b for b in (await http.get("/budgets", headers=admin)).json()
                      if b["subject"] == "user:bob")
        assert budget["reserved_usd"] == 0
        assert budget["spent_usd"] <= 0.1 + 0.02  # overshoot at most one request's cost
        usage = (await http.get("/usage", headers=bob)).json()
        assert usage["total"]["calls"] == statuses.count(200)
        assert usage["total"]["cost"] == pytest.approx(budget["spent_usd"])


@pytest.mark.parametrize("counters", ["process", "redis"])
async def test_a_token_limit_holds_under_100_concurrent_requests(
        counters: str, gateway: Gateway, fake: Fake, settings: Settings,
        redis_url: str) -> None:
    """Each request holds the most tokens it can use when it is admitted (its prompt's
    estimate and max_tokens) and settles to what it used: 100 at once used 22% past the
    limit, all admitted before any had counted its tokens. With Redis, across two
    replicas."""
    _, url = await fake("openai")
    kernel = settings if counters == "process" else settings.model_copy(
        update={"cache_url": redis_url})
    replicas = [await gateway(remote(url), kernel=kernel)
                for _ in range(1 if counters == "process" else 2)]
    admin = headers(settings, "user:root", "llm:*")
    async with httpx.AsyncClient(timeout=60) as http:
        put = await http.put(replicas[0].url + "/limits/user/user:eve", json={"tpm": 300},
                             headers=admin)
        assert put.status_code == 200, put.text
        eve = headers(settings, "user:eve")

        async def one(i: int) -> httpx.Response:
            # the fake counts 3 prompt and 4 completion tokens; each holds about 40
            return await http.post(replicas[i % len(replicas)].url + "/query", headers=eve,
                                   json={"prompt": f"question number {i}",
                                         "model": "gpt-4o-mini", "max_tokens": 10})

        answers = await asyncio.gather(*(one(i) for i in range(100)))
    assert {a.status_code for a in answers} == {200, 429}
    served = [a.json()["tokens"] for a in answers if a.status_code == 200]
    assert len(served) >= 5
    assert sum(t["prompt"] + t["completion"] for t in served) <= 300
    assert all(1 <= int(a.headers["retry-after"]) <= 61 for a in answers
               if a.status_code == 429)


async def test_rate_limits_answer_429_with_retry_after(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    _, url = await fake("openai")
    app = await gateway(remote(url))
    admin = headers(settings, "user:root", "llm:*")
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
        await http.put("/limits/user/user:carl", json={"rpm": 2}, headers=admin)
        carl = headers(settings, "user:carl")
        codes = [(await http.post("/query", headers=carl, json={"prompt": f"q{i}"}))
                 for i in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]
        assert 1 <= int(codes[2].headers["retry-after"]) <= 61
        await http.put("/limits/user/user:dora", json={"tpm": 5}, headers=admin)
        dora = headers(settings, "user:dora")
        first = await http.post("/query", headers=dora, json={"prompt": "a b c d e f"})
        second = await http.post("/query", headers=dora, json={"prompt": "g"})
        assert (first.status_code, second.status_code) == (200, 429)
        assert 1 <= int(second.headers["retry-after"]) <= 61
        assert (await http.delete("/limits/user/user:carl", headers=admin)).status_code == 204
        assert (await http.post("/query", headers=carl, json={"prompt": "q9"})).status_code == 200
        assert (await http.put("/limits/user/x", json={"rpm": 1},
                               headers=carl)).status_code == 403


async def test_every_call_emits_a_completed_event_without_prompt_text(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    _, url = await fake("openai")
    app = await gateway(remote(url), LOCAL)
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        await http.post("/query", json={"prompt": "public question", "model": "gpt-4o-mini",
                                        "metadata": {"prompt_id": "p1", "prompt_version": 3}})
        await http.post("/query", json={"prompt": SECRET, "max_tokens": 4})
        await http.get("/usage")  # flushes the recorder
    service = app.app.state.gateway
    deliveries = await service.recorder.events.read("t", "c", block_ms=10)
    events = [d.event for d in deliveries if d.event.type == "llmdocs.llm.completed"]
    assert len(events) == 2
    first, second = (e.data for e in events)
    assert first["prompt_id"] == "p1" and first["prompt_version"] == 3
    assert first["provider"] == "cloud" and first["cost"] > 0 and first["user_id"] == "user:ann"
    assert second["sensitive"] and second["finding_types"] == ["aws_access_key", "email"]
    spans = {(f["type"], f["start"], f["end"]) for f in second["findings"]}
    assert {("aws_access_key", 8, 28), ("email", 38, 58)} <= spans
    assert all(e.correlationid for e in events)
    dumped = json.dumps([e.model_dump(mode="json") for e in events])
    assert "AKIA" not in dumped and "jane" not in dumped and "public question" not in dumped
