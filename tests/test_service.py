"""The service in-process (TestClient): every endpoint and format, every error code, batching.

Over 400 lines on purpose: one bundle fixture and one app serve every endpoint's tests, and a
reader checking the HTTP API against the README finds it all in one file.
"""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
from bundles import build_colour_bundle, field_image
from fastapi.testclient import TestClient
from PIL import Image
from weedseg.service import Settings, create_app
from weedseg.service.batcher import MicroBatcher, ModelHandle

from weedseg.bundle import load_bundle
from weedseg.errors import WeedsegError
from weedseg.imageio import encode_image

KEY = "robot-key-123"
ADMIN_KEY = "admin-key-456"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> str:
    return str(build_colour_bundle(tmp_path_factory.mktemp("bundles") / "colour"))


def wait_ready(client: TestClient) -> None:
    for _ in range(200):
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError(client.get("/readyz").json())


@pytest.fixture(scope="module")
def client(bundle):
    settings = Settings(bundle=bundle, max_upload_bytes=200_000, max_pixels=300_000)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return field_image(96, 128, seed=3)


def png_bytes(image: np.ndarray) -> bytes:
    return encode_image(image, ".png")


def post_png(client, image, path="/v1/segment", **params):
    return client.post(
        path, params=params, content=png_bytes(image), headers={"content-type": "image/png"}
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming width x height, and no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_segment_json_has_fractions_mask_and_weeds(client, image):
    r = post_png(client, image, format="json", mask="png", gsd=0.5, polygons=True, min_area=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (128, 96)
    assert [c["name"] for c in body["classes"]] == ["soil", "crop", "weed"]
    assert sum(body["fractions"].values()) == pytest.approx(1.0)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))
    assert mask.shape == (96, 128) and set(np.unique(mask)) <= {0, 1, 2}
    assert body["fractions"]["weed"] == pytest.approx((mask == 2).mean())
    assert body["weed_count"] == len(body["weeds"]) > 0
    weed = body["weeds"][0]
    x, y, w, h = weed["bbox"]
    assert mask[int(weed["centroid"][1]), int(weed["centroid"][0])] == 2 or w * h > 0
    assert weed["area_cm2"] == pytest.approx(weed["area_px"] * 0.25, rel=1e-3)
    assert len(weed["polygon"]) >= 3
    assert "inference;dur=" in r.headers["server-timing"]
    assert r.headers["x-weedseg-model"].startswith("colour-rule-test@")


def test_segment_json_rle_matches_png_mask(client, image):
    from pycocotools import mask as coco_mask

    png = post_png(client, image, format="png")
    labels = np.asarray(Image.open(io.BytesIO(png.content)))
    body = post_png(client, image, format="json", mask="rle").json()
    assert body["mask_png"] is None and set(body["mask_rle"]) == {"soil", "crop", "weed"}
    for class_id, name in enumerate(["soil", "crop", "weed"]):
        rle = body["mask_rle"][name]
        decoded = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded, labels == class_id)
    none = post_png(client, image, format="json", mask="none").json()
    assert none["mask_png"] is None and none["mask_rle"] is None


def test_segment_png_and_overlay(client, image):
    r = post_png(client, image, format="png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-weedseg-classes"] == "0=soil,1=crop,2=weed"
    labels = np.asarray(Image.open(io.BytesIO(r.content)))
    assert labels.shape == (96, 128) and labels.max() == 2
    r = post_png(client, image, format="overlay")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (128, 96)


def test_segment_accepts_multipart_and_jpeg(client, image):
    jpeg = encode_image(image, ".jpg", quality=95)
    r = client.post(
        "/v1/segment", params={"format": "png"}, files={"file": ("f.jpg", jpeg, "image/jpeg")}
    )
    assert r.status_code == 200, r.text
    r = client.post("/v1/segment", content=jpeg, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["weed_count"] > 0


def test_lanes_spray_only_where_weeds_are(client):
    image = np.empty((64, 128, 3), np.uint8)
    image[:] = (110, 90, 70)
    image[20:40, 100:120] = (200, 40, 40)  # a weed in lane 3 of 4 (x 96..128)
    r = post_png(client, image, "/v1/segment/lanes", lanes=4, threshold=0.01)
    assert r.status_code == 200, r.text
    lanes = r.json()["lanes"]
    assert [lane["spray"] for lane in lanes] == [False, False, False, True]
    assert lanes[3]["x_start"] == 96 and lanes[3]["weed_fraction"] > 0.05
    band = post_png(client, image, "/v1/segment/lanes", lanes=4, band_start=0.75, band_end=1.0)
    assert band.json()["band"] == [48, 64] and not any(x["spray"] for x in band.json()["lanes"])


def test_model_health_metrics_and_openapi(client, image):
    model = client.get("/v1/model").json()
    assert model["manifest"]["model_name"] == "colour-rule-test"
    assert model["version"] == client.get("/readyz").json()["model"]
    assert client.get("/healthz").json()["status"] == "ok"
    post_png(client, image, format="png")
    metrics = client.get("/metrics").text
    assert 'weedseg_requests_total{method="POST",route="/v1/segment",status="200"}' in metrics
    assert "weedseg_batch_size_bucket" in metrics and "weedseg_queue_depth" in metrics
    assert f'weedseg_model_info{{version="{model["version"]}"}} 1.0' in metrics
    schema = client.get("/openapi.json").json()
    segment = schema["paths"]["/v1/segment"]["post"]
    assert "multipart/form-data" in segment["requestBody"]["content"]
    assert {"/v1/segment/lanes", "/v1/model", "/v1/admin/reload"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text


@pytest.mark.parametrize(
    ("body", "content_type", "params", "status", "error"),
    [
        (b"not an image at all", "image/jpeg", {}, 400, "undecodable_image"),
        (b"", "image/png", {}, 400, "undecodable_image"),
        (b"x" * 200_001, "image/png", {}, 413, "body_too_large"),
        (png_header_only(100_000, 100_000), "image/png", {}, 413, "too_many_pixels"),
        (png_header_only(1000, 1000), "image/png", {}, 413, "too_many_pixels"),
        (b"GIF89a", "image/gif", {}, 415, "unsupported_media_type"),
        (b"{}", "application/json", {}, 415, "unsupported_media_type"),
        (None, "image/png", {"format": "svg"}, 422, "invalid_parameter"),
        (None, "image/png", {"mask": "bits"}, 422, "invalid_parameter"),
        (None, "image/png", {"gsd": "-1"}, 422, "invalid_parameter"),
        (None, "image/png", {"gsd": "1e200"}, 422, "invalid_parameter"),
        (None, "image/png", {"gsd": "inf"}, 422, "invalid_parameter"),
    ],
)
def test_errors_are_json_with_the_right_code(
    client, image, body, content_type, params, status, error
):
    content = png_bytes(image) if body is None else body
    r = client.post(
        "/v1/segment", params=params, content=content, headers={"content-type": content_type}
    )
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["detail"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP"])
def test_pixel_limit_is_read_from_every_formats_header(client, fmt):
    buffer = io.BytesIO()
    options = {"compression": "tiff_adobe_deflate"} if fmt == "TIFF" else {}  # under 200 KB
    Image.new("RGB", (700, 500), (90, 80, 60)).save(buffer, fmt, **options)  # 350,000 px
    kind = f"image/{fmt.lower()}"
    r = client.post("/v1/segment", content=buffer.getvalue(), headers={"content-type": kind})
    assert r.status_code == 413 and r.json()["error"] == "too_many_pixels", r.text
    assert "700x500" in r.json()["detail"]


def test_truncated_images_are_400_not_half_decoded(client, image):
    for data, kind in (
        (png_bytes(image), "image/png"),
        (encode_image(image, ".jpg"), "image/jpeg"),
    ):
        cut = data[: len(data) * 2 // 3]
        r = client.post("/v1/segment", content=cut, headers={"content-type": kind})
        assert r.status_code == 400, r.text


def test_jpeg_with_bytes_after_its_end_marker_is_accepted(client, image):
    jpeg = encode_image(image, ".jpg", quality=95) + b"camera trailer"
    r = client.post("/v1/segment", content=jpeg, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (128, 96)


def test_lanes_bad_band_and_unknown_route(client, image):
    r = post_png(client, image, "/v1/segment/lanes", band_start=0.8, band_end=0.2)
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameter"
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_api_keys_protect_the_api_but_not_probes(bundle, image):
    with TestClient(create_app(Settings(bundle=bundle, api_keys=[KEY, "other"]))) as c:
        wait_ready(c)
        assert post_png(c, image).json()["error"] == "unauthorized"
        bad = c.post("/v1/segment", content=png_bytes(image), headers={"x-api-key": "nope"})
        assert bad.status_code == 401
        ok = c.post("/v1/segment", content=png_bytes(image), headers={"x-api-key": KEY})
        assert ok.status_code == 200
        bearer = c.get("/v1/model", headers={"authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200
        assert c.get("/v1/model").status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_reload_swaps_and_refuses_bad_bundles(tmp_path, image):
    first = build_colour_bundle(tmp_path / "a", smooth=3)
    second = build_colour_bundle(tmp_path / "b", smooth=5)
    (tmp_path / "broken").mkdir()
    settings = Settings(bundle=first, api_keys=[KEY], admin_keys=[ADMIN_KEY])
    app = create_app(settings)
    with TestClient(app, headers={"x-api-key": ADMIN_KEY}) as c:
        wait_ready(c)
        before = c.get("/v1/model").json()["version"]
        old = app.state.batcher.handle.predictor
        for key, status in (("", 401), ("wrong", 401), (KEY, 403)):
            refused = c.post("/v1/admin/reload", json={"bundle": "b"}, headers={"x-api-key": key})
            assert refused.status_code == status, refused.text
        assert refused.json()["error"] == "forbidden" and "robot key" in refused.json()["detail"]
        assert c.get("/v1/model").json()["version"] == before and not old.closed
        r = c.post("/v1/admin/reload", json={"bundle": "b"})
        assert r.status_code == 200, r.text
        assert r.json()["previous"] == before and r.json()["current"] != before
        assert old.closed and not app.state.batcher.handle.predictor.closed  # session released
        assert post_png(c, image).headers["x-weedseg-model"] == r.json()["current"]
        refused = c.post("/v1/admin/reload", json={"bundle": "broken"})
        assert refused.status_code == 422 and refused.json()["error"] == "bad_bundle"
        escape = c.post("/v1/admin/reload", json={"bundle": "../../etc"})
        assert escape.status_code == 422
        assert c.get("/v1/model").json()["version"] == r.json()["current"]
        assert post_png(c, image).status_code == 200
        metrics = c.get("/metrics").text
        assert 'weedseg_model_reloads_total{outcome="refused"} 1.0' in metrics
        assert f'weedseg_model_info{{version="{r.json()["current"]}"}} 1.0' in metrics
        assert (
            r.json()["current"].split("@")[1]
            == load_bundle(second).manifest.files["model.onnx"][:12]
        )


def test_admin_is_disabled_without_keys(client, bundle):
    r = client.post("/v1/admin/reload")
    assert r.status_code == 401 and "WEEDSEG_ADMIN_KEYS" in r.json()["detail"]
    with TestClient(create_app(Settings(bundle=bundle, api_keys=[KEY]))) as c:
        r = c.post("/v1/admin/reload", headers={"x-api-key": KEY})
        assert r.status_code == 401 and "WEEDSEG_ADMIN_KEYS" in r.json()["detail"]


def test_empty_reload_follows_the_configured_symlink_again(tmp_path, image):
    build_colour_bundle(tmp_path / "a", smooth=3)
    build_colour_bundle(tmp_path / "b", smooth=5)
    current = tmp_path / "current"
    current.symlink_to("a")

    def repoint(target: str) -> None:  # as a deploy does it: a new link renamed over the old
        (tmp_path / "next").symlink_to(target)
        (tmp_path / "next").replace(current)

    settings = Settings(bundle=current, admin_keys=[ADMIN_KEY])
    with TestClient(create_app(settings), headers={"x-api-key": ADMIN_KEY}) as c:
        wait_ready(c)
        first = c.get("/v1/model").json()
        assert first["bundle"] == str(tmp_path / "a")
        repoint("b")
        assert c.post("/v1/admin/reload").status_code == 200
        second = c.get("/v1/model").json()
        assert second["bundle"] == str(tmp_path / "b") and second["version"] != first["version"]
        assert (
            c.post("/v1/admin/reload", json={"bundle": "a"}).json()["current"] == (first["version"])
        )
        r = c.post("/v1/admin/reload")  # the configured path again, not the last one named
        assert r.status_code == 200 and r.json()["current"] == second["version"]
        assert post_png(c, image).headers["x-weedseg-model"] == second["version"]


def test_no_server_paths_without_a_key(bundle, tmp_path):
    with TestClient(create_app(Settings(bundle=bundle, admin_keys=[ADMIN_KEY]))) as c:
        wait_ready(c)
        anonymous = c.get("/v1/model")
        assert anonymous.status_code == 200 and anonymous.json()["bundle"] is None
        assert "provenance" not in anonymous.json()["manifest"]
        assert anonymous.json()["manifest"]["classes"][2]["name"] == "weed"
        assert bundle not in anonymous.text and bundle not in c.get("/readyz").text
        keyed = c.get("/v1/model", headers={"x-api-key": ADMIN_KEY}).json()
        assert keyed["bundle"] == bundle and "provenance" in keyed["manifest"]


def test_readyz_reports_a_bundle_that_fails_to_load(tmp_path):
    (tmp_path / "weedseg.json").write_text("{}")
    with TestClient(create_app(Settings(bundle=tmp_path))) as c:
        for _ in range(100):
            r = c.get("/readyz")
            if "failed" in r.json()["detail"]:
                break
            time.sleep(0.02)
        assert r.status_code == 503 and "failed to load" in r.json()["detail"]
        assert str(tmp_path) not in r.text  # no server paths for a client without a key
        assert c.get("/healthz").status_code == 200


class GatedPredictor:
    """A real predictor that waits for a gate before each batch (to hold the queue full)."""

    def __init__(self, inner, gate: threading.Event) -> None:
        self.inner, self.gate, self.started = inner, gate, threading.Event()
        self.classes, self.manifest = inner.classes, inner.manifest
        self.batches: list[int] = []

    def predict_batch(self, images, **options):
        self.started.set()
        self.gate.wait(10)
        self.batches.append(len(images))
        return self.inner.predict_batch(images, **options)


def test_full_queue_is_503_and_health_stays_instant(bundle, image):
    from weedseg.infer import Predictor

    gate = threading.Event()
    predictor = GatedPredictor(Predictor.from_bundle(bundle, providers="cpu"), gate)
    app = create_app(Settings(queue_limit=1, batch_size=4, max_queue_wait_ms=0))
    batcher: MicroBatcher = app.state.batcher
    data = png_bytes(image)

    async def scenario() -> None:
        batcher.start()
        batcher.swap(ModelHandle(predictor, "gated", "gated@1"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:

            def post():
                return c.post("/v1/segment", params={"format": "png"}, content=data)

            running = asyncio.create_task(post())
            while not predictor.started.is_set():
                await asyncio.sleep(0.005)
            queued = asyncio.create_task(post())
            while batcher.depth < 1:
                await asyncio.sleep(0.005)
            refused = await post()
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "overloaded"
            t0 = time.perf_counter()
            assert (await c.get("/healthz")).status_code == 200
            assert time.perf_counter() - t0 < 0.5  # the loop is free while the model runs
            gate.set()
            assert (await running).status_code == 200 and (await queued).status_code == 200
        await batcher.stop()

    asyncio.run(scenario())


def test_in_flight_limit_answers_503_while_it_is_held(bundle, image):
    settings = Settings(bundle=bundle, max_images_in_flight=2, max_decoded_bytes=100_000)
    app = create_app(settings)
    limiter = app.state.limiter
    small = field_image(40, 60, seed=1)  # 7,200 bytes decoded
    large = field_image(200, 200, seed=2)  # 120,000 bytes decoded: over the budget alone
    with TestClient(app) as c:
        wait_ready(c)
        held = [limiter.admit(), limiter.admit()]  # two images in flight: the count is full
        for path in ("/v1/segment", "/v1/segment/lanes"):
            r = post_png(c, small, path)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert r.json()["error"] == "overloaded" and "2 images" in r.json()["detail"]
        held.pop().release()
        held[0].reserve(95_000)  # one place left, but the decoded bytes are nearly all taken
        r = post_png(c, small)
        assert r.status_code == 503 and "MiB" in r.json()["detail"], r.text
        held.pop().release()
        assert post_png(c, large).status_code == 200  # alone, an image may exceed the budget
        assert post_png(c, small, "/v1/segment/lanes").status_code == 200
        assert post_png(c, image, format="overlay").status_code == 200
        for body in (b"broken", png_header_only(2000, 2000)):  # refused uploads give back too
            r = c.post("/v1/segment", content=body, headers={"content-type": "image/png"})
            assert r.status_code in (400, 413)
        assert (limiter.images, limiter.bytes) == (0, 0)  # every answer gave its place back
        assert "weedseg_images_in_flight 0.0" in c.get("/metrics").text


def test_batcher_gathers_concurrent_requests(bundle):
    from weedseg.infer import Predictor

    gate = threading.Event()
    predictor = GatedPredictor(Predictor.from_bundle(bundle, providers="cpu"), gate)
    sizes = []
    batcher = MicroBatcher(
        batch_size=4, max_wait_ms=50, queue_limit=16, on_batch=lambda n, s: sizes.append(n)
    )
    images = [field_image(64, 64, seed=i) for i in range(9)]

    async def scenario():
        batcher.start()
        batcher.swap(ModelHandle(predictor, "gated", "gated@1"))
        first = asyncio.create_task(batcher.submit(images[0]))
        while not predictor.started.is_set():
            await asyncio.sleep(0.005)
        rest = [asyncio.create_task(batcher.submit(im)) for im in images[1:]]
        while batcher.depth < 8:
            await asyncio.sleep(0.005)
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert sizes == [1, 4, 4]
    for im, result in zip(images, results, strict=True):
        assert result.prediction.labels.shape == im.shape[:2]


def test_cors_allows_only_configured_origins(bundle):
    settings = Settings(bundle=bundle, cors_origins=["http://robot.local"])
    with TestClient(create_app(settings)) as c:
        preflight = {"access-control-request-method": "POST"}
        allowed = c.options("/v1/segment", headers={"origin": "http://robot.local", **preflight})
        assert allowed.headers["access-control-allow-origin"] == "http://robot.local"
        other = c.options("/v1/segment", headers={"origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


class PickyPredictor:
    """A real predictor that refuses 77-pixel-wide images (a stand-in for a bad frame)."""

    def __init__(self, inner) -> None:
        self.inner, self.classes, self.manifest = inner, inner.classes, inner.manifest

    def close(self) -> None:
        self.inner.close()

    def predict_batch(self, images, **options):
        if any(im.shape[1] == 77 for im in images):
            raise WeedsegError("77 pixels wide: refused")
        return self.inner.predict_batch(images, **options)


def test_one_bad_image_fails_only_its_own_request(bundle):
    from weedseg.infer import Predictor

    predictor = PickyPredictor(Predictor.from_bundle(bundle, providers="cpu"))
    batcher = MicroBatcher(batch_size=4, max_wait_ms=200, queue_limit=8)
    images = [field_image(64, 64, 1), field_image(64, 77, 2), field_image(64, 96, 3)]

    async def scenario():
        batcher.start()
        batcher.swap(ModelHandle(predictor, "picky", "picky@1"))
        with batcher.arrival():  # "more are coming": the batch stays open for all three
            tasks = [asyncio.create_task(batcher.submit(im)) for im in images]
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return results

    sizes = []
    batcher.on_batch = lambda size, seconds: sizes.append(size)
    good, bad, other = asyncio.run(scenario())
    assert sizes == [3] and isinstance(bad, WeedsegError)
    assert good.prediction.labels.shape == (64, 64) and other.prediction.labels.shape == (64, 96)

    app = create_app(Settings(batch_size=1))
    with TestClient(app) as c:
        app.state.batcher.swap(ModelHandle(predictor, "picky", "picky@1"))
        r = post_png(c, field_image(40, 77, 4))
        assert r.status_code == 422 and r.json()["error"] == "cannot_segment"


def test_plant_vote_flag_changes_the_answer(tmp_path) -> None:
    from bundles import CROP_RGB, SOIL_RGB, WEED_RGB

    plant = np.empty((200, 200, 3), dtype=np.uint8)
    plant[:] = SOIL_RGB
    plant[95:105, 90:110] = CROP_RGB  # a crop plant (0.5% of the frame) with a weedy patch
    plant[97:103, 104:110] = WEED_RGB
    bundle = str(build_colour_bundle(tmp_path / "sharp", smooth=1))  # no smoothing: no soil seam
    with TestClient(create_app(Settings(bundle=bundle))) as c:
        wait_ready(c)
        masks = {}
        for vote in ("false", "true"):
            r = post_png(c, plant, format="png", plant_vote=vote)
            assert r.status_code == 200, r.text
            masks[vote] = np.asarray(Image.open(io.BytesIO(r.content)))
        assert 2 in masks["false"] and set(np.unique(masks["true"])) == {0, 1}
        default = np.asarray(Image.open(io.BytesIO(post_png(c, plant, format="png").content)))
        np.testing.assert_array_equal(default, masks["false"])  # the bundle's default: no vote
        lanes = {  # one lane, sprayed for any weed pixel
            vote: post_png(c, plant, "/v1/segment/lanes", lanes=1, threshold=1e-4, plant_vote=vote)
            for vote in ("false", "true")
        }
        lanes = {vote: r.json() for vote, r in lanes.items()}
        assert lanes["false"]["lanes"][0]["spray"] and not lanes["true"]["lanes"][0]["spray"]
        assert post_png(c, plant, plant_vote="maybe").status_code == 422
