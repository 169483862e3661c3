"""`POST /v1/embeddings` through the openai SDK: the local model in embedding mode, a
real llama.cpp server behind the OpenAI-compatible provider, and a provider without
embeddings refused with a clear 4xx."""

from __future__ import annotations

import math

import openai
import pytest
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services.gateway.settings import ProviderConfig
from services.gateway.conftest import Gateway


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def test_embeddings_from_the_local_model_and_a_real_llama_cpp_server(
        gateway: Gateway, settings: Settings, llama_server: str) -> None:
    local = ProviderConfig(name="local", kind="local", models={"smollm2": ""},
                           embedding_models={"smollm2-embed": ""})
    server = ProviderConfig(name="llamacpp", kind="openai", base_url=llama_server,
                            embedding_models={"remote-embed": "smollm2"})
    claude = ProviderConfig(name="claude", kind="anthropic", base_url="http://127.0.0.1:9",
                            api_key=SecretStr("sk-ant-x"),
                            embedding_models={"claude-embed": "claude-3-haiku"})
    app = await gateway(local, server, claude)
    token = issue_token(settings, "user:ann", ["llm:read", "llm:write"])
    client = openai.AsyncOpenAI(base_url=app.url + "/v1", api_key=token, max_retries=0)
    try:
        listed = {m.id for m in (await client.models.list()).data}
        assert {"smollm2-embed", "remote-embed", "claude-embed"} <= listed

        texts = ["The API returns a list of users.", "Bananas are yellow fruit."]
        mine = await client.embeddings.create(model="smollm2-embed", input=texts)
        assert [d.index for d in mine.data] == [0, 1]
        first, second = (d.embedding for d in mine.data)
        assert len(first) == len(second) == 576  # SmolLM2-135M's hidden size, pooled
        assert cosine(first, second) < 0.999 and mine.usage.prompt_tokens > 0

        theirs = await client.embeddings.create(model="remote-embed", input=texts[0])
        assert len(theirs.data) == 1
        # the same GGUF behind llama.cpp's server gives the same vector
        assert cosine(theirs.data[0].embedding, first) > 0.99

        with pytest.raises(openai.BadRequestError) as unsupported:
            await client.embeddings.create(model="claude-embed", input="hello")
        detail = unsupported.value.response.json()["detail"]
        assert "'claude'" in detail and "does not support embeddings" in detail
        with pytest.raises(openai.NotFoundError):  # a chat model is not an embedding one
            await client.embeddings.create(model="smollm2", input="hello")
        with pytest.raises(openai.UnprocessableEntityError):
            await client.embeddings.create(model="smollm2-embed", input=[])
    finally:
        await client.close()
