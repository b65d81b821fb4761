"""Pull PromQL out of the dashboard and the alert rules, and prepare it for evaluation.

Extraction walks the files, so a new panel or alert is checked without touching the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from deploy_helpers import ALERTS, dashboard

# Every series this service's queries use has one of these prefixes, or is `up`.
_METRIC = re.compile(r"\b(up|(?:promotions|bytewax|process|python)_[A-Za-z0-9_]+)\b")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_COMPARISON = re.compile(r"==|!=|>=|<=|>|<")
_GRAFANA_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, expr) for every panel target, rows' nested panels included."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard()["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]


def dashboard_variable_queries() -> Iterator[tuple[str, str]]:
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            yield f"variable ${var['name']}", query["query"] if isinstance(query, dict) else query


def alert_queries() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule.get('alert') or rule.get('record')}", rule["expr"]


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(_STRING.sub('""', expr)))


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables ($job, ${job}, $__rate_interval); unknown ones fail loudly."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no test value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _GRAFANA_VAR.sub(one, expr)


def label_values(query: str) -> tuple[str, str]:
    """`label_values(selector, label)` -> (selector, label)."""
    match = _LABEL_VALUES.match(query)
    assert match, f"unsupported variable query {query!r}"
    return match.group(1).strip(), match.group(2)


def neutralize(expr: str) -> str:
    """The expression with its thresholds turned off, so it has a result whenever its inputs do.

    An alert's `x > 0.05` returns nothing until it fires; `x > bool 0.05` returns 0 or 1 for
    every series of x. `a unless b` becomes `a or b` for the same reason. What stays checked is
    that the series exist and that the label matching between the operands works.
    """
    out: list[str] = []
    depth = 0  # inside {...} label matchers, `!=` is not a comparison
    i = 0
    while i < len(expr):
        string = _STRING.match(expr, i)
        if string:
            out.append(string.group())
            i = string.end()
            continue
        char = expr[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        comparison = _COMPARISON.match(expr, i) if depth == 0 else None
        if comparison:
            out.append(comparison.group())
            i = comparison.end()
            if not re.match(r"\s*bool\b", expr[i:]):
                out.append(" bool")
            continue
        out.append(char)
        i += 1
    return re.sub(r"\bunless\b", "or", "".join(out))
