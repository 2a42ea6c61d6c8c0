"""The page at / in headless Chromium: upload a photo, the overlay and the weed count appear.

Chromium is driven through the DevTools protocol over `--remote-debugging-pipe` (file
descriptors 3 and 4, NUL-terminated JSON), so no websocket library or browser download is
needed: only Debian's `chromium` package, installed here when missing and possible.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from bundles import build_colour_bundle, field_image
from uvicorn_server import running_server

from weedseg.bundle import read_manifest, write_manifest
from weedseg.imageio import write_image

KEY = "page-test-key"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


def find_or_install_chromium() -> str:
    """Path of Debian's chromium; installs it with apt when root, else skips with the reason."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and this user cannot apt-get install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=120)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            env=env,
            capture_output=True,
            timeout=300,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"chromium is not installed and apt-get install chromium failed: {exc}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get install chromium did not provide a chromium binary")
    return found


class DevTools:
    """A minimal Chrome DevTools protocol client over the browser's debugging pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # the browser reads commands on fd 3, writes answers on fd 4
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=wire_pipes,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float = 20, **params) -> dict:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def evaluate(self, session: str, expression: str):
        result = self.send("Runtime.evaluate", session, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, timeout: float = 40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(session, expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"page never satisfied: {expression}")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


MARKUP_NAME = '<b>soil</b><img src=x onerror="document.title=1">'
OVERLAY_STATS = """(() => {
  const c = document.getElementById('overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let weed = 0, crop = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 180 && d[i + 1] < 60) weed++;
    if (d[i + 1] > 180 && d[i] < 60) crop++;
  }
  return JSON.stringify({width: c.width, height: c.height, weed, crop,
    weeds: document.getElementById('weeds').textContent,
    rows: document.querySelectorAll('#fractions tr').length,
    first_class: document.querySelector('#fractions td').textContent,
    markup: document.querySelectorAll('#fractions img, #fractions b').length,
    error: document.getElementById('error').textContent});
})()"""


def test_page_uploads_a_photo_and_shows_the_overlay(tmp_path):
    chromium = find_or_install_chromium()
    bundle = build_colour_bundle(tmp_path / "bundle")
    manifest = read_manifest(bundle)  # a class name with markup must show as text
    manifest.classes[0].name = MARKUP_NAME
    write_manifest(bundle, manifest, ["model.onnx"])
    photo = tmp_path / "field.png"
    write_image(photo, field_image(120, 160, seed=11))
    env = {"WEEDSEG_BUNDLE": str(bundle), "WEEDSEG_API_KEYS": KEY}
    with running_server(env) as (url, _):
        browser = DevTools(chromium, tmp_path / "profile")
        try:
            target = browser.send("Target.createTarget", url="about:blank")["targetId"]
            session = browser.send("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            browser.send("Page.enable", session)
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=1100,
                height=800,
                deviceScaleFactor=1,
                mobile=False,
            )
            browser.send("Page.navigate", session, url=f"{url}/")
            browser.wait_for(session, "!document.getElementById('key-row').hidden")
            browser.evaluate(
                session,
                f"(() => {{ const k = document.getElementById('key'); k.value = '{KEY}';"
                " k.dispatchEvent(new Event('change')); return true; })()",
            )
            browser.wait_for(
                session,
                "document.getElementById('model').textContent"
                ".startsWith('Model: colour-rule-test')",
            )
            document = browser.send("DOM.getDocument", session)["root"]["nodeId"]
            node = browser.send("DOM.querySelector", session, nodeId=document, selector="#file")
            browser.send(
                "DOM.setFileInputFiles", session, nodeId=node["nodeId"], files=[str(photo)]
            )
            browser.wait_for(
                session,
                "document.getElementById('overlay').dataset.ready === '1'"
                " || document.getElementById('error').textContent",
            )
            stats = json.loads(browser.evaluate(session, OVERLAY_STATS))
            shot = browser.send("Page.captureScreenshot", session, format="png")["data"]
            (tmp_path / "page.png").write_bytes(base64.b64decode(shot))
        finally:
            browser.close()
    assert stats["error"] == ""
    assert (stats["width"], stats["height"]) == (160, 120)
    assert stats["weed"] > 20 and stats["crop"] > 20  # red and green blended over the photo
    assert stats["weeds"].endswith("found") and int(stats["weeds"].split()[0]) > 0
    assert stats["rows"] == 3
    assert stats["first_class"] == MARKUP_NAME and stats["markup"] == 0
    assert (tmp_path / "page.png").stat().st_size > 1000
    print(f"screenshot: {tmp_path / 'page.png'}")
