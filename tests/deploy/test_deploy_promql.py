"""The PromQL helpers the live test relies on."""

from __future__ import annotations

import pytest

from deploy_promql import label_values, metric_names, neutralize, substitute


@pytest.mark.parametrize(("expr", "expected"), [
    ("up == 0", "up == bool 0"),
    ('x{a!="b"} > 0.05', 'x{a!="b"} > bool 0.05'),  # != inside a matcher is not a comparison
    ("a > bool 1", "a > bool 1"),
    ("a >= 1 and b <= 2", "a >= bool 1 and b <= bool 2"),
    ("a > 0 unless on (job) b > 0", "a > bool 0 or on (job) b > bool 0"),
    ('x{le=">"} != 1', 'x{le=">"} != bool 1'),  # strings are skipped
])
def test_neutralize(expr: str, expected: str) -> None:
    assert neutralize(expr) == expected


def test_metric_names_skip_strings_and_functions() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(promotions_x_bucket{job="promotions_y"}[5m]))) + up'
    assert metric_names(expr) == {"promotions_x_bucket", "up"}


def test_substitute_fails_on_unknown_variables() -> None:
    assert substitute('x{job=~"$job"}[$__rate_interval]', {"job": "j", "__rate_interval": "1m"}) == 'x{job=~"j"}[1m]'
    with pytest.raises(KeyError):
        substitute("x{a=~\"${nope}\"}", {})


def test_label_values() -> None:
    assert label_values('label_values(m{job=~"j"}, instance)') == ('m{job=~"j"}', "instance")
