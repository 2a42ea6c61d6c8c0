"""weedseg HTTP service for field robots: FastAPI app, micro-batching, metrics; torch-free."""

from weedseg.service.app import create_app
from weedseg.service.settings import Settings

__all__ = ["Settings", "create_app"]
