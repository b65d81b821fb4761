"""Regenerate prometheusrule.yaml from deploy/prometheus/alerts.yml (the source of truth).

    python deploy/k8s/sync_prometheusrule.py
"""

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = """\
# The alerts of deploy/prometheus/alerts.yml for the Prometheus Operator (same groups; tests/deploy
# checks they stay identical: regenerate with deploy/k8s/sync_prometheusrule.py).
# Your Prometheus' ruleSelector may require an extra label.
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as block scalars, so the file stays readable."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else (">" if len(data) > 80 else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "session-promotions", "labels": {"app.kubernetes.io/name": "session-promotions"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
