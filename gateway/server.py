"""The gateway's routes, its API-key rule and its runs, served by ``serve`` on the web app's port under ``/v1``.

- Key: with ``TTS_API_KEY`` set, every request must send ``Authorization: Bearer <key>``; without it, requests
  are served only when the server listens on loopback (a server bound beyond loopback with no key refuses
  them all, with a message for its operator, instead of opening the models to the network).
- Runs: each request is one ``engine.run.execute`` in a thread of the gateway's own pool, as wide as the UI's
  run concurrency, so gateway runs queue instead of oversubscribing the CPU and never hold the server's
  threads; the events come back to the request's coroutine through an asyncio queue.
- A streaming client that goes away cancels its run (stored as cancelled, like a closed browser tab).
- Every refusal is an OpenAI error object with a 4xx status; an unexpected failure is a 500 with one line
  (the traceback goes to the log only).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engine.limits import Limits
from engine.run import ConfigError, execute
from gateway import protocol
from gateway.protocol import ApiError, GatewayRequest
from strategies.core import CancelToken
from ui.app import build_app, launch, resolve_address

log = logging.getLogger(__name__)

ENV_KEY = "TTS_API_KEY"
_END = object()  # the run's thread is done: nothing more comes on its queue


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # any other host name may resolve beyond loopback
        return False


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"


class Gateway:
    """The ``/v1`` routes over a run store; ``exposed`` says the server listens beyond loopback."""

    def __init__(self, store: Any, limits: Limits, *, api_key: str | None, exposed: bool, concurrency: int) -> None:
        self.store, self.limits = store, limits
        self.api_key, self.exposed = api_key or None, exposed
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gateway")

    def authorize(self, request: Request) -> None:
        if self.api_key is None:
            if self.exposed:
                raise ApiError(401, f"this server listens beyond loopback and has no API key: its operator must set "
                                    f"{ENV_KEY} to open the gateway", code="api_key_required")
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "missing API key: send the header Authorization: Bearer <key>", code="invalid_api_key")
        if not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "incorrect API key", code="invalid_api_key")

    def _start(self, config: Any) -> tuple[asyncio.Queue, CancelToken]:
        """Run ``config`` in the pool; its events, then an ApiError if it was refused or broke, then ``_END``."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = CancelToken()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (the server is stopping): stop the run too
                cancel.cancel()

        def work() -> None:
            try:
                for event in execute(config, self.store, cancel, self.limits):
                    put(event)
            except ConfigError as exc:  # refused before anything was stored
                put(ApiError(400, str(exc)))
            except Exception:  # noqa: BLE001 - the client gets one line, the log the traceback
                log.exception("gateway run failed")
                put(ApiError(500, "the gateway could not run the request; see the server log", "server_error"))
            finally:
                put(_END)

        self._pool.submit(work)
        return queue, cancel

    @staticmethod
    def _failed(run_id: str, end: dict) -> ApiError:
        status = end.get("status", "failed")  # a stream that stopped before its RunEnded counts as failed
        return ApiError(500, f"run {run_id} {status}: {end.get('error') or 'no answer'}", "server_error",
                        code=f"run_{status}")

    async def _complete(self, request: Request, kind: str) -> Response:
        self.authorize(request)
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON") from None
        req = protocol.parse_request(body, kind, self.limits)
        queue, cancel = self._start(req.config)
        try:
            first = await queue.get()
            if isinstance(first, ApiError):
                raise first
            run_id = first["run_id"]
            url = f"{str(request.base_url).rstrip('/')}/?run={run_id}"  # the web app opens the run it names
            if req.stream:
                return StreamingResponse(self._stream(req, run_id, url, first, queue, cancel),
                                         media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
            end = first
            while (item := await queue.get()) is not _END:
                if isinstance(item, ApiError):
                    raise item
                end = item
        except asyncio.CancelledError:  # the server dropped the request (client gone, shutdown): stop its run
            cancel.cancel()
            raise
        if end["type"] != "RunEnded" or end["status"] != "finished":
            raise self._failed(run_id, end)
        return JSONResponse(protocol.response_body(req, end, url))

    async def _stream(self, req: GatewayRequest, run_id: str, url: str, first: dict, queue: asyncio.Queue,
                      cancel: CancelToken) -> AsyncIterator[str]:
        item: Any = first
        try:
            while item is not _END:
                if isinstance(item, ApiError):
                    yield _sse(item.body())
                elif item["type"] == "RunEnded" and item["status"] != "finished":
                    yield _sse(self._failed(run_id, item).body())
                else:
                    for c in protocol.stream_chunks(req, run_id, item, url):
                        yield _sse(c)
                item = await queue.get()
            yield "data: [DONE]\n\n"
        finally:
            cancel.cancel()  # a no-op once the run ended; else the client went away and the run stops

    @staticmethod
    async def _guarded(work: Awaitable[Response]) -> Response:
        try:
            return await work
        except ApiError as err:
            return JSONResponse(err.body(), status_code=err.status)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("gateway request failed")
            err = ApiError(500, "the gateway failed on this request; see the server log", "server_error")
            return JSONResponse(err.body(), status_code=500)

    async def _models(self, request: Request) -> Response:
        self.authorize(request)
        return JSONResponse(await asyncio.to_thread(protocol.models_body))

    async def _unknown(self, request: Request) -> Response:
        raise ApiError(404, f"no such endpoint: {request.method} {request.url.path}; this gateway serves POST "
                            "/v1/chat/completions, POST /v1/completions and GET /v1/models", code="unknown_url")

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/v1")

        async def chat_completions(request: Request) -> Response:
            return await self._guarded(self._complete(request, "chat"))

        async def completions(request: Request) -> Response:
            return await self._guarded(self._complete(request, "completion"))

        async def models(request: Request) -> Response:
            return await self._guarded(self._models(request))

        async def unknown(request: Request) -> Response:
            return await self._guarded(self._unknown(request))

        router.add_api_route("/chat/completions", chat_completions, methods=["POST"])
        router.add_api_route("/completions", completions, methods=["POST"])
        router.add_api_route("/models", models, methods=["GET"])
        router.add_api_route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        return router

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def serve(store: Any, limits: Limits, host: str | None = None, port: int | None = None, *,
          api_key: str | None = None, exposed: bool | None = None, prevent_thread_lock: bool = False,
          quiet: bool = False, **app_options: Any) -> Any:
    """Serve the web app and the gateway on one port; returns the Blocks app (``app.tts_gateway``: the gateway;
    with ``prevent_thread_lock`` the caller closes both). The key defaults to
    ``TTS_API_KEY``; ``exposed`` (whether the key rule treats the server as reachable from the network) to
    whether ``host`` is beyond loopback. ``app_options`` go to ``ui.app.build_app``."""
    host, port = resolve_address(host, port)
    app = build_app(store, limits, **app_options)
    gateway = Gateway(store, limits, api_key=os.environ.get(ENV_KEY) if api_key is None else api_key,
                      exposed=not is_loopback(host) if exposed is None else exposed,
                      concurrency=app.tts_context.run_concurrency)
    app.tts_gateway = gateway
    launch(app, host, port, routes=gateway.router().routes, prevent_thread_lock=prevent_thread_lock, quiet=quiet)
    return app
