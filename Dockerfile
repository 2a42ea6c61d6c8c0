# weedseg server image: x86-64, CPU, inference + HTTP service only (no PyTorch).
#
#   docker build -t weedseg-serve .
#   docker run --rm -p 8000:8000 -v $PWD/bundles/current:/models/current:ro weedseg-serve
#
# The model bundle (weedseg export) is mounted, not baked in, so a new model needs no rebuild:
# mount a folder of bundles at /models and POST /v1/admin/reload {"bundle": "<name>"}
# with an admin key from WEEDSEG_ADMIN_KEYS. Settings are WEEDSEG_* environment variables
# (service/settings.py).
#
# CUDA variant: deploy/Dockerfile.cuda (nvidia/cuda runtime base, same layout, run with
# `--gpus all`); NVIDIA Jetson: deploy/jetson/Dockerfile. Docker is not available on the
# machines that build weedseg, so these images are linted by tests/test_deploy.py, not built.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=4

WORKDIR /app
COPY pyproject.toml README.md ./
COPY weedseg ./weedseg
COPY export ./export
COPY service ./service
# Core dependencies are the inference runtime; `serve` adds FastAPI, uvicorn and Prometheus.
# Versions are pinned (==) in pyproject.toml, which hadolint cannot see.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[serve]' \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin weedseg \
    && mkdir -p /models \
    && chown weedseg /models

USER 10001
EXPOSE 8000
ENV WEEDSEG_PROVIDERS=cpu
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["weedseg", "serve", "--model", "/models/current", "--host", "0.0.0.0", "--port", "8000"]
