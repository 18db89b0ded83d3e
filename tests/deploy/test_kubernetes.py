"""The Kubernetes manifests (deploy/kubernetes, a Kustomize base): valid against Kubernetes'
own schemas (kubernetes-validate, which ships them: no network), clean under checkov's
security policies (every skipped policy says why in the manifest), and consistent with the
service: its probes, its memory settings, its drain time, its secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_versions

from service.cli import DRAIN_SECONDS
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
#: The oldest Kubernetes these manifests are for (autoscaling/v2 and policy/v1 are GA there)
#: and the newest whose schemas kubernetes-validate ships.
VERSIONS = ["1.30.0", kubernetes_versions.latest_version()]
#: Memory of a server process of its own, before its cache and requests (Python, NumPy, the
#: app: ~150 MiB resident here), with a margin.
SERVER_OWN_BYTES = 192 << 20

JSON = Any


def kustomization() -> JSON:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def manifests() -> dict[str, JSON]:
    """The resources the Kustomize base lists, by kind."""
    documents = {}
    for name in kustomization()["resources"]:
        for document in yaml.safe_load_all((BASE / name).read_text()):
            documents[document["kind"]] = document
    return documents


def deployment() -> JSON:
    return manifests()["Deployment"]


def container() -> JSON:
    [only] = deployment()["spec"]["template"]["spec"]["containers"]
    return only


def env() -> dict[str, JSON]:
    return {variable["name"]: variable for variable in container()["env"]}


def quantity(text: str) -> int:
    """Bytes of a Kubernetes memory quantity such as ``1536Mi`` or ``1Gi``."""
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", text)
    assert match, text
    return int(match[1]) << {"Ki": 10, "Mi": 20, "Gi": 30, None: 0}[match[2]]


def test_the_base_lists_every_manifest_in_its_folder() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    kinds = set()
    for name in kustomization()["resources"]:
        for document in yaml.safe_load_all((BASE / name).read_text()):
            # strict: a misspelt or misplaced field is an error, not silently dropped.
            kubernetes_validate.validate(document, version, strict=True)
            kinds.add(document["kind"])
    assert kinds >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }


def test_the_probes_are_the_services_health_routes() -> None:
    c = container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # /readyz takes up to its pool's 5 s to answer 503: the probe waits longer than that.
    assert c["readinessProbe"]["timeoutSeconds"] > 5
    [port] = c["ports"]
    assert port["containerPort"] == int(env()["BACKPROP_PORT"]["value"])
    assert env()["BACKPROP_HOST"]["value"] == "0.0.0.0"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] == port["name"]


def test_replicas_run_as_non_root_on_a_read_only_root_with_the_mounts_the_service_writes() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    c = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # The temporary folder (prometheus' multiprocess files, Python's tempfile) and shared
    # memory, where the worker processes get parameters, bodies and results as files.
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert "/dev/shm" in (ROOT / "service" / "workers.py").read_text()


def test_termination_waits_longer_than_the_drain() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    pause = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + DRAIN_SECONDS


def test_the_registry_url_and_the_api_keys_come_from_the_generated_secret() -> None:
    [secret] = kustomization()["secretGenerator"]
    files = dict(entry.split("=", 1) for entry in secret["files"])
    assert set(files) == {"registry-url", "api-keys"}
    for path in files.values():  # the secrets themselves are never committed
        assert path.startswith("secrets/")
    ignored = (BASE / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignored

    variables = env()
    assert variables["BACKPROP_REGISTRY"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["name"],
        "key": "registry-url",
    }
    assert "BACKPROP_API_KEYS" not in variables
    keys_file = Path(variables["BACKPROP_API_KEYS_FILE"]["value"])
    pod = deployment()["spec"]["template"]["spec"]
    [mount] = [m for m in container()["volumeMounts"] if m["mountPath"] == str(keys_file.parent)]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == secret["name"]
    assert volume["secret"]["items"] == [{"key": "api-keys", "path": keys_file.name}]
    # Readable by the service's group (fsGroup), by no one else.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert volume["secret"]["defaultMode"] == 0o440


def test_the_memory_limit_holds_the_server_its_worker_processes_and_shared_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, variable in env().items():
        if "value" in variable:
            monkeypatch.setenv(name, variable["value"])
    settings = Settings()
    # Sized here, not from the node's CPUs (os.cpu_count() in a pod sees them all).
    assert {"BACKPROP_COMPUTE_PROCESSES", "BACKPROP_COMPUTE_THREADS"} <= set(env())
    server = (
        SERVER_OWN_BYTES
        + settings.cache_bytes
        + 2 * settings.max_body_bytes
        + settings.max_dataset_bytes
    )
    # service/workers.py: each worker's address space above its start.
    worker = 2 * settings.max_request_memory_bytes + settings.max_answer_bytes
    pod = deployment()["spec"]["template"]["spec"]
    [shm] = [v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"]
    shared = quantity(shm["emptyDir"]["sizeLimit"])
    resources = container()["resources"]
    limit = quantity(resources["limits"]["memory"])
    needed = server + settings.compute_processes * worker + shared
    assert needed <= limit, f"{needed >> 20} MiB needed, limit {limit >> 20} MiB"
    assert limit - needed <= 512 << 20, "the limit is far above what the settings allow"
    assert quantity(resources["requests"]["memory"]) >= server
    assert int(resources["requests"]["cpu"]) <= int(resources["limits"]["cpu"])
    assert settings.compute_threads == int(resources["limits"]["cpu"])


def test_the_service_budget_and_autoscaler_select_the_deployments_pods() -> None:
    documents = manifests()
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = documents["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service.get("sessionAffinity", "None") == "None"  # no sticky sessions needed
    [port] = service["ports"]
    assert port["targetPort"] == container()["ports"][0]["name"]
    budget = documents["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    scaler = documents["HorizontalPodAutoscaler"]["spec"]
    assert scaler["scaleTargetRef"]["name"] == deployment()["metadata"]["name"]
    assert scaler["minReplicas"] > budget["maxUnavailable"]
    assert "replicas" not in deployment()["spec"], "the autoscaler owns the replica count"


def checkov() -> str:
    """checkov, which lives in a virtual environment of its own (its pins would downgrade the
    project's packages): $CHECKOV, .venv-checkov/bin/checkov (made by .ci/run), or PATH's."""
    for candidate in (
        os.environ.get("CHECKOV"),
        str(ROOT / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    reason = (
        "checkov is not installed: python3 -m venv .venv-checkov && "
        ".venv-checkov/bin/pip install 'checkov>=3.2' (.ci/run does)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_checkov_finds_no_failed_policy_and_every_skip_says_why() -> None:
    # --skip-download: the policies that ship with checkov, no network.
    done = subprocess.run(
        [
            checkov(),
            "--directory",
            str(BASE),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert not failed, failed
    assert len(results["passed_checks"]) >= 50, report["summary"]
    for check in results["skipped_checks"]:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) > 20, f"{check['check_id']} skipped without a reason"
