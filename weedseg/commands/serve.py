"""`weedseg serve`: run the HTTP service (FastAPI + uvicorn) on a model bundle."""

from __future__ import annotations

import argparse
import os

HELP = "serve a model bundle over HTTP for field robots (segment, lanes, metrics, a web page)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model bundle folder (weedseg export)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument("--workers", type=int, default=1, help="server processes (one model each)")
    parser.add_argument("--providers", help="ONNX Runtime providers: auto, cpu, cuda, tensorrt")
    parser.add_argument("--batch-size", type=int, help="images per inference batch")
    parser.add_argument("--max-wait-ms", type=float, help="longest wait to fill a batch")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from weedseg.bundle import load_bundle
    from weedseg.service.settings import Settings

    load_bundle(args.model)  # a missing or damaged bundle is a one-line error, not a traceback
    overrides = {
        "WEEDSEG_BUNDLE": args.model,
        "WEEDSEG_PROVIDERS": args.providers,
        "WEEDSEG_BATCH_SIZE": args.batch_size,
        "WEEDSEG_MAX_QUEUE_WAIT_MS": args.max_wait_ms,
    }
    # Settings travel through the environment so every worker process builds the same app.
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    settings = Settings()
    shown = settings.model_dump(exclude={"api_keys", "admin_keys"})
    print("serve:", ", ".join(f"{k}={v}" for k, v in shown.items()))
    print(f"API keys: {len(settings.api_keys) or 'none (open API)'}")
    print(f"Admin keys: {len(settings.admin_keys) or 'none (model reload is off)'}")
    print(f"Page: http://{args.host}:{args.port}/  API docs: http://{args.host}:{args.port}/docs")
    uvicorn.run(
        "weedseg.service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,  # robots pause between rows: keep their connection meanwhile
    )
    return 0
