"""deploy/k8s: structure, cross-references between the objects, and Bytewax's own reading of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_helpers import ALERTS, K8S, REPO, k8s_objects, yaml_docs

OBJECTS = k8s_objects()
STS = OBJECTS["StatefulSet/session-promotions"]
POD = STS["spec"]["template"]["spec"]
MAIN = next(c for c in POD["containers"] if c["name"] == "dataflow")
HOSTFILE_INIT = next(c for c in POD["initContainers"] if c["name"] == "hostfile")
# Kinds that need the Prometheus Operator's CRDs; no public schema to validate them against.
CRD_KINDS = {"PodMonitor", "PrometheusRule"}


def env_value(container: dict[str, Any], name: str) -> Any:
    for var in container.get("env", []):
        if var["name"] == name:
            return var.get("value", var.get("valueFrom"))
    raise AssertionError(f"{container['name']} does not set {name}")


def mount_path(container: dict[str, Any], volume: str) -> str:
    return next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume)


def port(container: dict[str, Any], name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


def test_manifests_are_namespace_agnostic() -> None:
    for key, obj in OBJECTS.items():
        assert "namespace" not in obj.get("metadata", {}), f"{key} pins a namespace"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    examples = {"secret.example.yaml", "kustomization.yaml"}
    expected = sorted(p.name for p in K8S.glob("*.yaml") if p.name not in examples)
    assert sorted(kustomization["resources"]) == expected


def test_core_objects_pass_the_kubernetes_schemas(pip_tools) -> None:
    """Strict JSON-schema validation (unknown fields fail), oldest supported and newest API."""
    exe, env = pip_tools("kubernetes-validate==1.37.0", "kubernetes-validate")
    files = [str(p) for p in sorted(K8S.glob("*.yaml"))
             if p.name != "kustomization.yaml"
             and not any(doc["kind"] in CRD_KINDS for doc in yaml_docs(p))]
    for version in ("1.29.0", "1.37.0"):
        done = subprocess.run([str(exe), "--strict", "--no-warn", "-k", version, *files],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr


def test_schema_validation_catches_a_typo(pip_tools, tmp_path: Path) -> None:
    """Negative control: the validator above really rejects a misspelt field."""
    exe, env = pip_tools("kubernetes-validate==1.37.0", "kubernetes-validate")
    broken = tmp_path / "sts.yaml"
    broken.write_text((K8S / "statefulset.yaml").read_text().replace("serviceName:", "servicename:"))
    done = subprocess.run([str(exe), "--strict", str(broken)], capture_output=True, text=True, env=env)
    assert done.returncode != 0


def test_statefulset_forms_a_bytewax_cluster() -> None:
    spec = STS["spec"]
    headless = OBJECTS[f"Service/{spec['serviceName']}"]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True  # peers resolve before Ready
    assert spec["podManagementPolicy"] == "Parallel"  # all processes start together
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()

    # Process id from the pod ordinal.
    assert env_value(MAIN, "BYTEWAX_STATEFULSET_NAME") == STS["metadata"]["name"]
    assert env_value(MAIN, "BYTEWAX_POD_NAME") == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Addresses: the init container writes the file the main container reads.
    hostfile = Path(env_value(MAIN, "BYTEWAX_HOSTFILE_PATH"))
    assert mount_path(MAIN, "hostfile") == mount_path(HOSTFILE_INIT, "hostfile") == str(hostfile.parent)
    assert env_value(HOSTFILE_INIT, "PROCESSES") == str(spec["replicas"])
    assert env_value(HOSTFILE_INIT, "STATEFULSET") == STS["metadata"]["name"]
    assert env_value(HOSTFILE_INIT, "HEADLESS_SERVICE") == spec["serviceName"]
    assert env_value(HOSTFILE_INIT, "CLUSTER_PORT") == str(port(MAIN, "cluster"))
    assert headless["ports"][0]["targetPort"] == "cluster"


def run_hostfile_init(tmp_path: Path, namespace: str) -> Path:
    """Run the init container's script as written, with its mount redirected to tmp_path."""
    command = HOSTFILE_INIT["command"]
    mount = mount_path(HOSTFILE_INIT, "hostfile")
    script = command[-1].replace(mount, str(tmp_path))
    env = {"PATH": "/usr/bin:/bin", "POD_NAMESPACE": namespace}
    env.update({v["name"]: v["value"] for v in HOSTFILE_INIT["env"] if "value" in v})
    subprocess.run([*command[:-1], script], env=env, check=True, capture_output=True)
    return tmp_path / Path(env_value(MAIN, "BYTEWAX_HOSTFILE_PATH")).name


@pytest.mark.parametrize("ordinal", [0, 1])
def test_bytewax_derives_process_id_and_addresses(tmp_path: Path, ordinal: int) -> None:
    """bytewax.run's own argument parsing, fed the pod's environment, finds its place."""
    hostfile = run_hostfile_init(tmp_path, namespace="shop")
    name = STS["metadata"]["name"]
    env = {
        "PATH": "/usr/bin:/bin",
        "BYTEWAX_POD_NAME": f"{name}-{ordinal}",
        "BYTEWAX_STATEFULSET_NAME": env_value(MAIN, "BYTEWAX_STATEFULSET_NAME"),
        "BYTEWAX_HOSTFILE_PATH": str(hostfile),
    }
    code = ("import sys, bytewax.run as r; sys.argv = ['run', 'dataflows.promotions']; "
            "a = r._parse_args(); print(a.process_id); print(a.addresses)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    process_id, addresses = done.stdout.split()
    assert int(process_id) == ordinal
    service = STS["spec"]["serviceName"]
    assert addresses.split(";") == [
        f"{name}-{i}.{service}.shop.svc:{port(MAIN, 'cluster')}" for i in range(STS["spec"]["replicas"])
    ]


def test_recovery_volume_and_settings() -> None:
    claim = STS["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    assert mount_path(MAIN, claim["metadata"]["name"]) == env_value(MAIN, "BYTEWAX_RECOVERY_DIRECTORY")
    assert int(env_value(MAIN, "BYTEWAX_SNAPSHOT_INTERVAL")) > 0
    assert int(env_value(MAIN, "BYTEWAX_RECOVERY_BACKUP_INTERVAL")) >= 0
    settings = OBJECTS["ConfigMap/session-promotions-settings"]["data"]
    assert int(settings["PROMO_RECOVERY_PARTITIONS"]) >= STS["spec"]["replicas"]
    assert STS["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"


def test_api_port_probes_and_metrics_objects() -> None:
    assert env_value(MAIN, "BYTEWAX_DATAFLOW_API_ENABLED")
    api = port(MAIN, "api")
    assert api == int(env_value(MAIN, "BYTEWAX_DATAFLOW_API_PORT")) == 3030
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert MAIN[probe]["httpGet"] == {"path": "/metrics", "port": "api"}, probe
    api_cache = env_value(MAIN, "BYTEWAX_DATAFLOW_API_CACHE_PATH")
    assert mount_path(MAIN, "api-cache") == api_cache  # writable under readOnlyRootFilesystem

    pod_labels = STS["spec"]["template"]["metadata"]["labels"]
    metrics_svc = OBJECTS["Service/session-promotions-metrics"]["spec"]
    assert metrics_svc["selector"].items() <= pod_labels.items()
    assert metrics_svc["ports"][0]["targetPort"] == "api"

    monitor = OBJECTS["PodMonitor/session-promotions"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "api" and endpoint["path"] == "/metrics"
    # The alerts select job="session-promotions": the PodMonitor must produce that job label.
    assert pod_labels[monitor["spec"]["jobLabel"]] == "session-promotions"


def test_prometheusrule_carries_the_alerts_file() -> None:
    rule = OBJECTS["PrometheusRule/session-promotions"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"], (
        "deploy/k8s/prometheusrule.yaml is out of date: run python deploy/k8s/sync_prometheusrule.py"
    )


def test_rules_configmap_is_the_default_rules_file() -> None:
    settings = OBJECTS["ConfigMap/session-promotions-settings"]["data"]
    rules_path = Path(settings["PROMO_RULES"])
    volume = next(v for v in POD["volumes"] if v["name"] == "rules")
    rules = OBJECTS[f"ConfigMap/{volume['configMap']['name']}"]["data"]
    assert mount_path(MAIN, "rules") == str(rules_path.parent)
    assert rules[rules_path.name] == (REPO / "promotion" / "default_rules.yaml").read_text()


def test_settings_and_secrets_are_wired() -> None:
    assert {"configMapRef": {"name": "session-promotions-settings"}} in MAIN["envFrom"]
    assert "ConfigMap/session-promotions-settings" in OBJECTS
    for name in ("PROMO_KAFKA_SASL_PASSWORD", "PROMO_KAFKA_SSL_KEY_PASSWORD"):
        ref = env_value(MAIN, name)["secretKeyRef"]
        assert ref["optional"] is True and ref["name"] == "session-promotions-kafka"
    settings = OBJECTS["ConfigMap/session-promotions-settings"]["data"]
    assert not any("PASSWORD" in key for key in settings), "secrets belong in the Secret"


def test_pod_runs_unprivileged_with_resources() -> None:
    security = POD["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["fsGroup"] == security["runAsGroup"]
    dockerfile_user = next(line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines()
                           if line.startswith("USER "))
    assert dockerfile_user == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert POD["terminationGracePeriodSeconds"] >= 30
    assert POD["automountServiceAccountToken"] is False
    for container in [*POD["initContainers"], *POD["containers"]]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"]["memory"], container["name"]
        assert container["resources"]["limits"]["memory"], container["name"]
    writable = {m["mountPath"] for m in MAIN["volumeMounts"] if not m.get("readOnly")}
    assert "/tmp" in writable
