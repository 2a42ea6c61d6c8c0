"""API errors: every failure is JSON `{error, detail}` with the right status code.

Routes raise `ApiError` (or a subclass); validation errors from FastAPI and unexpected exceptions
are converted by the handlers installed by `install_error_handlers`, so no client ever sees an
HTML page or a stack trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("weedseg.service")


class ApiError(Exception):
    """An error answer: HTTP status, a short machine-readable code and a sentence for people."""

    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def bad_image(detail: str) -> ApiError:
    return ApiError(400, "undecodable_image", detail)


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body exceeds the limit of {limit} bytes")


def too_many_pixels(width: int, height: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_many_pixels",
        f"image is {width}x{height} = {width * height} pixels; the limit is {limit}",
    )


def unsupported_type(detail: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", detail)


def bad_parameter(detail: str) -> ApiError:
    return ApiError(422, "invalid_parameter", detail)


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "ApiKey"})


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def overloaded(retry_after_s: int, reason: str = "the inference queue is full") -> ApiError:
    return ApiError(
        503, "overloaded", f"{reason}; retry shortly", {"Retry-After": str(retry_after_s)}
    )


def not_ready(detail: str = "no model is loaded yet") -> ApiError:
    return ApiError(503, "not_ready", detail, {"Retry-After": "1"})


def error_response(status: int, error: str, detail: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Turn every exception a request can raise into `{error, detail}` JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(422, "invalid_parameter", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, error, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"{type(exc).__name__} (see server log)")
