"""What-if replays: decide the same recorded sessions with two rule sets and compare.

Sessions and profiles do not depend on decisions, so the session engine runs once and both rule
sets decide every closed session; the result equals what the streaming job would emit with each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from promotion.facts import SessionFacts
from promotion.pipeline import notifications_for, run_offline
from promotion.rules import CompiledRules
from promotion.shard import SessionConfig
from promotion.timefmt import format_ms


@dataclass
class Outcome:
    version: str
    notifications: list[dict]
    by_action: Counter = field(default_factory=Counter)
    by_rule: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, object]:
        return {"version": self.version, "notifications": len(self.notifications),
                "by_action": dict(self.by_action), "by_rule": dict(self.by_rule)}


@dataclass
class ReplayReport:
    events: int
    sessions: int
    baseline: Outcome
    candidate: Outcome
    changed: int
    samples: list[dict]

    def as_dict(self) -> dict[str, object]:
        return {"events": self.events, "sessions": self.sessions,
                "baseline": self.baseline.summary(), "candidate": self.candidate.summary(),
                "changed_sessions": self.changed, "samples": self.samples}


def _outcome(rules: CompiledRules, notifications: list[dict]) -> Outcome:
    outcome = Outcome(rules.version, notifications)
    for n in notifications:
        outcome.by_action[n["action"]] += 1
        outcome.by_rule[f"{n['rule']} ({n['variant']})"] += 1
    return outcome


def _decisions(closed: list[SessionFacts], rules: CompiledRules) -> dict[tuple, tuple | None]:
    """Each session (user, start, first event: unique) and what the rules decide for it."""
    out: dict[tuple, tuple | None] = {}
    for facts in closed:
        decision = rules.decide(facts)
        out[(facts.user_id, format_ms(facts.start), facts.first_event_id)] = (
            None if decision is None else (decision.action, decision.rule, tuple(decision.products))
        )
    return out


def _as_json(decision: tuple | None) -> dict[str, object] | None:
    """A decision as the notification fields a user reads in the outputs (None: no notification)."""
    if decision is None:
        return None
    action, rule, products = decision
    return {"action": action, "rule": rule, "products": list(products)}


def replay(lines: Iterable[bytes], config: SessionConfig, baseline: CompiledRules,
           candidate: CompiledRules, *, shards: int = 64, samples: int = 10) -> ReplayReport:
    counted: list[int] = [0]

    def counting(source: Iterable[bytes]) -> Iterable[bytes]:
        for line in source:
            counted[0] += 1
            yield line

    result = run_offline(counting(lines), config, baseline, shards=shards)
    old = _outcome(baseline, result.notifications)
    new = _outcome(candidate, notifications_for(result.closed, candidate))
    before, after = _decisions(result.closed, baseline), _decisions(result.closed, candidate)
    changed_keys = sorted(k for k in before if before[k] != after[k])
    sample_rows = [{"user_id": k[0], "session_start": k[1], "first_event_id": k[2],
                    "baseline": _as_json(before[k]), "candidate": _as_json(after[k])}
                   for k in changed_keys[:samples]]
    return ReplayReport(counted[0], len(result.closed), old, new, len(changed_keys), sample_rows)


def render(report: ReplayReport) -> str:
    """A short human-readable comparison."""
    lines = [f"{report.events} records, {report.sessions} sessions closed",
             f"{'':48}{'baseline':>16}{'candidate':>16}",
             f"{'rules version':48}{report.baseline.version:>16.16}{report.candidate.version:>16.16}",
             f"{'notifications':48}{len(report.baseline.notifications):>16}"
             f"{len(report.candidate.notifications):>16}"]
    for label, key in (("action", "by_action"), ("rule", "by_rule")):
        names = sorted(set(getattr(report.baseline, key)) | set(getattr(report.candidate, key)))
        for name in names:
            lines.append(f"{label + ' ' + name:48.48}{getattr(report.baseline, key)[name]:>16}"
                         f"{getattr(report.candidate, key)[name]:>16}")
    lines.append(f"sessions decided differently: {report.changed}")
    for row in report.samples:
        lines.append(f"  {row['user_id']} @ {row['session_start']}: "
                     f"{orjson.dumps(row['baseline']).decode()} -> {orjson.dumps(row['candidate']).decode()}")
    return "\n".join(lines)
