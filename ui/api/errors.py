"""Error mapping of the REST API: every error is ``{"error": {"code", "message"}}`` with a code from
``loradex.errors.ERROR_CODES``. Service exceptions get their code from ``loradex.errors.error_code``
(the ``EXCEPTION_CODES`` table: add a new exception there) and their status from ``ERROR_CODES``;
a known operational cause (read-only data dir, disk full, database down) is answered with its
one line (``storage`` / ``unavailable``); anything else is logged and answered with ``internal``,
never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loradex.errors import ERROR_CODES, error_code, known_cause
from registry.errors import RegistryError

log = logging.getLogger("loradex.api")


class ApiError(Exception):
    """A refusal with an HTTP status and a stable code (see ``ERROR_CODES``); raised in routes."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large"}  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(RegistryError)
    async def registry_error(_: Request, e: RegistryError) -> JSONResponse:
        code = error_code(e)
        return error_response(ERROR_CODES[code], code, str(e))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in e.errors()]
        return error_response(400, "bad_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(e.status_code, "bad_request" if e.status_code < 500 else "internal")
        message = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
        return error_response(e.status_code, code, message, dict(e.headers or {}))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:
        known = known_cause(e)  # read-only data dir, disk full, database down: the operator's one line
        if known is not None:
            code = error_code(known)
            log.warning("%s %s: %s", request.method, request.url.path, known)
            return error_response(ERROR_CODES[code], code, str(known))
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal server error (details are in the server log)")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes on ``paths`` with 413, from the
    Content-Length header when there is one, else while the body streams in."""

    def __init__(self, app: ASGIApp, limit: int, paths: Sequence[str]) -> None:
        self.app, self.limit, self.paths = app, limit, tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        too_large = ApiError(413, "too_large", f"upload larger than the limit of {self.limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response(413, too_large.code, too_large.message)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large  # handled by the ApiError handler (the endpoint is reading the form)
            return message

        await self.app(scope, limited, send)
