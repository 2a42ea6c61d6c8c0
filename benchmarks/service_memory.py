"""Peak memory of `weedseg serve` under a burst of large uploads (issue 20's probe).

`weedseg serve` runs with its default settings in its own process on 127.0.0.1; `--concurrency`
clients post the same all-black `--size` x `--size` PNG at once (about 100 KB on the wire for
6000 x 6000, under the default 40-Mpx limit), `--rounds` times each, and the server's peak
resident memory (the kernel's VmHWM) and every status code are reported. The model defaults to
the tests' colour-rule bundle (a tiny ONNX graph, tile 512): the probe measures what the
service holds per request (bodies, decoded images, class maps, answers), not a network's
activations. `--source DIR` runs the server from another checkout (e.g. `git archive` of an
older commit) to compare before and after a change.

    .venv/bin/python benchmarks/service_memory.py [--write]
    .venv/bin/python benchmarks/service_memory.py --source /tmp/weedseg-before

`--write` replaces this script's section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from results_md import replace_section

from weedseg.imageio import encode_image

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS = 400  # loopback only, and bounded: this is a probe, not a load generator


def colour_bundle(root: Path) -> Path:
    """The tests' colour-rule bundle with a 512-pixel tile (uint8 NHWC input, like exports)."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from bundles import build_colour_bundle

    return build_colour_bundle(root, layout="NHWC", tile=512, overlap=64)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak so far) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def start_server(
    bundle: Path, port: int, source: Path | None, bare_uvicorn: bool
) -> subprocess.Popen:
    """`weedseg serve` (or uvicorn on the same app factory) on 127.0.0.1 with default settings
    (no WEEDSEG_* from this shell but the bundle)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEEDSEG_")}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    if bare_uvicorn:
        env["WEEDSEG_BUNDLE"] = str(bundle)
        command = [sys.executable, "-m", "uvicorn", "weedseg.service.app:create_app", "--factory"]
    else:
        command = [sys.executable, "-m", "weedseg", "serve", "--model", str(bundle)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(command, env=env, cwd=source or REPO_ROOT)


def wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server was not ready within 120 s")


def burst(url: str, body: bytes, concurrency: int, rounds: int) -> dict:
    """`concurrency` clients post `body` `rounds` times each, all starting together."""
    statuses: Counter = Counter()
    seconds: list[float] = []
    start = threading.Barrier(concurrency)
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=900) as c:
            start.wait()
            for _ in range(rounds):
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/segment", content=body, headers={"content-type": "image/png"})
                    status = str(r.status_code)
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
                    seconds.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"statuses": dict(sorted(statuses.items())), "seconds": seconds}


def probe(args: argparse.Namespace, bundle: Path) -> dict:
    image = np.zeros((args.size, args.size, 3), np.uint8)  # [H, W, 3] all black
    body = encode_image(image, ".png")
    url = f"http://127.0.0.1:{args.port}"
    server = start_server(bundle, args.port, args.source, args.uvicorn)
    try:
        wait_ready(url, server)
        idle = memory_kb(server.pid)["VmRSS"]
        torch_loaded = "/torch/lib/" in Path(f"/proc/{server.pid}/maps").read_text()
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(memory_kb(server.pid)["VmRSS"])
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        result = burst(url, body, args.concurrency, args.rounds)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        peak = memory_kb(server.pid)["VmHWM"]
        alive = httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(30)
    return {
        "png_kb": len(body) / 1024,
        "idle_rss_mb": idle / 1024,
        "peak_rss_mb": peak / 1024,
        "peak_sampled_rss_mb": max(samples, default=0) / 1024,
        "wall_s": wall,
        "slowest_s": max(result["seconds"]),
        "statuses": result["statuses"],
        "alive_after": alive,
        "torch_loaded": torch_loaded,
    }


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def shown_arguments(argv: list[str]) -> str:
    return " ".join(a for a in argv if a != "--write")


def summary(results: dict) -> str:
    r = results
    statuses = ", ".join(f"{code}: {n}" for code, n in r["statuses"].items())
    return "\n".join(
        [
            f"Command: `python benchmarks/service_memory.py {r['arguments']}`  ",
            f"Machine: {r['machine']}; date {r['date']}; server {r['server']} with default "
            f"settings, code from {r['code']}; bundle {r['bundle']}.",
            "",
            f"- {r['concurrency']} clients x {r['rounds']} round(s) posting a {r['size']}x"
            f"{r['size']} all-black PNG ({r['png_kb']:.0f} KB) at once.",
            f"- Torch imported by the server process: {'yes' if r['torch_loaded'] else 'no'}.",
            f"- Server RSS: {r['idle_rss_mb']:.0f} MB when ready, peak "
            f"**{r['peak_rss_mb']:.0f} MB** (VmHWM; sampled every 20 ms: "
            f"{r['peak_sampled_rss_mb']:.0f} MB).",
            f"- Answers: {statuses}; all over in {r['wall_s']:.1f} s (slowest "
            f"{r['slowest_s']:.1f} s); server alive after: {'yes' if r['alive_after'] else 'NO'}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="bundle folder (default: the tests' colour-rule bundle)")
    parser.add_argument("--size", type=int, default=6000, help="side of the square PNG")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=1, help="requests per client")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--source", type=Path, help="run the server from this source tree")
    parser.add_argument(
        "--uvicorn",
        action="store_true",
        help="start `uvicorn service.app:create_app` instead of `weedseg serve` (the same app "
        "without what the CLI imports)",
    )
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    if args.concurrency * args.rounds > MAX_REQUESTS:
        parser.error(f"at most {MAX_REQUESTS} requests (concurrency x rounds)")

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(args.model) if args.model else colour_bundle(Path(tmp) / "bundle")
        figures = probe(args, bundle)
    results = {
        "arguments": shown_arguments(sys.argv[1:]),
        "machine": f"{os.cpu_count()}-core {platform.machine()} {cpu_name()}, "
        "no GPU, shared with others",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": str(args.source) if args.source else "this checkout",
        "server": "`uvicorn service.app:create_app`" if args.uvicorn else "`weedseg serve`",
        "bundle": args.model or "the tests' colour-rule bundle (tile 512)",
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "size": args.size,
        **figures,
    }
    text = summary(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.write:
        title = "## Service memory under large uploads (`benchmarks/service_memory.py`)"
        replace_section("service_memory", f"{title}\n\n{text}")


if __name__ == "__main__":
    main()
