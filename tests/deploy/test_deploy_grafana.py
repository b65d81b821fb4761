"""The Grafana dashboard: importable structure, and every metric of the service on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import prometheus_client

import dataflows.metrics  # noqa: F401  (registers the service's metrics)
from deploy_helpers import DASHBOARD, dashboard
from deploy_promql import dashboard_queries, metric_names

DASH = dashboard()
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def panels(items: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    for panel in DASH["panels"] if items is None else items:
        yield panel
        yield from panels(panel.get("panels", []))


def test_dashboard_header() -> None:
    assert DASH["schemaVersion"] >= 36
    assert DASH["uid"] == DASHBOARD.stem and DASH["title"]
    variables = {v["name"]: v for v in DASH["templating"]["list"]}
    source = variables["DS_PROMETHEUS"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["datasource"] == DATASOURCE


def test_panels_are_well_formed() -> None:
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    occupied: dict[tuple[int, int], str] = {}
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in occupied, f"{panel['title']!r} overlaps {occupied[(x, y)]!r}"
                occupied[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), panel["title"]


def exported_names() -> dict[str, str]:
    """family -> the series name a query uses, for every promotions_* metric of the service."""
    suffix = {"counter": "_total", "histogram": "_bucket", "info": "_info", "gauge": ""}
    names = {}
    for family in prometheus_client.REGISTRY.collect():
        if family.name.startswith("promotions_"):
            names[family.name] = family.name + suffix[family.type]
    return names


def test_every_service_metric_is_on_the_dashboard() -> None:
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    exported = exported_names()
    assert len(exported) >= 17
    missing = {name for name in exported.values() if name not in used}
    assert not missing, f"metrics in dataflows/metrics.py without a panel: {sorted(missing)}"
    assert any(name.startswith("bytewax_") for name in used), "no Bytewax internals panel"
