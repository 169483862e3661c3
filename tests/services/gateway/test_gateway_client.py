"""The typed client and `llmdocs llm ...` against a gateway served over HTTP."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from llmdocs.core.auth import issue_token
from llmdocs.core.client import NotFound
from llmdocs.core.config import Settings
from llmdocs.services.gateway.cli import cli
from llmdocs.services.gateway.client import GatewayClient
from services.gateway.conftest import Gateway


async def test_client_and_cli(gateway: Gateway, settings: Settings,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = await gateway()
    token = issue_token(settings, "user:eve", ["llm:read", "llm:write"])
    async with GatewayClient(app.url, token=token) as client:
        answer = await client.query("Name a fruit.", max_tokens=8, temperature=0,
                                    metadata={"prompt_id": "fruit"})
        assert answer.provider == "local" and answer.response.strip()
        pieces = [p async for p in client.stream([{"role": "user", "content": "Hi"}],
                                                 model="smollm2", max_tokens=6)]
        assert "".join(pieces).strip()
        chat = await client.chat([{"role": "user", "content": "Hi"}], model="smollm2",
                                 max_tokens=6)
        assert chat["choices"][0]["message"]["content"]
        with pytest.raises(NotFound):
            await client.query("x", model="no-such-model")
        assert (await client.providers())["providers"][0]["name"] == "local"
        assert (await client.usage())["total"]["calls"] == 3

    monkeypatch.setenv("LLMDOCS_GATEWAY_URL", app.url)
    monkeypatch.setenv("LLMDOCS_TOKEN", token)
    monkeypatch.setenv("LLMDOCS_INPROCESS_CALLS", "false")
    runner = CliRunner()
    asked = await asyncio.to_thread(runner.invoke, cli,
                                    ["ask", "Say yes.", "--max-tokens", "6"])
    assert asked.exit_code == 0, asked.output
    assert asked.output.strip()
    listed = await asyncio.to_thread(runner.invoke, cli, ["providers"])
    assert listed.exit_code == 0 and "local" in listed.output
    spent = await asyncio.to_thread(runner.invoke, cli, ["usage", "--json"])
    assert spent.exit_code == 0 and '"calls": 4' in spent.output
    wrong = await asyncio.to_thread(runner.invoke, cli, ["ask", "x", "-m", "nope"])
    assert wrong.exit_code == 1
