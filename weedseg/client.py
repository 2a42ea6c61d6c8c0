"""A small client for the weedseg service; standard library only, so robots can copy this file.

Keeps one HTTP/1.1 connection alive between calls, times out instead of hanging, and retries
with exponential backoff when the server is busy (503, honouring Retry-After) or the connection
drops. Client errors (4xx) are not retried: they raise `ServiceError` with the server's detail.

    client = WeedsegClient("http://127.0.0.1:8000", api_key=None)
    answer = client.segment(open("frame.jpg", "rb").read())   # dict: fractions, weeds, mask...
    lanes = client.lanes(jpeg_bytes, lanes=12)
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.parse
from typing import Any

RETRY_STATUSES = (502, 503, 504)


class ServiceError(Exception):
    """The server answered with an error (or kept failing after every retry)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def sniff_content_type(image: bytes) -> str:
    """The body's type from its first bytes (JPEG, PNG, TIFF, WebP or a JSON object)."""
    if image[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if image[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if image[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    if image[:1] == b"{":
        return "application/json"
    return "application/octet-stream"


class WeedsegClient:
    """One weedseg server over a kept-alive connection (not thread-safe: one client per thread)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.1,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s)://host[:port] URL, got {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._conn: http.client.HTTPConnection | None = None
        self._reused = False  # whether the last request went over an already open connection
        self.last_timings_ms: dict[str, float] = {}  # the last answer's Server-Timing header

    def segment(self, image: bytes, format: str = "json", **params: Any) -> Any:
        """POST /v1/segment: a dict for format=json, else the PNG/JPEG bytes.

        Extra parameters go to the query: mask="png"|"rle"|"none", gsd=0.05, polygons=True...
        """
        status, headers, body = self._request(
            "POST", "/v1/segment", {"format": format, **params}, image
        )
        return json.loads(body) if format == "json" else body

    def lanes(self, image: bytes, **params: Any) -> dict:
        """POST /v1/segment/lanes: spray decision per lane (lanes=8, band_start, band_end...)."""
        return json.loads(self._request("POST", "/v1/segment/lanes", params, image)[2])

    def model(self) -> dict:
        return json.loads(self._request("GET", "/v1/model", {}, None)[2])

    def reload(self, bundle: str | None = None) -> dict:
        """POST /v1/admin/reload (needs an admin key): swap in `bundle`, a folder under the
        server's reload root; None loads the server's configured bundle path again (e.g. a
        repointed `current` symlink). The old model serves until the new one is warm."""
        body = json.dumps({"bundle": bundle}).encode()
        return json.loads(self._request("POST", "/v1/admin/reload", {}, body)[2])

    def ready(self) -> bool:
        """Whether the server has a model loaded (GET /readyz), without retrying."""
        try:
            return self._send("GET", "/readyz", {}, None)[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> WeedsegClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        return self._conn

    def _send(
        self, method: str, path: str, params: dict, body: bytes | None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        query = urllib.parse.urlencode(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        )
        headers = {"Connection": "keep-alive"}
        if body is not None:
            headers["Content-Type"] = sniff_content_type(body)
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        url = f"{self._prefix}{path}?{query}"
        try:
            response, data = self._exchange(method, url, body, headers)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            if not self._reused:
                raise
            # The server closed the idle kept-alive connection: reconnect once and resend.
            response, data = self._exchange(method, url, body, headers)
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return response.status, response.headers, data

    def _exchange(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """One request and its whole answer; a failed connection is closed, never reused."""
        conn = self._connection()
        self._reused = conn.sock is not None
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            return response, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def _request(
        self, method: str, path: str, params: dict, body: bytes | None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """Send with retries on 502/503/504 and connection failures; raise ServiceError on 4xx."""
        attempt = 0
        while True:
            delay = self.backoff_s * 2**attempt * (0.5 + random.random())
            try:
                status, headers, data = self._send(method, path, params, body)
            except (OSError, http.client.HTTPException) as exc:
                if attempt >= self.retries:
                    raise ServiceError(0, "connection_failed", str(exc)) from exc
                status, headers, data = 0, None, b""
            if 0 < status < 400:
                self.last_timings_ms = parse_server_timing(headers.get("server-timing", ""))
                return status, headers, data
            if status not in (0, *RETRY_STATUSES) or attempt >= self.retries:
                raise _service_error(status, data)
            retry_after = headers.get("retry-after", "") if headers is not None else ""
            time.sleep(float(retry_after) if retry_after.isdigit() else delay)
            attempt += 1


def parse_server_timing(header: str) -> dict[str, float]:
    """`decode;dur=3.1, inference;dur=40.2` -> {"decode": 3.1, "inference": 40.2}."""
    timings = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";")
        if rest.startswith("dur="):
            try:
                timings[name] = float(rest[4:])
            except ValueError:
                continue
    return timings


def _service_error(status: int, data: bytes) -> ServiceError:
    """The server's `{error, detail}` answer as an exception."""
    try:
        err = json.loads(data)
        return ServiceError(status, str(err["error"]), str(err["detail"]))
    except (ValueError, KeyError, TypeError):
        return ServiceError(status, "error", data[:200].decode("utf-8", "replace"))


def decode_mask(png: bytes):
    """The class-index PNG from format=png (or base64-decoded mask_png) as an HxW uint8 array."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im, dtype=np.uint8)
