"""The deployment files parse, and every variable they set is one the app (or Flower) reads."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SOURCES = ["somaagent", "conversations", "tools", "memory", "celeryconfig.py"]
ENV_READ = re.compile(
    r"""(?:\benv(?:_int|_float|_bool)?\(|os\.environ\.get\(|os\.getenv\(|os\.environ\[)\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# Read by programs other than ours in the same image.
THIRD_PARTY = {"FLOWER_BASIC_AUTH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR"}
QUEUES = {"conversation", "tools", "memory", "default"}


def variables_the_app_reads() -> set[str]:
    names: set[str] = set()
    for source in APP_SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else path.rglob("*.py")
        for file in files:
            names.update(ENV_READ.findall(file.read_text()))
    return names


def test_the_scan_finds_the_known_variables() -> None:
    read = variables_the_app_reads()
    assert {"DATABASE_URL", "REDIS_URL", "SOMA_FERNET_KEYS", "SOMA_DEPLOYMENT_MODE"} <= read


def _compose_app_services() -> dict[str, dict]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {name: svc for name, svc in doc["services"].items() if svc.get("image") == "somaagent:latest"}


def test_compose_sets_only_variables_the_app_reads() -> None:
    services = _compose_app_services()
    assert {"web", "beat", "flower", "migrate"} <= set(services)
    allowed = variables_the_app_reads() | THIRD_PARTY
    for name, svc in services.items():
        unknown = set(svc.get("environment") or {}) - allowed
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


def test_compose_has_a_worker_per_queue_and_one_beat() -> None:
    services = _compose_app_services()
    queues = set()
    for svc in services.values():
        command = svc.get("command") or []
        if "worker" in command:
            queues.add(command[command.index("-Q") + 1])
    assert queues == QUEUES
    assert sum("beat" in (svc.get("command") or []) for svc in services.values()) == 1


def _k8s_docs() -> list[dict]:
    docs: list[dict] = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_k8s_manifests_parse_and_set_only_known_variables() -> None:
    docs = _k8s_docs()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Job"} <= kinds
    allowed = variables_the_app_reads() | THIRD_PARTY
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Secret"):
            data = doc.get("data") or doc.get("stringData") or {}
            unknown = set(data) - allowed
            assert not unknown, f"{doc['metadata']['name']} sets variables nothing reads: {unknown}"
    beat = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    worker_queues = set()
    for d in docs:
        if d["kind"] == "Deployment":
            command = d["spec"]["template"]["spec"]["containers"][0]["command"]
            if "worker" in command:
                worker_queues.add(command[command.index("-Q") + 1])
    assert worker_queues == QUEUES


def test_dockerfile_sets_only_known_variables() -> None:
    text = (ROOT / "Dockerfile").read_text()
    env_block = re.findall(r"^ENV ((?:.*\\\n)*.*)$", text, re.M)
    names = set(re.findall(r"([A-Z][A-Z0-9_]+)=", " ".join(env_block)))
    assert names and names <= variables_the_app_reads() | THIRD_PARTY


# --- the web's port: PORT everywhere, 8000 unless set -----------------------------------------


def _run_web_command(argv: list[str], tmp_path: Path, env: dict[str, str]) -> str:
    """Run a web command with a stand-in ``uvicorn`` that prints its arguments."""
    fake = tmp_path / "uvicorn"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    done = subprocess.run(
        argv, env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _port_argument(output: str) -> str:
    words = output.split()
    return words[words.index("--port") + 1]


def test_the_docker_image_serves_on_port_and_8000_by_default(tmp_path: Path) -> None:
    cmd = json.loads(re.search(r"^CMD (.*)$", (ROOT / "Dockerfile").read_text(), re.M).group(1))  # type: ignore[union-attr]
    assert _port_argument(_run_web_command(cmd, tmp_path, {})) == "8000"
    assert _port_argument(_run_web_command(cmd, tmp_path, {"PORT": "9123"})) == "9123"


def test_the_procfile_web_serves_on_port_and_8000_by_default(tmp_path: Path) -> None:
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    command = line.split(":", 1)[1].strip()
    assert _port_argument(_run_web_command(["sh", "-c", command], tmp_path, {})) == "8000"
    assert _port_argument(_run_web_command(["sh", "-c", command], tmp_path, {"PORT": "9123"})) == "9123"


def test_compose_publishes_the_web_on_port() -> None:
    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]
    assert web["command"][web["command"].index("--port") + 1] == "${PORT:-8000}"
    assert web["ports"] == ["${PORT:-8000}:${PORT:-8000}"]


def test_k8s_web_listens_on_the_config_maps_port_and_probes_it() -> None:
    docs = _k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    web = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][container["command"].index("--port") + 1] == "$(PORT)"
    assert {"configMapRef": {"name": config_name(docs)}} in container["envFrom"]
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": int(config["PORT"])}
    assert web["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == config["PORT"]
    assert (
        container["livenessProbe"]["httpGet"]["port"]
        == container["readinessProbe"]["httpGet"]["port"]
        == "http"
    )
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "web")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def config_name(docs: list[dict]) -> str:
    return next(d for d in docs if d["kind"] == "ConfigMap")["metadata"]["name"]
