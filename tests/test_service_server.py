"""The service behind a real uvicorn on 127.0.0.1: streaming limits, fuzzing, reload under load."""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from bundles import build_colour_bundle, field_image
from uvicorn_server import free_port, running_server

from weedseg.client import ServiceError, WeedsegClient
from weedseg.imageio import encode_image

KEY = "server-test-key"
ADMIN_KEY = "server-admin-key"
MAX_UPLOAD = 256 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A uvicorn process serving a tiny bundle; yields (base URL, process, bundle folder)."""
    root = tmp_path_factory.mktemp("served")
    build_colour_bundle(root / "a", smooth=3)
    build_colour_bundle(root / "b", smooth=5)
    (root / "broken").mkdir()
    env = {
        "WEEDSEG_BUNDLE": str(root / "a"),
        "WEEDSEG_API_KEYS": KEY,
        "WEEDSEG_ADMIN_KEYS": ADMIN_KEY,
        "WEEDSEG_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "WEEDSEG_MAX_PIXELS": "1000000",
        "WEEDSEG_BATCH_SIZE": "4",
        "WEEDSEG_QUEUE_LIMIT": "64",
    }
    with running_server(env) as (url, process):
        yield url, process, root


@pytest.fixture(scope="module")
def frames() -> dict[str, bytes]:
    image = field_image(96, 128, seed=5)
    return {"png": encode_image(image, ".png"), "jpeg": encode_image(image, ".jpg")}


def test_body_over_limit_is_refused_while_streaming(server):
    """A chunked upload (no Content-Length) gets its 413 long before the client stops sending."""
    url, _, _ = server
    host, port = url.removeprefix("http://").split(":")
    total, sent, answer = 4 * 1024 * 1024, 0, b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /v1/segment HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = 32 * 1024
        while sent < total:
            try:
                sock.sendall(b"%x\r\n" % chunk + bytes(chunk) + b"\r\n")
            except OSError:
                break  # the server closed the connection after answering
            sent += chunk
            if select.select([sock], [], [], 0.005)[0]:
                break  # an answer arrived while we were still sending
        while b"}" not in answer:  # headers and the JSON body may come in separate packets
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"body_too_large" in answer
    assert sent < total // 4, f"the server let {sent} bytes in before refusing"
    declared = httpx.post(
        f"{url}/v1/segment",
        content=bytes(MAX_UPLOAD + 1),
        headers={"content-type": "image/png", "x-api-key": KEY},
        timeout=10,
    )
    assert declared.status_code == 413


def test_client_segments_with_keep_alive_and_reports_errors(server, frames):
    url, _, _ = server
    with WeedsegClient(url, api_key=KEY, timeout_s=10) as client:
        answer = client.segment(frames["jpeg"], mask="rle", gsd=0.3)
        assert answer["weed_count"] > 0 and set(answer["mask_rle"]) == {"soil", "crop", "weed"}
        assert {"decode", "queue", "inference", "encode"} <= set(client.last_timings_ms)
        connection = client._conn  # noqa: SLF001 - the point is that it is reused
        png = client.segment(frames["png"], format="png")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and client._conn is connection  # noqa: SLF001
        assert len(client.lanes(frames["png"], lanes=6)["lanes"]) == 6
        assert client.model()["version"].startswith("colour-rule-test@")
        with pytest.raises(ServiceError) as info:
            client.reload()  # a robot's key cannot swap models
        assert info.value.status == 403
        with WeedsegClient(url, api_key=ADMIN_KEY) as admin:
            swapped = admin.reload()  # re-read the served bundle: same weights, same version
        assert swapped["current"] == swapped["previous"] == client.model()["version"]
        with pytest.raises(ServiceError) as info:
            client.segment(b"garbage")
        assert info.value.status == 400
    with pytest.raises(ServiceError) as info:
        WeedsegClient(url, api_key="wrong").model()
    assert info.value.status == 401


class DroppingHandler(BaseHTTPRequestHandler):
    """Answers, then closes the kept-alive connection without saying so (an idle timeout)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"version": "x"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


def test_client_reconnects_when_the_server_dropped_an_idle_connection():
    server = ThreadingHTTPServer(("127.0.0.1", 0), DroppingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = WeedsegClient(f"http://127.0.0.1:{server.server_port}", retries=0)
        assert client.model() == {"version": "x"}
        time.sleep(0.05)
        assert client.model() == {"version": "x"}  # no retries left: only the reconnect
    finally:
        server.shutdown()
        server.server_close()


def test_client_retries_a_dead_server_then_gives_up():
    client = WeedsegClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    started = time.perf_counter()
    with pytest.raises(ServiceError) as info:
        client.model()
    assert info.value.error == "connection_failed" and time.perf_counter() - started < 5


def test_reload_under_concurrent_load_drops_nothing(server, frames):
    url, _, root = server
    statuses: Counter = Counter()
    versions: set[str] = set()
    stop = threading.Event()

    def robot() -> None:
        with httpx.Client(base_url=url, headers={"x-api-key": KEY}, timeout=20) as c:
            while not stop.is_set():
                r = c.post("/v1/segment", params={"format": "png"}, content=frames["png"])
                statuses[r.status_code] += 1
                versions.add(r.headers.get("x-weedseg-model", ""))

    robots = [threading.Thread(target=robot) for _ in range(4)]
    for t in robots:
        t.start()
    admin = httpx.Client(base_url=url, headers={"x-api-key": ADMIN_KEY}, timeout=30)
    swapped = []
    try:
        for name in ("b", "broken", "a", "b"):
            time.sleep(0.3)
            r = admin.post("/v1/admin/reload", json={"bundle": name})
            swapped.append(r.status_code)
    finally:
        time.sleep(0.3)
        stop.set()
        for t in robots:
            t.join()
    assert swapped == [200, 422, 200, 200]
    assert set(statuses) == {200}, statuses
    assert statuses[200] >= 20 and len(versions) == 2
    assert admin.get("/v1/model").json()["bundle"].endswith("b")


def png_claiming(width: int, height: int) -> bytes:
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(bytes(4096))
    chunks = [ihdr, idat, b"IEND"]
    body = b"".join(
        struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in chunks
    )
    return b"\x89PNG\r\n\x1a\n" + body


def jpeg_claiming(width: int, height: int, valid_jpeg: bytes) -> bytes:
    """A real JPEG whose SOF0 marker is rewritten to claim another size."""
    data = bytearray(valid_jpeg)
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def malformed_bodies(frames: dict[str, bytes], count: int, seed: int = 0):
    """(content type, body) pairs that no server should answer with a 2xx or a 5xx."""
    rng = random.Random(seed)
    image_types = [
        "image/jpeg",
        "image/png",
        "image/tiff",
        "image/webp",
        "application/octet-stream",
    ]
    kinds = [
        lambda: (rng.choice(image_types), rng.randbytes(rng.randint(1, 4000))),
        lambda: ("image/png", frames["png"][: rng.randint(8, len(frames["png"]) * 9 // 10)]),
        lambda: ("image/jpeg", frames["jpeg"][: rng.randint(2, len(frames["jpeg"]) * 9 // 10)]),
        lambda: ("image/png", png_claiming(100_000, 100_000)),
        lambda: ("image/jpeg", jpeg_claiming(60_000, 60_000, frames["jpeg"])),
        lambda: (
            rng.choice(["text/plain", "application/json", "image/gif", "video/mp4"]),
            frames["png"],
        ),
        lambda: (rng.choice(image_types), b""),
        lambda: ("multipart/form-data; boundary=xyz", b"--xyz\r\nnonsense" + rng.randbytes(100)),
        lambda: ("image/png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(0, 64))),
        lambda: ("image/jpeg", bytes(MAX_UPLOAD + 1)),
    ]
    for i in range(count):
        yield kinds[i % len(kinds)]()


def test_fuzz_malformed_bodies_are_all_4xx_and_the_server_survives(server, frames):
    url, process, _ = server
    headers = {"x-api-key": KEY}
    with httpx.Client(base_url=url, headers=headers, timeout=20) as c:
        warm = list(malformed_bodies(frames, 100, seed=99))
        for kind, body in warm:
            c.post("/v1/segment", content=body, headers={"content-type": kind})
        rss_before = rss_mb(process.pid)
        statuses: Counter = Counter()
        started = time.perf_counter()
        for i, (kind, body) in enumerate(malformed_bodies(frames, 1000)):
            path = "/v1/segment/lanes" if i % 4 == 3 else "/v1/segment"
            r = c.post(path, content=body, headers={"content-type": kind})
            statuses[r.status_code] += 1
            assert r.json()["error"], r.text
        seconds = time.perf_counter() - started
        rss_after = rss_mb(process.pid)
        assert all(400 <= s < 500 for s in statuses), statuses
        assert c.get("/healthz").status_code == 200
        ok = c.post("/v1/segment", content=frames["jpeg"], headers={"content-type": "image/jpeg"})
        assert ok.status_code == 200
    print(f"fuzz: {dict(statuses)} in {seconds:.1f} s; RSS {rss_before:.0f} -> {rss_after:.0f} MB")
    assert rss_after - rss_before < 40, (rss_before, rss_after)
    assert process.poll() is None
