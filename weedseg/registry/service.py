"""Tell a running weedseg service to swap in a registry version (POST /v1/admin/reload)."""

from __future__ import annotations

from pathlib import Path

from weedseg.errors import WeedsegError

RELOAD_TIMEOUT_S = 120.0  # loading and warming a model can take a while on a small device


def reload_service(url: str, api_key: str | None, bundle: Path) -> dict:
    """Ask the service at `url` to load `bundle`; its answer (previous/current versions).

    The bundle path is sent absolute: the server accepts it when it lies under its reload root
    (start it with WEEDSEG_RELOAD_ROOT=<registry>).
    """
    from weedseg.client import ServiceError, WeedsegClient

    try:
        with WeedsegClient(url, api_key=api_key, timeout_s=RELOAD_TIMEOUT_S) as client:
            return client.reload(str(bundle.resolve()))
    except (ServiceError, ValueError) as exc:
        raise WeedsegError(f"service {url} did not switch to {bundle}: {exc}") from exc
