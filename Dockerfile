# weedseg server image (x86-64, CPU). Inference only: no PyTorch.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY weedseg ./weedseg
COPY export ./export
COPY service ./service
RUN pip install --no-cache-dir '.'
CMD ["weedseg", "--help"]
