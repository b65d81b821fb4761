"""Promotion rules as data: an ordered list, first match wins, validated before anything runs.

A rules file (YAML or JSON) has a `version` (recorded in every notification) and `rules`, each with
a `name`, an optional `when` condition, an `action`, which products to `promote`, an optional
`priority` (higher first; file order breaks ties) and an optional `audience` (a stable slice of
users). Optional `variants` run other rule lists for slices of users, for A/B tests; the variant
is recorded in every notification. Conditions are a small declarative vocabulary compiled to
closures; nothing is ever `eval`ed.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NamedTuple, Union

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from promotion.facts import SessionFacts

START_PROMOTION: Final = "START_PROMOTION"
STOP_PROMOTION: Final = "STOP_PROMOTION"
NO_ACTION: Final = "NONE"

DEFAULT_RULES_PATH: Final = Path(__file__).with_name("default_rules.yaml")

NUMBER, STRING, SET = "number", "string", "set"


def _count(kind: str) -> Callable[[SessionFacts], object]:
    return lambda facts: facts.type_counts[kind]


#: Facts a condition may use: name -> (kind, getter).
FACTS: Final[dict[str, tuple[str, Callable[[SessionFacts], object]]]] = {
    "events": (NUMBER, lambda f: f.events),
    "duration_seconds": (NUMBER, lambda f: f.duration_seconds),
    "close_reason": (STRING, lambda f: f.close_reason),
    "logins": (NUMBER, _count("login")),
    "logouts": (NUMBER, _count("logout")),
    "product_views": (NUMBER, _count("product_view")),
    "adds_to_cart": (NUMBER, _count("add_to_cart")),
    "removes_from_cart": (NUMBER, _count("remove_from_cart")),
    "checkouts": (NUMBER, _count("checkout_start")),
    "payments": (NUMBER, _count("payment_complete")),
    "cart_items": (NUMBER, lambda f: sum(f.cart.values())),
    "cart_products": (NUMBER, lambda f: len(f.cart)),
    "cart_value": (NUMBER, lambda f: f.cart_value),
    "cart_product_ids": (SET, lambda f: f.cart.keys()),
    "viewed_products": (SET, lambda f: f.viewed_products),
    "viewed_categories": (SET, lambda f: f.viewed_categories),
    # The user's history before this session (per-user profile with a TTL).
    "profile_sessions": (NUMBER, lambda f: f.profile.sessions),
    "profile_purchases_30d": (NUMBER, lambda f: f.profile.purchases_30d),
    "profile_days_since_purchase": (NUMBER, lambda f: f.profile.days_since_purchase),
    "profile_top_categories": (SET, lambda f: f.profile.top_categories),
}

DEFAULT_VARIANT: Final = "default"
BUCKETS: Final = 10_000


def bucket(user_id: str, salt: str) -> int:
    """A user's stable bucket in [0, 10000): same in every process, run and release."""
    digest = hashlib.blake2b(f"{salt}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class Audience(BaseModel):
    """`percent` of users, starting at `offset` percent, bucketed by a hash of `salt` + user_id.

    Disjoint slices (offset 0 / percent 10 and offset 10 / percent 10) never share a user; the same
    salt keeps a user in the same slice across rule versions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    percent: float = Field(gt=0, le=100)
    offset: float = Field(0, ge=0, lt=100)
    salt: str = ""

    @model_validator(mode="after")
    def _fits(self) -> Audience:
        if self.offset + self.percent > 100:
            raise ValueError("offset + percent must not exceed 100")
        return self

    @property
    def buckets(self) -> tuple[float, float]:
        """The audience's buckets: [low, high)."""
        return self.offset * 100, (self.offset + self.percent) * 100

    def includes(self, user_id: str) -> bool:
        low, high = self.buckets
        return low <= bucket(user_id, self.salt) < high

_ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EQUALITY = {"==": operator.eq, "!=": operator.ne}
Scalar = Union[StrictInt, StrictFloat, StrictStr]


class Comparison(BaseModel):
    """`{fact, op, value}`: ordering and equality on numbers, equality and `in`/`not_in` on
    strings and numbers, `contains` on sets of ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fact: str
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "contains"]
    value: Union[Scalar, list[Scalar]]

    @field_validator("fact")
    @classmethod
    def _known_fact(cls, fact: str) -> str:
        if fact not in FACTS:
            raise ValueError(f"unknown fact {fact!r}; known facts: {', '.join(sorted(FACTS))}")
        return fact

    @model_validator(mode="after")
    def _operator_fits_fact(self) -> Comparison:
        kind = FACTS[self.fact][0]
        value, op = self.value, self.op
        is_number = isinstance(value, (int, float))
        if op in ("in", "not_in"):
            if kind == SET or not isinstance(value, list) or not value:
                raise ValueError(f"{op!r} needs a non-empty list value and a number or string fact")
            expected = (int, float) if kind == NUMBER else str
            if not all(isinstance(item, expected) for item in value):
                raise ValueError(f"{op!r} list items must be {kind}s for fact {self.fact!r}")
        elif op == "contains":
            if kind != SET or not isinstance(value, str):
                raise ValueError(f"'contains' needs a set fact and a string value, not {self.fact!r}")
        elif kind == SET:
            raise ValueError(f"fact {self.fact!r} is a set: use 'contains'")
        elif kind == NUMBER and not is_number:
            raise ValueError(f"fact {self.fact!r} is a number: compare it with a number")
        elif kind == STRING and (op not in _EQUALITY or not isinstance(value, str)):
            raise ValueError(f"fact {self.fact!r} is a string: use == or != with a string, or in")
        return self


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    all: list[Condition] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    any: list[Condition] = Field(min_length=1)


class NoneOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    none: list[Condition] = Field(min_length=1)


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "none"):
            if key in value:
                return key
        return "fact"
    return getattr(value, "_kind", None)


Condition = Annotated[
    Union[
        Annotated[Comparison, Tag("fact")],
        Annotated[AllOf, Tag("all")],
        Annotated[AnyOf, Tag("any")],
        Annotated[NoneOf, Tag("none")],
    ],
    Discriminator(_condition_kind, custom_error_message="a condition is an object with 'fact' or one of 'all', 'any', 'none'"),
]
Comparison._kind = "fact"  # type: ignore[attr-defined]
AllOf._kind = "all"  # type: ignore[attr-defined]
AnyOf._kind = "any"  # type: ignore[attr-defined]
NoneOf._kind = "none"  # type: ignore[attr-defined]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NoneOf.model_rebuild()


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str | None = None
    when: Condition | None = None
    action: Literal["START_PROMOTION", "STOP_PROMOTION", "NONE"]
    promote: Literal["cart", "viewed", "none"] | None = None
    priority: int = 0
    audience: Audience | None = None

    @model_validator(mode="after")
    def _promote_fits_action(self) -> Rule:
        if self.action != START_PROMOTION and self.promote not in (None, "none"):
            raise ValueError(f"'promote' is only meaningful with {START_PROMOTION}")
        return self

    @property
    def products_from(self) -> str:
        if self.promote is not None:
            return self.promote
        return "cart" if self.action == START_PROMOTION else "none"


def _check_unique(rules: list[Rule]) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)


class Variant(BaseModel):
    """Another rule list for an audience (an A/B test arm)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    audience: Audience
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Variant:
        _check_unique(self.rules)
        return self


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(min_length=1, max_length=64)
    description: str | None = None
    rules: list[Rule] = Field(min_length=1)
    variants: list[Variant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        _check_unique(self.rules)
        names = [v.name for v in self.variants]
        if DEFAULT_VARIANT in names or len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique and not {DEFAULT_VARIANT!r}")
        return self


class RulesError(ValueError):
    """A rules document is invalid; the message lists every problem with its place."""


class Decision(NamedTuple):
    action: str
    rule: str
    products: list[str]
    variant: str = DEFAULT_VARIANT


# -- tracing: what the one evaluator looked at, recorded only when asked for ----------------------

MATCHED: Final = "matched"
NOT_MATCHED: Final = "not matched"
OUTSIDE_AUDIENCE: Final = "not in its audience"
NOT_REACHED: Final = "not evaluated (an earlier rule matched)"


@dataclass
class Check:
    """One evaluated condition: a comparison with the fact's value, or all/any/none of `parts`.
    Parts after the one that settled all/any/none were not evaluated and are not listed."""

    kind: str  # "fact" | "all" | "any" | "none"
    result: bool
    fact: str | None = None
    op: str | None = None
    expected: object = None
    actual: object = None
    parts: list[Check] = field(default_factory=list)


@dataclass
class RuleOutcome:
    rule: str
    action: str
    priority: int
    outcome: str  # MATCHED | NOT_MATCHED | OUTSIDE_AUDIENCE | NOT_REACHED
    audience_bucket: int | None = None  # the user's bucket under the rule's audience salt
    condition: Check | None = None  # None: no `when` (always matches), or not evaluated


@dataclass
class VariantChoice:
    name: str
    salt: str
    bucket: int  # the user's bucket in [0, 10000) under this salt
    low: float  # the audience's buckets are [low, high)
    high: float
    chosen: bool


@dataclass
class RulesTrace:
    """Everything `decide` looked at for one session, in evaluation order."""

    variant: str = DEFAULT_VARIANT
    variants: list[VariantChoice] = field(default_factory=list)  # tried in file order
    rules: list[RuleOutcome] = field(default_factory=list)


_Test = Callable[[SessionFacts, "list[Check] | None"], bool]
_Compiled = list[tuple[Rule, _Test | None]]


def _compile_list(rules: list[Rule]) -> _Compiled:
    ordered = sorted(enumerate(rules), key=lambda pair: (-pair[1].priority, pair[0]))
    return [(rule, _compile(rule.when) if rule.when is not None else None) for _, rule in ordered]


class CompiledRules:
    """A validated rule set, ready to decide on closed sessions."""

    def __init__(self, rule_set: RuleSet) -> None:
        self.rule_set = rule_set
        self.version = rule_set.version
        self._rules = _compile_list(rule_set.rules)
        self._variants = [(v.name, v.audience, _compile_list(v.rules)) for v in rule_set.variants]

    def variant_of(self, user_id: str, trace: RulesTrace | None = None) -> tuple[str, _Compiled]:
        for name, audience, rules in self._variants:
            chosen = audience.includes(user_id)
            if trace is not None:
                trace.variants.append(VariantChoice(name, audience.salt, bucket(user_id, audience.salt),
                                                    *audience.buckets, chosen))
            if chosen:
                return name, rules
        return DEFAULT_VARIANT, self._rules

    def decide(self, facts: SessionFacts, trace: RulesTrace | None = None) -> Decision | None:
        """First matching rule's decision; None when it says NONE or nothing matches. With a
        `trace`, records the variant choice and every rule's outcome into it."""
        variant, rules = (self.variant_of(facts.user_id, trace) if self._variants
                          else (DEFAULT_VARIANT, self._rules))
        if trace is not None:
            trace.variant = variant
        decision = None
        for n, (rule, test) in enumerate(rules):
            if rule.audience is not None and not rule.audience.includes(facts.user_id):
                if trace is not None:
                    trace.rules.append(_outcome(rule, OUTSIDE_AUDIENCE, facts, None))
                continue
            checks: list[Check] | None = [] if trace is not None else None
            matched = test is None or test(facts, checks)
            if trace is not None:
                trace.rules.append(_outcome(rule, MATCHED if matched else NOT_MATCHED, facts,
                                            checks[0] if checks else None))
            if matched:
                if rule.action != NO_ACTION:
                    decision = Decision(rule.action, rule.name, _products(rule.products_from, facts),
                                        variant)
                if trace is not None:
                    trace.rules += [_outcome(r, NOT_REACHED, facts, None) for r, _ in rules[n + 1:]]
                return decision
        return None


def _outcome(rule: Rule, outcome: str, facts: SessionFacts, check: Check | None) -> RuleOutcome:
    salted = bucket(facts.user_id, rule.audience.salt) if rule.audience is not None else None
    return RuleOutcome(rule.name, rule.action, rule.priority, outcome, salted, check)


def explain_decision(rules: CompiledRules, facts: SessionFacts) -> tuple[Decision | None, RulesTrace]:
    """The decision on a closed session, and the trace of how the rules reached it."""
    trace = RulesTrace()
    return rules.decide(facts, trace), trace


def fact_values(facts: SessionFacts) -> dict[str, object]:
    """Every fact a condition may use, by name (sets sorted), as rules would see it."""
    return {name: _shown(getter(facts)) for name, (_kind, getter) in FACTS.items()}


def _shown(value: object) -> object:
    return sorted(value) if isinstance(value, AbstractSet) else value


def _products(source: str, facts: SessionFacts) -> list[str]:
    if source == "cart":
        return sorted(facts.cart)
    if source == "viewed":
        return sorted(facts.viewed_products - facts.cart.keys())
    return []


def _compile(condition: Any) -> _Test:
    """A condition as a closure `(facts, checks) -> bool`; with a `checks` list it appends one
    `Check` of what it evaluated (the same closure decides with and without)."""
    if isinstance(condition, (AllOf, AnyOf, NoneOf)):
        kind = condition._kind  # type: ignore[attr-defined]
        parts = [_compile(c) for c in getattr(condition, kind)]
        fold = {"all": all, "any": any, "none": lambda results: not any(results)}[kind]

        def combined(facts: SessionFacts, checks: list[Check] | None) -> bool:
            inner: list[Check] | None = [] if checks is not None else None
            result = fold(part(facts, inner) for part in parts)
            if checks is not None:
                checks.append(Check(kind, result, parts=inner or []))
            return result

        return combined
    getter = FACTS[condition.fact][1]
    fact, value, op = condition.fact, condition.value, condition.op
    if op in ("in", "not_in"):
        members = frozenset(value)
        inside = op == "in"
        compare: Callable[[Any, Any], bool] = lambda actual, _: (actual in members) == inside
    elif op == "contains":
        compare = lambda actual, wanted: wanted in actual
    else:
        compare = _ORDERING.get(op) or _EQUALITY[op]

    def compared(facts: SessionFacts, checks: list[Check] | None) -> bool:
        actual = getter(facts)
        result = compare(actual, value)
        if checks is not None:
            checks.append(Check("fact", result, fact, op, value, _shown(actual)))
        return result

    return compared


def parse_rules(document: object) -> CompiledRules:
    """Validate a decoded rules document; raise RulesError naming each rule and field at fault."""
    try:
        rule_set = RuleSet.model_validate(document)
    except ValidationError as error:
        raise RulesError(_describe(error, document)) from None
    return CompiledRules(rule_set)


def load_rules(path: str | Path) -> CompiledRules:
    """Read and validate a rules file (.yaml, .yml or .json)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise RulesError(f"{path}: cannot read rules file: {error.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            document = orjson.loads(text)
        else:
            document = yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        raise RulesError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {error}") from None
    try:
        return parse_rules(document)
    except RulesError as error:
        raise RulesError(f"{path}: {error}") from None


def dump_rules(rule_set: RuleSet) -> dict:
    """The plain document form of a rule set (parse_rules(dump_rules(r)) decides like r)."""
    return rule_set.model_dump(mode="json", exclude_none=True)


def _describe(error: ValidationError, document: object) -> str:
    lines = []
    for item in error.errors():
        lines.append(f"{_place(item['loc'], document)}: {_message(item)}")
    return "invalid rules:\n  " + "\n  ".join(lines)


def _message(item: Any) -> str:
    message = str(item["msg"])
    return message.removeprefix("Value error, ")


def _place(loc: tuple, document: object) -> str:
    """Turn pydantic's error location into a document path like `rules[2](name).when.all[0].op`."""
    parts: list[str] = []
    node: Any = document
    tag_skipped_for = None
    for step in loc:
        if isinstance(step, int):
            item = node[step] if isinstance(node, list) and step < len(node) else None
            name = item.get("name") if isinstance(item, dict) and parts == ["rules"] else None
            parts.append(f"[{step}]" + (f"({name})" if name else ""))
            node = item
        elif isinstance(node, dict) and tag_skipped_for is not node and _condition_kind(node) == step:
            tag_skipped_for = node  # pydantic's union tag, not a key of the document
        else:
            parts.append(("." if parts else "") + str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts) or "(document)"
