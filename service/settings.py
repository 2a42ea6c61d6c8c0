"""Service settings: one pydantic-settings object read from `WEEDSEG_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A list setting from the environment: comma-separated (`WEEDSEG_API_KEYS=key1,key2`).
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """All server options; tests pass `Settings(...)`, production reads the environment."""

    model_config = SettingsConfigDict(env_prefix="WEEDSEG_", extra="ignore")

    bundle: Path | None = Field(None, description="Model bundle folder served at startup")
    reload_root: Path | None = Field(
        None,
        description="Folder that /v1/admin/reload may load bundles from (default: the "
        "bundle's parent folder)",
    )
    providers: str = Field("auto", description="ONNX Runtime providers: auto, cpu, cuda, tensorrt")
    precision: str = Field("fp32", description="fp32 or int8 (when the bundle has an INT8 model)")
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest request body")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest image (width x height)")
    api_keys: CommaList = Field(
        default_factory=list, description="Robot keys accepted in X-API-Key; empty = open API"
    )
    admin_keys: CommaList = Field(
        default_factory=list,
        description="Keys that may also reload models; empty = admin routes disabled",
    )
    batch_size: int = Field(4, ge=1, le=64, description="Most images run together")
    max_queue_wait_ms: float = Field(
        5.0, ge=0, description="Longest a request waits for others to fill a batch"
    )
    queue_limit: int = Field(32, ge=1, description="Queued requests before answering 503")
    max_images_in_flight: int = Field(
        16, ge=1, description="Images being read, decoded, queued or run at once before 503"
    )
    max_decoded_bytes: int = Field(
        160 * 1024 * 1024,
        gt=0,
        description="Decoded size (width x height x channels, from the header) of the images in "
        "flight before 503; one image is always admitted when none is in flight",
    )
    decode_threads: int = Field(2, ge=1, le=64, description="Threads that decode uploads")
    cors_origins: CommaList = Field(default_factory=list, description="Allowed browser origins")
    min_weed_area_px: int = Field(
        50, ge=1, description="Smallest connected weed region reported as an instance"
    )
    warmup: bool = Field(True, description="Run one dummy batch before reporting ready")

    @field_validator("api_keys", "admin_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def bundle_root(self) -> Path | None:
        """Where reload requests may pick bundles from."""
        if self.reload_root is not None:
            return self.reload_root
        return self.bundle.parent if self.bundle is not None else None
