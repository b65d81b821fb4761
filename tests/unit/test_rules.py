"""Rules: validation with precise errors, every operator, first match wins, and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promotion.facts import SessionFacts
from promotion.rules import (
    DEFAULT_RULES_PATH,
    FACTS,
    RulesError,
    dump_rules,
    load_rules,
    parse_rules,
)


def facts(**overrides: object) -> SessionFacts:
    base = dict(
        user_id="u", start=0, end=60_000, first_event_id="e", events=4, close_reason="gap",
        type_counts={"login": 1, "logout": 0, "product_view": 2, "add_to_cart": 1,
                     "remove_from_cart": 0, "checkout_start": 0, "payment_complete": 0},
        cart={"p2": 1, "p1": 2}, cart_value=30.0,
        viewed_products=frozenset({"p1", "p3"}), viewed_categories=frozenset({"books"}),
    )
    base.update(overrides)
    return SessionFacts(**base)  # type: ignore[arg-type]


def one_rule(when: dict, action: str = "START_PROMOTION", **extra: object) -> dict:
    return {"version": "t", "rules": [{"name": "r", "when": when, "action": action, **extra}]}


def test_default_rules() -> None:
    rules = load_rules(DEFAULT_RULES_PATH)
    assert rules.decide(facts()) == ("START_PROMOTION", "promote-abandoned-cart", ["p1", "p2"], "default")
    paid = facts(type_counts={**facts().type_counts, "payment_complete": 1})
    assert rules.decide(paid) == ("STOP_PROMOTION", "stop-after-payment", [], "default")
    assert rules.decide(facts(cart={})) is None


@pytest.mark.parametrize(
    "when, matches",
    [
        ({"fact": "events", "op": "==", "value": 4}, True),
        ({"fact": "events", "op": "!=", "value": 4}, False),
        ({"fact": "events", "op": "<", "value": 4}, False),
        ({"fact": "events", "op": "<=", "value": 4}, True),
        ({"fact": "cart_value", "op": ">", "value": 29.5}, True),
        ({"fact": "duration_seconds", "op": ">=", "value": 60}, True),
        ({"fact": "close_reason", "op": "==", "value": "gap"}, True),
        ({"fact": "close_reason", "op": "in", "value": ["logout", "eof"]}, False),
        ({"fact": "close_reason", "op": "not_in", "value": ["logout", "eof"]}, True),
        ({"fact": "events", "op": "in", "value": [1, 4]}, True),
        ({"fact": "viewed_categories", "op": "contains", "value": "books"}, True),
        ({"fact": "cart_product_ids", "op": "contains", "value": "p3"}, False),
        ({"all": [{"fact": "logins", "op": "==", "value": 1}, {"fact": "cart_items", "op": "==", "value": 3}]}, True),
        ({"any": [{"fact": "payments", "op": ">", "value": 0}, {"fact": "cart_products", "op": "==", "value": 9}]}, False),
        ({"none": [{"fact": "payments", "op": ">", "value": 0}]}, True),
        ({"none": [{"any": [{"fact": "product_views", "op": "==", "value": 2}]}]}, False),
    ],
)
def test_operators(when: dict, matches: bool) -> None:
    decision = parse_rules(one_rule(when)).decide(facts())
    assert (decision is not None) == matches


def test_first_match_wins_and_none_action_stops() -> None:
    rules = parse_rules({"version": "t", "rules": [
        {"name": "quiet", "when": {"fact": "events", "op": "<", "value": 10}, "action": "NONE"},
        {"name": "loud", "action": "START_PROMOTION"},
    ]})
    assert rules.decide(facts()) is None
    assert rules.decide(facts(events=20)).rule == "loud"


def test_promote_viewed_products_not_in_cart() -> None:
    rules = parse_rules(one_rule({"fact": "events", "op": ">", "value": 0}, promote="viewed"))
    assert rules.decide(facts()).products == ["p3"]


@pytest.mark.parametrize(
    "document, message",
    [
        ({"rules": []}, "version: Field required"),
        ({"version": "t", "rules": []}, "rules: List should have at least 1 item"),
        (one_rule({"fact": "nope", "op": "==", "value": 1}), "rules[0](r).when.fact: unknown fact 'nope'"),
        (one_rule({"fact": "events", "op": "~", "value": 1}), "rules[0](r).when.op"),
        (one_rule({"fact": "events", "op": ">", "value": "3"}), "is a number"),
        (one_rule({"fact": "viewed_products", "op": "==", "value": "p"}), "use 'contains'"),
        (one_rule({"fact": "close_reason", "op": "<", "value": "gap"}), "is a string"),
        (one_rule({"fact": "events", "op": "in", "value": []}), "non-empty list"),
        (one_rule({"all": []}), "rules[0](r).when.all: List should have at least 1 item"),
        (one_rule({"fact": "events", "op": ">", "value": 1}, action="STOP"), "rules[0](r).action"),
        (one_rule({"fact": "events", "op": ">", "value": 1}, action="STOP_PROMOTION", promote="cart"), "only meaningful"),
        (one_rule({"fact": "events", "op": ">", "value": 1}, colour="red"), "colour: Extra inputs are not permitted"),
        ({"version": "t", "rules": [{"name": "a", "action": "NONE"}, {"name": "a", "action": "NONE"}]}, "duplicate rule name 'a'"),
        ({"version": "t", "rules": [{"name": "bad name!", "action": "NONE"}]}, "rules[0](bad name!).name"),
        ([1, 2], "(document)"),
    ],
)
def test_errors_point_at_rule_and_field(document: object, message: str) -> None:
    with pytest.raises(RulesError) as error:
        parse_rules(document)
    assert message in str(error.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("version: [unclosed\n")
    with pytest.raises(RulesError, match="rules.yaml: not valid yaml"):
        load_rules(broken)
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_json_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"version": "j1", "rules": [{"name": "all", "action": "START_PROMOTION"}]}')
    assert load_rules(path).version == "j1"


numeric = st.sampled_from(sorted(n for n, (k, _) in FACTS.items() if k == "number"))
comparisons = st.builds(
    lambda fact, op, value: {"fact": fact, "op": op, "value": value},
    numeric, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.integers(0, 5),
)
conditions = st.recursive(
    comparisons,
    lambda inner: st.builds(lambda k, xs: {k: xs}, st.sampled_from(["all", "any", "none"]), st.lists(inner, min_size=1, max_size=3)),
    max_leaves=6,
)
rule_lists = st.lists(
    st.builds(lambda when, action: {"when": when, "action": action}, conditions,
              st.sampled_from(["START_PROMOTION", "STOP_PROMOTION", "NONE"])),
    min_size=1, max_size=4,
)
fact_values = st.builds(
    lambda events, counts, cart: facts(events=events, cart=cart,
        type_counts=dict(zip(facts().type_counts, counts))),
    st.integers(0, 6), st.lists(st.integers(0, 3), min_size=7, max_size=7),
    st.dictionaries(st.sampled_from(["p1", "p2"]), st.integers(1, 3)),
)


@settings(max_examples=200, deadline=None)
@given(rule_lists, st.lists(fact_values, min_size=1, max_size=5))
def test_serialised_rules_decide_identically(rules: list[dict], samples: list[SessionFacts]) -> None:
    document = {"version": "p", "rules": [{"name": f"r{i}", **r} for i, r in enumerate(rules)]}
    original = parse_rules(document)
    again = parse_rules(dump_rules(original.rule_set))
    assert dump_rules(again.rule_set) == dump_rules(original.rule_set)
    for sample in samples:
        assert original.decide(sample) == again.decide(sample)


def test_priority_orders_rules_before_file_order() -> None:
    rules = parse_rules({"version": "t", "rules": [
        {"name": "low", "action": "STOP_PROMOTION"},
        {"name": "high", "action": "START_PROMOTION", "priority": 5},
    ]})
    assert rules.decide(facts()).rule == "high"


def test_rule_audience_is_a_stable_slice_of_users() -> None:
    rules = parse_rules({"version": "t", "rules": [
        {"name": "tenth", "action": "START_PROMOTION", "audience": {"percent": 10, "salt": "s"}},
        {"name": "rest", "action": "STOP_PROMOTION"},
    ]})
    decided = [rules.decide(facts(user_id=f"user-{i}")).rule for i in range(5_000)]
    assert 0.08 < decided.count("tenth") / len(decided) < 0.12
    assert decided == [rules.decide(facts(user_id=f"user-{i}")).rule for i in range(5_000)]


def test_variants_split_users_and_are_recorded() -> None:
    rules = parse_rules({"version": "t", "rules": [{"name": "a", "action": "START_PROMOTION"}],
                         "variants": [
                             {"name": "b", "audience": {"percent": 30}, "rules": [{"name": "b", "action": "STOP_PROMOTION"}]},
                             {"name": "c", "audience": {"percent": 20, "offset": 30}, "rules": [{"name": "c", "action": "NONE"}]},
                         ]})
    seen = {"default": 0, "b": 0, None: 0}
    for i in range(5_000):
        decision = rules.decide(facts(user_id=f"user-{i}"))
        if decision is None:
            seen[None] += 1
        else:
            assert decision.variant == decision.rule if decision.variant != "default" else decision.rule == "a"
            seen[decision.variant] += 1
    assert 0.27 < seen["b"] / 5_000 < 0.33 and 0.17 < seen[None] / 5_000 < 0.23


def test_profile_facts() -> None:
    from promotion.profiles import ProfileFacts

    rules = parse_rules(one_rule({"all": [
        {"fact": "profile_purchases_30d", "op": ">=", "value": 2},
        {"fact": "profile_top_categories", "op": "contains", "value": "books"},
        {"fact": "profile_sessions", "op": ">", "value": 3},
        {"fact": "profile_days_since_purchase", "op": "<", "value": 7},
    ]}))
    loyal = ProfileFacts(5, 2, 1.5, frozenset({"books"}))
    assert rules.decide(facts(profile=loyal)) is not None
    assert rules.decide(facts()) is None


@pytest.mark.parametrize(
    "document, message",
    [
        ({"version": "t", "rules": [{"name": "a", "action": "NONE", "audience": {"percent": 0}}]}, "rules[0](a).audience.percent"),
        ({"version": "t", "rules": [{"name": "a", "action": "NONE", "audience": {"percent": 60, "offset": 50}}]}, "offset + percent must not exceed 100"),
        ({"version": "t", "rules": [{"name": "a", "action": "NONE", "priority": "high"}]}, "rules[0](a).priority"),
        ({"version": "t", "rules": [{"name": "a", "action": "NONE"}], "variants": [{"name": "default", "audience": {"percent": 5}, "rules": [{"name": "x", "action": "NONE"}]}]}, "variant names must be unique"),
        ({"version": "t", "rules": [{"name": "a", "action": "NONE"}], "variants": [{"name": "v", "rules": [{"name": "x", "action": "NONE"}]}]}, "variants[0].audience: Field required"),
        ({"version": "t", "rules": [{"name": "a", "action": "NONE"}], "variants": [{"name": "v", "audience": {"percent": 5}, "rules": [{"name": "x", "action": "START", "when": {"fact": "nope", "op": "==", "value": 1}}]}]}, "variants[0].rules[0].when.fact: unknown fact 'nope'"),
    ],
)
def test_new_construct_errors(document: dict, message: str) -> None:
    with pytest.raises(RulesError) as error:
        parse_rules(document)
    assert message in str(error.value)


audiences = st.none() | st.builds(lambda p, salt: {"percent": p, "salt": salt},
                                  st.integers(1, 100), st.sampled_from(["", "x"]))
rich_rules = st.lists(
    st.builds(lambda when, action, priority, audience: {"when": when, "action": action, "priority": priority,
                                                        **({"audience": audience} if audience else {})},
              conditions, st.sampled_from(["START_PROMOTION", "STOP_PROMOTION", "NONE"]),
              st.integers(-2, 2), audiences),
    min_size=1, max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(rich_rules, st.lists(rich_rules, max_size=2), st.lists(fact_values, min_size=1, max_size=4),
       st.lists(st.sampled_from(["u1", "u2", "u3", "u4"]), min_size=1, max_size=4))
def test_serialised_rich_rules_decide_identically(rules, variant_rules, samples, users) -> None:
    def named(prefix: str, items: list[dict]) -> list[dict]:
        return [{"name": f"{prefix}{i}", **r} for i, r in enumerate(items)]

    document = {"version": "p", "rules": named("r", rules), "variants": [
        {"name": f"v{i}", "audience": {"percent": 25, "offset": 25 * i}, "rules": named("v", rs)}
        for i, rs in enumerate(variant_rules)]}
    original = parse_rules(document)
    again = parse_rules(dump_rules(original.rule_set))
    for sample in samples:
        for user in users:
            f = sample._replace(user_id=user)
            assert original.decide(f) == again.decide(f)


# -- tracing: the same evaluator, recording what it looked at ------------------------------------

from promotion import rules as rules_module  # noqa: E402
from promotion.rules import (  # noqa: E402
    MATCHED, NOT_MATCHED, NOT_REACHED, OUTSIDE_AUDIENCE, Check, bucket, explain_decision)


def _leaves(check: Check) -> list[Check]:
    return [check] if check.kind == "fact" else [leaf for p in check.parts for leaf in _leaves(p)]


def _replayed(check: Check) -> bool:
    """A trace's verdict recomputed from its own leaves and combinators."""
    if check.kind == "fact":
        return check.result
    results = [_replayed(p) for p in check.parts]
    return {"all": all, "any": any, "none": lambda r: not any(r)}[check.kind](results)


@settings(max_examples=300, deadline=None)
@given(rule_lists, st.lists(fact_values, min_size=1, max_size=5))
def test_a_traced_decision_is_the_untraced_one_and_its_trace_adds_up(
        rules: list[dict], samples: list[SessionFacts]) -> None:
    compiled = parse_rules({"version": "p", "rules": [{"name": f"r{i}", **r} for i, r in enumerate(rules)]})
    values = {}
    for sample in samples:
        decision, trace = explain_decision(compiled, sample)
        assert decision == compiled.decide(sample)
        assert [r.rule for r in trace.rules] == [f"r{i}" for i in range(len(rules))]  # all listed
        outcomes = [r.outcome for r in trace.rules]
        assert outcomes.count(MATCHED) <= 1
        first = outcomes.index(MATCHED) if MATCHED in outcomes else len(outcomes)
        assert outcomes[first + 1:] == [NOT_REACHED] * (len(outcomes) - first - 1)
        assert set(outcomes[:first]) <= {NOT_MATCHED}
        values = rules_module.fact_values(sample)
        for outcome in trace.rules[:first + 1]:
            assert outcome.condition is not None and _replayed(outcome.condition) == outcome.condition.result
            assert outcome.condition.result == (outcome.outcome == MATCHED)
            for leaf in _leaves(outcome.condition):  # the compared value is the fact's value
                assert leaf.actual == values[leaf.fact]
        if decision is not None:
            assert trace.rules[first].rule == decision.rule
        else:
            assert first == len(outcomes) or trace.rules[first].action == "NONE"


def test_a_trace_shows_the_compared_values_and_stops_where_the_evaluator_stopped() -> None:
    compiled = parse_rules({"version": "t", "rules": [
        {"name": "big-cart", "action": "START_PROMOTION", "when": {"all": [
            {"fact": "cart_value", "op": ">", "value": 50},
            {"fact": "events", "op": ">=", "value": 1}]}},
        {"name": "viewer", "action": "START_PROMOTION", "promote": "viewed", "when": {"any": [
            {"fact": "viewed_categories", "op": "contains", "value": "books"},
            {"fact": "close_reason", "op": "in", "value": ["logout"]}]}},
        {"name": "fallback", "action": "STOP_PROMOTION"},
    ]})
    decision, trace = explain_decision(compiled, facts())
    assert decision == ("START_PROMOTION", "viewer", ["p3"], "default")
    big, viewer, fallback = trace.rules
    assert big.outcome == NOT_MATCHED and big.condition.kind == "all" and not big.condition.result
    assert [(c.fact, c.op, c.expected, c.actual, c.result) for c in big.condition.parts] == [
        ("cart_value", ">", 50, 30.0, False)]  # `all` stopped at the first false part
    assert viewer.outcome == MATCHED
    assert [(c.fact, c.actual, c.result) for c in viewer.condition.parts] == [
        ("viewed_categories", ["books"], True)]
    assert fallback.outcome == NOT_REACHED and fallback.condition is None


def test_a_trace_shows_audiences_variants_and_the_users_buckets() -> None:
    compiled = parse_rules({"version": "t", "rules": [
        {"name": "none-of-them", "action": "START_PROMOTION",
         "audience": {"percent": 0.01, "offset": 99.99, "salt": "r"}},
        {"name": "quiet", "action": "NONE", "when": {"none": [{"fact": "events", "op": ">", "value": 9}]}},
        {"name": "never", "action": "STOP_PROMOTION"}],
        "variants": [{"name": "v", "audience": {"percent": 50, "salt": "ab"},
                      "rules": [{"name": "v", "action": "STOP_PROMOTION"}]}]})
    users = [f"user-{i}" for i in range(200)]
    outside = next(u for u in users if bucket(u, "ab") >= 5_000 and bucket(u, "r") < 9_999)
    decision, trace = explain_decision(compiled, facts(user_id=outside))
    assert decision is None and trace.variant == "default"
    (choice,) = trace.variants
    assert (choice.name, choice.bucket, choice.low, choice.high, choice.chosen) == (
        "v", bucket(outside, "ab"), 0, 5_000, False)
    assert [(r.rule, r.outcome) for r in trace.rules] == [
        ("none-of-them", OUTSIDE_AUDIENCE), ("quiet", MATCHED), ("never", NOT_REACHED)]
    assert trace.rules[0].audience_bucket == bucket(outside, "r")
    assert trace.rules[1].condition.kind == "none" and trace.rules[1].condition.result

    inside = next(u for u in users if bucket(u, "ab") < 5_000)
    decision, trace = explain_decision(compiled, facts(user_id=inside))
    assert decision == ("STOP_PROMOTION", "v", [], "v") and trace.variant == "v"
    assert trace.variants[0].chosen and [r.rule for r in trace.rules] == ["v"]
    assert trace.rules[0].condition is None  # no `when`: always matches


def test_fact_values_lists_every_fact() -> None:
    values = rules_module.fact_values(facts())
    assert set(values) == set(FACTS)
    assert values["cart_product_ids"] == ["p1", "p2"] and values["cart_items"] == 3
    assert values["profile_days_since_purchase"] == -1.0 and values["profile_top_categories"] == []
