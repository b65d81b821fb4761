"""Prometheus config and alerts: promtool checks, rule unit tests, and a real server scraping a
real dataflow, against which every dashboard and alert expression is evaluated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_helpers import ALERTS, ENTRYPOINT, PROMETHEUS_DIR, Processes, free_port
from deploy_promql import (
    alert_queries,
    dashboard_queries,
    dashboard_variable_queries,
    label_values,
    metric_names,
    neutralize,
    substitute,
)

JOB = "session-promotions"
EVENTS = 200_000
# Series that cannot have samples in file mode, by design: the Kafka input's lag gauge and
# error counters, and counters of events this run does not cause (a labelled counter has no
# series before its first increment). Expressions using them get the RELAXED check below.
NO_DATA_IN_FILE_MODE = {
    "promotions_input_lag_records",  # Kafka source only
    "promotions_source_errors_total",  # Kafka consumer errors
    "promotions_sink_delivery_failures_total",  # Kafka producer failures
    "promotions_output_replays_dropped_total",  # Kafka output, after a crash
    "promotions_output_readback_seconds",  # Kafka output, set at a resume
    "promotions_rules_updates_total",  # only after the rules file changes
}
# Grafana's variables, as the dashboard would set them for this job.
GRAFANA_VALUES = {"job": JOB, "instance": ".*", "__rate_interval": "1m", "__interval": "15s"}


def test_promtool_check_config(promtool: str) -> None:
    done = subprocess.run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_discovery_config(promtool: str) -> None:
    """prometheus-kubernetes.yml: promtool where the build has Kubernetes discovery.

    Debian's prometheus package is built without it (field "kubernetes_sd_configs not found"),
    so there the same keys are checked by hand; any other promtool error fails.
    """
    path = PROMETHEUS_DIR / "prometheus-kubernetes.yml"
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        assert "field kubernetes_sd_configs not found" in output, output
    job = yaml.safe_load(path.read_text())["scrape_configs"][0]
    assert job["job_name"] == JOB
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    keeps = {r["source_labels"][0]: r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    assert keeps == {"__meta_kubernetes_pod_label_app_kubernetes_io_name": JOB,
                     "__meta_kubernetes_pod_container_port_name": "api"}


def test_promtool_check_rules(promtool: str) -> None:
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_unit_tests(promtool: str) -> None:
    tests = Path(__file__).with_name("alerts_test.yml")
    done = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested() -> None:
    cases = yaml.safe_load(Path(__file__).with_name("alerts_test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = {name.removeprefix("alert ") for name, _ in alert_queries()}
    assert alerts - tested == set(), "alerts without a firing case in alerts_test.yml"


def test_alerts_have_severity_and_text() -> None:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


# -- the live server ----------------------------------------------------------------------------

def http_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def http_text(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_for(predicate, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Live:
    """A Prometheus that scraped a file-mode dataflow twice a second, queried at one instant."""

    def __init__(self, base: str, at: float, exposition: str) -> None:
        self.base, self.at, self.exposition = base, at, exposition

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": self.at})
        try:
            body = http_json(url)
        except urllib.error.HTTPError as error:  # 400 on a PromQL syntax error
            raise AssertionError(f"{expr!r}: {error.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]["result"]

    def declared(self, name: str) -> bool:
        """The dataflow's /metrics announces the metric (# TYPE), with or without samples."""
        return f"# TYPE {name} " in self.exposition


@pytest.fixture(scope="module")
def live(prometheus_bin: str, promtool: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("live")
    processes = Processes()
    try:
        yield start_live(prometheus_bin, promtool, tmp, processes)
    finally:
        processes.stop_all()


def start_live(prometheus_bin: str, promtool: str, tmp: Path, processes: Processes) -> Live:
    events = tmp / "events.jsonl"
    subprocess.run(
        [sys.executable, "-m", "dataflows.cli", "generate", str(events), "--events", str(EVENTS),
         "--bad-rate", "0.01", "--duplicate-rate", "0.01", "--late-every", "500", "--disorder-ms", "3000"],
        check=True, capture_output=True,
    )
    api_port, prom_port = free_port(), free_port()

    # The real prometheus.yml with the target, interval and paths of this test.
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="500ms", evaluation_interval="1s")
    config["rule_files"] = [str(ALERTS)]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    job["static_configs"] = [{"targets": [f"127.0.0.1:{api_port}"]}]
    job["scrape_timeout"] = "500ms"
    config_path = tmp / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    subprocess.run([promtool, "check", "config", str(config_path)], check=True, capture_output=True)

    base = f"http://127.0.0.1:{prom_port}"
    processes.start(
        [prometheus_bin, f"--config.file={config_path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        log=tmp / "prometheus.log",
    )
    wait_for(lambda: http_text(f"{base}/-/ready"), 30, "Prometheus to be ready")
    # Target discovery is batched (every 5s): start the dataflow only once the scrape loop runs,
    # or a short run ends before the first scrape.
    wait_for(lambda: any(t["lastScrape"] > "1" for t in  # "0001-01-01..." = never scraped
                         http_json(f"{base}/api/v1/targets")["data"]["activeTargets"]),
             30, "the first scrape attempt")

    # The dataflow, started the way the container starts it: through the entrypoint.
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp), "PYTHON": sys.executable,
        "PROMO_INPUT": str(events), "PROMO_OUTPUT": str(tmp / "notifications.jsonl"),
        "PROMO_REJECTS_OUTPUT": str(tmp / "rejects.jsonl"), "PROMO_LATE_OUTPUT": str(tmp / "late.jsonl"),
        "BYTEWAX_DATAFLOW_API_ENABLED": "true", "BYTEWAX_DATAFLOW_API_PORT": str(api_port),
        "BYTEWAX_DATAFLOW_API_CACHE_PATH": str(tmp),
        # Small batches make the run last several scrapes, with wall-clock ticks (on_notify) in it.
        "PROMO_BATCH_SIZE": "200",
        # Ticks every 50 ms: on_notify runs (and has samples) however short the run is.
        "PROMO_TICK_SECONDS": "0.05",
    }
    flow = processes.start(["sh", str(ENTRYPOINT)], log=tmp / "dataflow.log", env=env, cwd=tmp)

    # Keep the last exposition seen (for # TYPE lines), until the input is exhausted.
    exposition = ""
    deadline = time.monotonic() + 120
    while flow.poll() is None and time.monotonic() < deadline:
        try:
            exposition = http_text(f"http://127.0.0.1:{api_port}/metrics")
        except OSError:
            pass
        time.sleep(0.5)
    assert flow.wait(10) == 0, (tmp / "dataflow.log").read_text()[-3000:]
    assert exposition, "never got /metrics from the dataflow"

    # Evaluate at the last instant the target was up: every series is fresh there, whether or
    # not the process has exited since.
    result = http_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": f'up{{job="{JOB}"}}[10m]'}))
    samples = result["data"]["result"][0]["values"]
    up_at = [float(t) for t, v in samples if v == "1"]
    print(f"{len(up_at)} scrapes while the dataflow ran")
    assert len(up_at) >= 3, (
        f"only {len(up_at)} successful scrapes: the dataflow finished too fast for rate() windows; "
        "raise EVENTS"
    )
    return Live(base, up_at[-1], exposition)


def all_queries() -> list[tuple[str, str]]:
    return [*dashboard_queries(), *alert_queries()]


def test_the_files_have_queries() -> None:
    """Guards the extraction itself: an empty list would make the live test vacuous."""
    assert len(list(dashboard_queries())) >= 30
    assert len(list(alert_queries())) >= 10
    assert len(list(dashboard_variable_queries())) >= 2


def check_expression(live: Live, where: str, expr: str) -> None:
    """The expression returns series from the real dataflow's metrics.

    Alerts are evaluated with their thresholds neutralised (`> bool`, see neutralize()), since
    a healthy run fires none. RELAXED: an expression that uses a metric of NO_DATA_IN_FILE_MODE
    must still parse and evaluate, and that metric must be declared by the running service
    (so a typo in its name fails); every other metric in it must have data.
    """
    expr = neutralize(substitute(expr, GRAFANA_VALUES))
    names = metric_names(expr)
    assert names or "__name__" in expr, f"{where}: no metric found in {expr!r}"
    result = live.query(expr)
    no_data = names & NO_DATA_IN_FILE_MODE
    if no_data:
        for name in sorted(no_data):
            assert live.declared(name), f"{where}: {name} is not a metric the service exports"
        for name in sorted(names - no_data):
            assert live.query(f'count({{__name__="{name}"}})'), f"{where}: no data for {name}"
    else:
        assert result, f"{where}: no data for {expr!r}"


@pytest.mark.parametrize(("where", "expr"), all_queries(), ids=[w for w, _ in all_queries()])
def test_expression_returns_data(live: Live, where: str, expr: str) -> None:
    check_expression(live, where, expr)


@pytest.mark.parametrize("expr", [
    "sum(rate(promotions_event_consumed_total[5m]))",  # typo in a metric with data
    'sum by (topic) (promotions_input_lag_record{job="x"})',  # typo in a Kafka-only metric
    "sum by (job) (rate(promotions_events_rejected_total[5m])) / rate(promotions_records_consumed_total[5m]) > 0.05",
])
def test_live_check_catches_broken_expressions(live: Live, expr: str) -> None:
    """Negative controls: a misspelt name, or operands whose labels never match, fail."""
    with pytest.raises(AssertionError):
        check_expression(live, "negative control", expr)


@pytest.mark.parametrize(("where", "query"), list(dashboard_variable_queries()))
def test_dashboard_variables_have_values(live: Live, where: str, query: str) -> None:
    selector, label = label_values(substitute(query, GRAFANA_VALUES))
    series = live.query(f"group by ({label}) ({selector})")
    assert [s["metric"][label] for s in series], f"{where}: no values for {label}"


def test_server_loaded_and_evaluates_the_alerts(live: Live) -> None:
    groups = http_json(f"{live.base}/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules} == {w.removeprefix("alert ") for w, _ in alert_queries()}
    for rule in rules:  # evaluated every second since the server started
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
