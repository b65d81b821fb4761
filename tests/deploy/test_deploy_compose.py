"""deploy/compose: valid per a real Compose implementation, and wired to the other deploy files."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path, PurePosixPath

import yaml

from deploy_helpers import COMPOSE_FILE, DASHBOARD, GRAFANA_DIR, PROMETHEUS_DIR, REPO, compose

SERVICES = compose()["services"]
COMPOSE_DIR = COMPOSE_FILE.parent


def validate(compose_cmd: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    """`compose config -q` checks the file against the Compose schema, without an engine."""
    text = path.read_text()
    if compose_cmd == ["docker-compose"]:
        # Compose v1's schema predates the top-level `name` (Compose v2); check it apart.
        doc = yaml.safe_load(text)
        assert doc.pop("name") == "session-promotions"
        text = yaml.safe_dump(doc)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(text)
        # --project-directory: relative paths resolve as for deploy/compose/docker-compose.yml.
        return subprocess.run(
            [*compose_cmd, "-f", str(copy), "--project-directory", str(COMPOSE_DIR), "--profile", "demo",
             "config", "-q"],
            capture_output=True, text=True, timeout=60,
        )


def test_compose_file_is_valid(compose_cmd: list[str]) -> None:
    done = validate(compose_cmd, COMPOSE_FILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_validator_rejects_a_broken_file(compose_cmd: list[str], tmp_path: Path) -> None:
    """Negative control: the validator is not a no-op."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    depends_on:", "    depends_onn:", 1))
    assert validate(compose_cmd, broken).returncode != 0


def bind_mounts(service: str) -> dict[str, Path]:
    """container path -> host path of a service's bind mounts."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE_DIR / source).resolve()
    return mounts


def test_every_bind_mount_exists() -> None:
    for name in SERVICES:
        for target, source in bind_mounts(name).items():
            assert source.exists(), f"{name}: {source} (for {target}) is missing"


def test_stack_services() -> None:
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = SERVICES["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    promotions = SERVICES["promotions"]
    assert (COMPOSE_DIR / promotions["build"]["context"]).resolve() == REPO
    assert promotions["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    assert promotions["stop_signal"] == "SIGINT"
    env = promotions["environment"]
    assert env["PROMO_MODE"] == "kafka"
    assert env["BYTEWAX_DATAFLOW_API_PORT"] == "3030"
    assert "127.0.0.1:3030:3030" in promotions["ports"]
    # The recovery directory is inside the service's persistent volume.
    state = next(v for v in promotions["volumes"] if not v.startswith("."))
    volume, target = state.split(":")[:2]
    assert volume in compose()["volumes"]
    assert PurePosixPath(target) in PurePosixPath(env["BYTEWAX_RECOVERY_DIRECTORY"]).parents


def test_topic_job_creates_the_topics_the_service_uses() -> None:
    """`promotions topics create` with the service's own brokers and topic names."""
    job = SERVICES["kafka-topics"]
    assert job["entrypoint"] + job["command"][:2] == ["python", "-m", "dataflows.cli", "topics", "create"]
    service = SERVICES["promotions"]["environment"]
    kafka = {k: v for k, v in service.items()
             if k == "PROMO_MODE" or k.startswith("PROMO_KAFKA_") and k != "PROMO_KAFKA_START"}
    assert {"PROMO_KAFKA_INPUT_TOPICS", "PROMO_KAFKA_DLQ_TOPIC", "PROMO_KAFKA_LATE_TOPIC"} <= set(kafka)
    assert job["environment"] == kafka


def test_prometheus_gets_config_and_alerts_side_by_side() -> None:
    mounts = bind_mounts("prometheus")
    config_target = next(t for t, s in mounts.items() if s == PROMETHEUS_DIR / "prometheus.yml")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        expected = str(PurePosixPath(config_target).parent / rule_file)
        assert mounts.get(expected) == PROMETHEUS_DIR / rule_file
    assert f"--config.file={config_target}" in SERVICES["prometheus"]["command"]
    # The static target is the compose service's API port.
    target = config["scrape_configs"][0]["static_configs"][0]["targets"][0]
    host, port = target.split(":")
    assert host in SERVICES and port == SERVICES[host]["environment"]["BYTEWAX_DATAFLOW_API_PORT"]


def test_grafana_is_provisioned_with_datasource_and_dashboard() -> None:
    mounts = bind_mounts("grafana")
    provisioning = GRAFANA_DIR / "provisioning"
    assert mounts["/etc/grafana/provisioning"] == provisioning
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    url = datasource["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and "prometheus" in SERVICES
    provider = yaml.safe_load((provisioning / "dashboards" / "session-promotions.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    dashboard_target = next(t for t, s in mounts.items() if s == DASHBOARD)
    assert str(PurePosixPath(dashboard_target).parent) == folder
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboard_target


def test_demo_producer_routes_like_the_service_reads() -> None:
    """Logins/logouts to auth-events, the rest (bad records too) to cart-events, keyed by user."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_producer", COMPOSE_DIR / "demo_producer.py")
    assert spec and spec.loader
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.route(b'{"user_id":"u1","type":"login","source":"auth"}') == ("auth-events", b"u1")
    assert demo.route(b'{"user_id":"u2","type":"add_to_cart","source":"cart"}') == ("cart-events", b"u2")
    assert demo.route(b"{not json") == ("cart-events", None)
    inputs = SERVICES["promotions"]["environment"]["PROMO_KAFKA_INPUT_TOPICS"].split(",")
    assert sorted(inputs) == sorted({demo.AUTH_TOPIC, demo.CART_TOPIC})
