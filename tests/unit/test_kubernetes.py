"""deploy/kubernetes: valid against Kubernetes' own schemas (offline, kubernetes-validate),
and consistent with what the worker and its image need: the environment the worker refuses to
start without, the probes on the port it serves them on, the image's user, a grace period
above the worker's drain, and KEDA's scaler pointed at the step's own queue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from runtime.worker.settings import Settings
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
"""The oldest still found in managed clusters, and the newest the validator knows."""
KEDA = "keda.sh/v1alpha1"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def objects() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in documents(path):
            found[doc["kind"]] = doc
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_is_valid_against_the_schemas_of(version):
    checked = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in documents(path):
            if doc["apiVersion"].startswith(("keda.sh/", "kustomize.config.k8s.io/")):
                continue  # custom resources: checked field by field below
            kubernetes_validate.validate(doc, version, strict=True)
            checked.append(doc["kind"])
    assert sorted(checked) == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret"]


def test_the_validator_would_catch_a_mistake():
    deployment = objects()["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["paht"] = "/livez"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_file_but_the_optional_keda_one():
    listed = set(documents(DEPLOY / "kustomization.yaml")[0]["resources"])
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"keda-scaledobject.yaml"}


def step_environment() -> dict[str, str]:
    found = objects()
    return {**found["ConfigMap"]["data"], **found["Secret"]["stringData"]}


def test_the_worker_starts_with_the_environment_of_the_configmap_and_the_secret():
    env = step_environment()
    settings = Settings.from_env(env)  # raises, naming what is missing or malformed
    assert settings.function == "httpRequest"
    deployment = objects()["Deployment"]
    sources = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    names = {s.get("configMapRef", s.get("secretRef"))["name"] for s in sources}
    assert names == {objects()["ConfigMap"]["metadata"]["name"]}


SECRET_VARIABLES = {
    "ELASTICIO_AMQP_URI", "ELASTICIO_API_KEY", "ELASTICIO_MESSAGE_CRYPTO_PASSWORD",
    "ELASTICIO_MESSAGE_CRYPTO_IV", "ELASTICIO_CREDENTIAL_LOCK_URL",
}  # fmt: skip
"""What the worker keeps out of its logs (runtime/worker/settings.py pins them as secrets)."""


def test_secrets_sit_in_the_secret_and_none_in_the_configmap():
    found = objects()
    config, secret = found["ConfigMap"]["data"], found["Secret"]["stringData"]
    assert secret.keys() >= SECRET_VARIABLES
    assert SECRET_VARIABLES.isdisjoint(config)
    assert not any("@" in v for v in config.values())  # no user:password@host


def test_the_pod_runs_as_the_image_user_on_a_read_only_root_with_probes_on_the_metrics_port():
    spec = objects()["Deployment"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    uid = re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid is not None and spec["securityContext"]["runAsUser"] == int(uid.group(1))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}

    port = int(step_environment()["ELASTICIO_METRICS_PORT"])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and named[get["port"]] == port
    assert container["resources"]["limits"]["memory"]
    assert container["resources"]["requests"]["cpu"]


def test_the_grace_period_outlasts_the_workers_drain():
    spec = objects()["Deployment"]["spec"]["template"]["spec"]
    drain = float(step_environment()["ELASTICIO_SHUTDOWN_TIMEOUT"])
    assert spec["terminationGracePeriodSeconds"] > drain + 5  # the broker's goodbyes


def test_the_disruption_budget_covers_the_deployments_pods():
    found = objects()
    selector = found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert (
        found["Deployment"]["spec"]["replicas"]
        > found["PodDisruptionBudget"]["spec"]["maxUnavailable"]
    )


def test_keda_scales_the_deployment_on_the_steps_own_queue():
    keda = {d["kind"]: d for d in documents(DEPLOY / "keda-scaledobject.yaml")}
    assert {d["apiVersion"] for d in keda.values()} == {KEDA}
    scaled = keda["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == objects()["Deployment"]["metadata"]["name"]
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == step_environment()["ELASTICIO_LISTEN_MESSAGES_ON"]
    assert trigger["metadata"]["mode"] in {"QueueLength", "MessageRate"}
    assert float(trigger["metadata"]["value"]) > 0
    assert trigger["authenticationRef"]["name"] == keda["TriggerAuthentication"]["metadata"]["name"]
    [ref] = keda["TriggerAuthentication"]["spec"]["secretTargetRef"]
    assert ref["parameter"] == "host"
    assert ref["name"] == objects()["Secret"]["metadata"]["name"]
    assert ref["key"] in objects()["Secret"]["stringData"]
    grace = objects()["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert scaled["cooldownPeriod"] >= grace
