"""backends/kube: the REST client's answers and errors, against a small local HTTP server (aiohttp's
own), as the API server would give them: JSON Status bodies, a non-JSON error, 429 with Retry-After,
an unreachable address; and the bearer token on every request."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from kubernetes import client
from tenancy_operator.backends import kube

BODY = web.RequestKey("body", bytes)
"""Each request's payload, read when it came: it is gone once answered."""


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "reason": reason, "message": message, "code": code}, status=code)


@pytest.fixture
def served(monkeypatch):
    """Run `scenario(base_url, seen)` against a server whose answers the test names by path."""
    def run(routes: dict[str, list], scenario):
        seen: list[web.Request] = []

        async def answer(request: web.Request) -> web.StreamResponse:
            request[BODY] = await request.read()
            seen.append(request)
            queue = routes[request.path]  # makers of answers: the last one answers every later call
            return (queue.pop(0) if len(queue) > 1 else queue[0])()

        async def go():
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", answer)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]
            cfg = client.Configuration()
            cfg.host = f"http://127.0.0.1:{port}"
            cfg.api_key = {"authorization": "secret-token"}
            cfg.api_key_prefix = {"authorization": "Bearer"}
            monkeypatch.setattr(kube, "_config", cfg)
            try:
                return await scenario(seen)
            finally:
                await kube.close()
                await runner.cleanup()

        return asyncio.run(go())
    return run


def test_answers_and_errors_map_to_the_documented_exceptions(served):
    routes = {
        "/api/v1/namespaces/tenant-a": [lambda: web.json_response({"kind": "Namespace",
                                                                    "metadata": {"name": "tenant-a"}})],
        "/api/v1/namespaces/gone": [lambda: _status(404, "NotFound", 'namespaces "gone" not found')],
        "/api/v1/namespaces": [lambda: _status(409, "AlreadyExists", 'namespaces "x" already exists')],
        "/api/v1/namespaces/x/secrets": [lambda: web.Response(status=500, text="<html>proxy error</html>",
                                                              reason="Oops")],
    }

    async def scenario(seen):
        assert (await kube.get("Namespace", "tenant-a"))["metadata"]["name"] == "tenant-a"
        assert await kube.get("Namespace", "gone") is None
        assert await kube.delete("Namespace", "gone") is False
        with pytest.raises(kube.Conflict) as conflict:
            await kube.create({"kind": "Namespace", "metadata": {"name": "x"}})
        assert conflict.value.reason == "AlreadyExists"
        with pytest.raises(kube.KubeError) as other:
            await kube.list_objects("Secret", "x")
        assert (other.value.status, other.value.reason) == (500, "Oops")
        assert "proxy error" in other.value.message
        assert all(r.headers["Authorization"] == "Bearer secret-token" for r in seen)
        posted = next(r for r in seen if r.method == "POST")
        assert posted.headers["Content-Type"] == "application/json"

    served(routes, scenario)


def test_a_throttled_call_is_sent_again_after_retry_after_then_gives_up(served, monkeypatch):
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(kube.asyncio, "sleep", sleep)

    def throttled() -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "60"}, text="{}", content_type="application/json")

    routes = {
        "/api/v1/namespaces/busy": [throttled, lambda: web.json_response({"metadata": {"name": "busy"}})],
        "/api/v1/namespaces/always": [throttled],
    }

    async def scenario(seen):
        assert (await kube.get("Namespace", "busy"))["metadata"]["name"] == "busy"
        assert waits == [kube.MAX_RETRY_AFTER]  # Retry-After 60 honoured up to the cap
        with pytest.raises(kube.KubeError) as refused:
            await kube.get("Namespace", "always")
        assert refused.value.status == 429
        assert sum(1 for r in seen if r.path.endswith("/always")) == kube.THROTTLED_RETRIES + 1

    served(routes, scenario)


def test_no_answer_is_unreachable_with_the_call_named(monkeypatch):
    cfg = client.Configuration()
    cfg.host = "http://127.0.0.1:9"  # discard: nothing listens
    monkeypatch.setattr(kube, "_config", cfg)

    async def go():
        try:
            with pytest.raises(kube.KubeError) as unreachable:
                await kube.merge_patch("Tenant", "a", None, {"status": {}}, "status")
        finally:
            await kube.close()
        return unreachable.value

    error = asyncio.run(go())
    assert (error.status, error.reason) == (0, "Unreachable")
    assert "PATCH /apis/tenancy.dev/v1alpha1/tenants/a/status" in error.message
    assert json.dumps(error.message)  # printable, no secret (no token in it)


def test_the_token_is_asked_for_once_per_reuse_window_and_again_after_a_401(served, monkeypatch):
    asked: list[str] = []
    tokens = iter(["old-token", "new-token", "newer-token"])
    real = client.Configuration.get_api_key_with_prefix

    def hook(self, identifier, alias=None):  # the refresh hook's stand-in: each ask may give a new token
        if identifier == "authorization":
            asked.append(identifier)
            return f"Bearer {next(tokens)}"
        return real(self, identifier, alias)

    monkeypatch.setattr(client.Configuration, "get_api_key_with_prefix", hook)
    clock = [1000.0]
    monkeypatch.setattr(kube.time, "monotonic", lambda: clock[0])

    routes = {"/api/v1/namespaces/a": [lambda: web.json_response({"metadata": {"name": "a"}})],
              "/api/v1/namespaces/renewed": [lambda: _status(401, "Unauthorized", "Unauthorized"),
                                             lambda: web.json_response({"metadata": {"name": "r"}})]}

    async def scenario(seen):
        for _ in range(5):
            await kube.get("Namespace", "a")
        assert len(asked) == 1  # five calls, one ask
        clock[0] += kube.TOKEN_REUSE_SECONDS
        await kube.get("Namespace", "a")
        assert len(asked) == 2 and seen[-1].headers["Authorization"] == "Bearer new-token"
        assert (await kube.get("Namespace", "renewed"))["metadata"]["name"] == "r"  # 401, asked again, sent again
        assert len(asked) == 3 and seen[-1].headers["Authorization"] == "Bearer newer-token"
        assert seen[-2].headers["Authorization"] == "Bearer new-token"

    monkeypatch.setattr(kube, "_token", None)
    served(routes, scenario)
    assert kube.TOKEN_REUSE_SECONDS <= 60  # a projected token lives an hour or more, renewed at 80 %


def test_a_lasting_401_is_sent_twice_then_raised_and_a_post_body_is_resent_whole(served, monkeypatch):
    def refused() -> web.Response:
        return _status(401, "Unauthorized", "Unauthorized")

    routes = {"/api/v1/namespaces": [refused]}
    bodies: list[bytes] = []

    async def scenario(seen):
        with pytest.raises(kube.KubeError) as error:
            await kube.create({"kind": "Namespace", "metadata": {"name": "x"}})
        assert error.value.status == 401
        assert len(seen) == 2  # once, then once more with the token asked for again: no loop
        bodies.extend(request[BODY] for request in seen)

    monkeypatch.setattr(kube, "_token", None)
    served(routes, scenario)
    assert bodies[0] == bodies[1] and json.loads(bodies[1])["metadata"]["name"] == "x"


def test_throttled_then_unauthorized_stays_bounded(served, monkeypatch):
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(kube.asyncio, "sleep", no_wait)
    routes = {"/api/v1/namespaces/b": [
        lambda: web.Response(status=429, headers={"Retry-After": "1"}, text="{}", content_type="application/json"),
        lambda: _status(401, "Unauthorized", "Unauthorized")]}

    async def scenario(seen):
        with pytest.raises(kube.KubeError) as error:
            await kube.get("Namespace", "b")
        assert error.value.status == 401 and len(seen) == 3  # 429, 401, 401 (asked again once)

    monkeypatch.setattr(kube, "_token", None)
    served(routes, scenario)
