"""The OpenAI-compatible backend against a real local HTTP server that echoes what it was sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from streamdesk.agent import backends
from streamdesk.agent.exceptions import AnswerTimeoutError, BackendError
from streamdesk.runtime.embedded import free_port

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Cancel #W1234567"}]
SCHEMA = {"type": "object", "properties": {"tool": {"const": "reply"}}, "required": ["tool"]}


def echo_app() -> FastAPI:
    """Answers each completion with the request it got (body and auth header) as the message content."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        body = await request.json()
        if body["model"] == "missing":
            return JSONResponse({"error": {"message": "model 'missing' not found"}}, status_code=404)
        if body["model"] == "slow":
            time.sleep(1.0)
        echoed = json.dumps({"body": body, "authorization": request.headers.get("authorization")})
        return JSONResponse(
            {
                "model": body["model"],
                "choices": [{"message": {"role": "assistant", "content": echoed}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7},
            }
        )

    return app


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A uvicorn server on a free port, in a thread, for this module."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(echo_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=5)


def sent(backend: backends.OpenAICompatibleBackend, **options: Any) -> dict[str, Any]:
    generation = backend.generate(MESSAGES, **options)
    assert (generation.prompt_tokens, generation.completion_tokens) == (11, 7)
    echoed: dict[str, Any] = json.loads(generation.text)
    return echoed


def test_requests_carry_model_messages_greedy_limits_and_the_schema(endpoint: str) -> None:
    backend = backends.OpenAICompatibleBackend(base_url=endpoint, model="smollm2", api_key="s3cret")
    echoed = sent(backend, json_schema=SCHEMA, max_new_tokens=64)
    assert echoed["authorization"] == "Bearer s3cret"
    assert echoed["body"] == {
        "model": "smollm2",
        "messages": MESSAGES,
        "max_tokens": 64,
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "agent_step", "schema": SCHEMA, "strict": True},
        },
    }
    assert "response_format" not in sent(backend)["body"]


def test_adapters_are_served_model_names_and_schema_modes_match_vllm_and_tgi(endpoint: str) -> None:
    vllm = backends.OpenAICompatibleBackend(base_url=endpoint, model="base", schema_mode="guided_json")
    generation = vllm.generate(MESSAGES, json_schema=SCHEMA, adapter="kto-7")
    assert (generation.model, generation.adapter) == ("kto-7", "kto-7")
    body = json.loads(generation.text)["body"]
    assert body["guided_json"] == SCHEMA and body["model"] == "kto-7" and "response_format" not in body
    tgi = backends.OpenAICompatibleBackend(base_url=endpoint, model="base", schema_mode="tgi")
    assert sent(tgi, json_schema=SCHEMA)["body"]["response_format"] == {"type": "json", "value": SCHEMA}


def test_errors_name_the_url_and_what_to_check(endpoint: str) -> None:
    backend = backends.OpenAICompatibleBackend(base_url=endpoint, model="missing")
    with pytest.raises(BackendError, match=r"answered 404: .*model 'missing' not found.*check the model name"):
        backend.generate(MESSAGES)
    slow = backends.OpenAICompatibleBackend(base_url=endpoint, model="slow", timeout_s=0.2)
    with pytest.raises(BackendError, match=rf"POST {endpoint}/chat/completions failed: ReadTimeout"):
        slow.generate(MESSAGES)
    with pytest.raises(AnswerTimeoutError, match="wall-clock budget ran out before POST"):
        slow.generate(MESSAGES, deadline=time.monotonic() + 0.1)
    closed = backends.OpenAICompatibleBackend(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    with pytest.raises(BackendError, match="check the endpoint is up"):
        closed.generate(MESSAGES)
    with pytest.raises(BackendError, match="is not an http"):
        backends.OpenAICompatibleBackend(base_url="localhost:8000", model="m")
