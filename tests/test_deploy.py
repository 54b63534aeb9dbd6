"""The deployment files (deploy/): the compose file's instances are configured with settings
that exist, share one index folder and one Milvus collection, and probe routes the service has.
No container runs here (no Docker daemon); tests/test_milvus_server.py runs the same
deployment's processes: two `rag serve` instances over one Milvus server and one folder."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from api.security import OPEN_PATHS
from rag.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _compose() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


def test_the_compose_instances_share_one_milvus_collection_and_one_index_folder() -> None:
    services = _compose()["services"]
    instances = [name for name, service in services.items() if "rag" in str(service.get("image", ""))]
    assert len(instances) >= 2
    environments = [services[name]["environment"] for name in instances]
    fields = set(Settings.model_fields)
    for environment in environments:
        unknown = [key for key in environment if key.removeprefix("RAG_").lower() not in fields]
        assert not unknown, f"not settings: {unknown}"
        assert environment["RAG_STORE"] == "milvus"
        host = environment["RAG_MILVUS_URI"].split("//")[1].split(":")[0]
        assert host in services  # the Milvus service of this file
    for key in ("RAG_MILVUS_URI", "RAG_MILVUS_COLLECTION", "RAG_INDEX_DIR", "RAG_DOCUMENTS_DIR"):
        assert len({environment[key] for environment in environments}) == 1, key
    volumes = [set(services[name]["volumes"]) for name in instances]
    assert all(v == volumes[0] for v in volumes)  # the same index folder on the same volume
    data = next(v.split(":")[0] for v in volumes[0] if v.endswith(":/data"))
    assert data in _compose()["volumes"]
    for service in ("etcd", "minio"):
        assert service in services["milvus"]["depends_on"]


def test_the_image_probes_a_route_that_answers_without_keys_and_pins_the_cpu_torch(base: str) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    probe = re.search(r"http://127\.0\.0\.1:8000(/[\w/]+)", dockerfile)
    assert probe is not None
    assert probe[1] in OPEN_PATHS  # the image sets keys; its health check has none
    assert httpx.get(base + probe[1]).status_code == 200
    pinned = next(line for line in dockerfile.splitlines() if "pip install" in line and "torch" in line)
    assert "torch==" in pinned and "/whl/cpu" in pinned
