"""`podman kube play` of deploy/k8s. Podman (4.3 here) plays Pods, Deployments and
PersistentVolumeClaims only: a StatefulSet is "does not contain any supported kube kind", and
ConfigMaps are given apart (`--configmap`). So the test plays what the StatefulSet would create:
one Pod per ordinal from its pod template, a PVC per pod from its claim template, the settings
and rules ConfigMaps. What the StatefulSet controller and the cluster provide is filled in the
way they would: the pod names (the downward API's fieldRefs), DNS names of the headless Service
(hostAliases to loopback addresses), the local image. Host networking (the only network here)
allows no declared ports, so the API port is a free port per pod, and so is the cluster port.
Probes become podman healthchecks, which need systemd timers: without systemd they never run
(podman logs an error and goes on), so the test calls /metrics itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_helpers import free_port, k8s_objects
from image_helpers import Engine, checked, container, scrape
from tests.integration.kafka_helpers import produce
from tests.kafka_fixtures import REPO_ROOT

pytestmark = pytest.mark.kafka
OBJECTS = k8s_objects()
STS = OBJECTS["StatefulSet/session-promotions"]
NAMESPACE = "test"
#: Podman 4.3 with runc here fails to remove a finished init container of the default type
#: ("once": "cannot remove container ... as it is running"); "always" ones are kept, and run
#: at every pod start, as a Kubernetes init container does.
INIT_TYPE = "io.podman.annotations.init.container.type"


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["name"] == name)


def set_env(container_spec: dict[str, Any], name: str, value: str) -> None:
    """A literal value in place of the manifest's (a fieldRef the cluster would resolve)."""
    env = container_spec.setdefault("env", [])
    env[:] = [var for var in env if var["name"] != name] + [{"name": name, "value": value}]


def pod_of_ordinal(ordinal: int, prefix: str, image: str,
                   ports: dict[str, int]) -> list[dict[str, Any]]:
    """The Pod and PVC the StatefulSet controller makes for `ordinal`."""
    name = STS["metadata"]["name"]
    spec = copy.deepcopy(STS["spec"]["template"]["spec"])
    spec.pop("affinity")
    spec["hostNetwork"] = True
    init = by_name(spec["initContainers"], "hostfile")
    main = by_name(spec["containers"], "dataflow")
    set_env(init, "POD_NAMESPACE", NAMESPACE)
    set_env(init, "CLUSTER_PORT", str(ports["cluster"]))
    set_env(init, "PROCESSES", "1")
    set_env(main, "BYTEWAX_POD_NAME", f"{name}-{ordinal}")
    # hostAliases are dropped with hostNetwork here, so the hostfile's DNS names cannot resolve
    # (Bytewax: "failed to lookup address information"): the pod runs as a one-process cluster
    # at the loopback address its one hostfile line would resolve to.
    main["env"] = [var for var in main["env"] if var["name"] != "BYTEWAX_HOSTFILE_PATH"]
    set_env(main, "BYTEWAX_ADDRESSES", f"127.0.0.1:{ports['cluster']}")
    set_env(main, "BYTEWAX_DATAFLOW_API_PORT", str(ports[f"api{ordinal}"]))
    main.pop("ports")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        main[probe]["httpGet"]["port"] = ports[f"api{ordinal}"]
    for spec_container in (init, main):
        spec_container["image"] = image
    (claim_template,) = STS["spec"]["volumeClaimTemplates"]
    claim = f"{prefix}-{claim_template['metadata']['name']}-{ordinal}"
    spec["volumes"].append({"name": claim_template["metadata"]["name"],
                            "persistentVolumeClaim": {"claimName": claim}})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{prefix}-{name}-{ordinal}",
                        "labels": STS["spec"]["template"]["metadata"]["labels"],
                        "annotations": {INIT_TYPE: "always"}},
           "spec": spec}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
           "spec": claim_template["spec"]}
    return [pvc, pod]


def pod_logs(pod: str) -> str:
    done = container("pod", "logs", pod)
    return done.stdout + done.stderr


def config_maps(bootstrap: str, topics: dict[str, str]) -> list[dict[str, Any]]:
    """The manifests' ConfigMaps, the settings pointed at the test's broker and topics."""
    settings = copy.deepcopy(OBJECTS["ConfigMap/session-promotions-settings"])
    settings["data"].update({
        "PROMO_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PROMO_KAFKA_INPUT_TOPICS": topics["in"],
        "PROMO_KAFKA_NOTIFICATIONS_TOPIC": topics["out"],
        "PROMO_KAFKA_DLQ_TOPIC": topics["dlq"],
        "PROMO_KAFKA_LATE_TOPIC": topics["late"],
    })
    return [settings, OBJECTS["ConfigMap/session-promotions-rules"]]


def test_statefulset_pod_plays_and_serves_metrics(
        engine: Engine, kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    topics = {"in": topic_factory(4), "out": topic_factory(4), "dlq": topic_factory(1),
              "late": topic_factory(1)}
    produce(kafka_bootstrap, topics["in"], (REPO_ROOT / "dataflows" / "data" / "sample.jsonl")
            .read_bytes().splitlines(), 4)
    name, replicas = STS["metadata"]["name"], 1  # see pod_of_ordinal: no cluster DNS here
    ports = {"cluster": free_port(), **{f"api{i}": free_port() for i in range(replicas)}}
    documents = [doc for i in range(replicas)
                 for doc in pod_of_ordinal(i, engine.prefix, engine.image, ports)]
    kube = tmp_path / "pods.yaml"
    kube.write_text(yaml.safe_dump_all(documents))
    maps = []  # one file each: podman reads one ConfigMap per --configmap file
    for config_map in config_maps(kafka_bootstrap, topics):
        maps += ["--configmap", str(tmp_path / f"{config_map['metadata']['name']}.yaml")]
        Path(maps[-1]).write_text(yaml.safe_dump(config_map))
    engine.pods += [doc["metadata"]["name"] for doc in documents if doc["kind"] == "Pod"]
    engine.volumes += [doc["metadata"]["name"] for doc in documents
                       if doc["kind"] == "PersistentVolumeClaim"]

    checked("kube", "play", *maps, str(kube), timeout=300)
    pod_names = [f"{engine.prefix}-{name}-{i}" for i in range(replicas)]
    logs = [lambda pod=pod: pod_logs(pod) for pod in pod_names]
    for i in range(replicas):
        text = scrape(ports[f"api{i}"], logs=logs[i])
        assert "promotions_open_sessions" in text
    pod0 = pod_names[0]
    assert "creating 8 recovery partitions" in pod_logs(pod0)
    hostfile = checked("exec", f"{pod0}-dataflow", "cat", "/etc/bytewax/hostfile.txt")
    service = STS["spec"]["serviceName"]
    assert hostfile.split() == [f"{name}-0.{service}.{NAMESPACE}.svc:{ports['cluster']}"]
