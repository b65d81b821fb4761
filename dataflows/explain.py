"""`promotions explain`: why a user got (or did not get) a promotion, from the recorded events.

The whole file is replayed through the Python specification with the job's `PROMO_*` settings
(shards, gap, lateness, profile TTL, batch size, record size limit), because a user's sessions
depend on everyone's events through the watermark; only the chosen user is reported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dataflows.settings import Settings, load_rules_or_exit, load_settings
from promotion.explanation import ExplainedSession, Explanation, as_dict, explain
from promotion.pipeline import run_offline
from promotion.rules import Check, RuleOutcome, RulesTrace
from promotion.timefmt import format_ms

HELP = ("replay a JSON-lines file as the job would and explain one user's sessions: events, "
        "close reason, facts, every rule's outcome, variant and notification")
DESCRIPTION = (HELP + ". The WHOLE file is replayed, with the job's PROMO_* settings (shards, gap, "
               "lateness, profile TTL, batch size), because other users' events move the "
               "watermark that decides what is late and when a session closes; only the chosen "
               "user's sessions are printed. Rules: --rules, else PROMO_RULES, else the built-in "
               "ones (a job that changed rules live decided later sessions with the new ones).")


def register(commands: Any) -> None:
    """Add the `explain` subcommand to the `promotions` command line."""
    command = commands.add_parser("explain", help=HELP, description=DESCRIPTION)
    command.add_argument("events", type=Path, help="the JSON-lines file the job read")
    command.add_argument("--user", help="the user to explain")
    command.add_argument("--notification-id", help="explain only the session of this notification "
                                                   "(its user, when --user is not given)")
    command.add_argument("--rules", type=Path, help="rules file (default: PROMO_RULES)")
    command.add_argument("--json", action="store_true", help="print one JSON document")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.user and not args.notification_id:
        return _fail("explain: give --user or --notification-id")
    overrides: dict[str, object] = {"input": args.events, "mode": "file", "output": "-",
                                    "rejects_output": "stderr", "late_output": "stderr"}
    if args.rules is not None:
        overrides["rules"] = args.rules
    settings = load_settings(**overrides)  # one line and exit 1 when invalid
    if settings.input.is_dir():
        return _fail(f"explain: {settings.input} is a directory; explain reads one file (the "
                     "order records of several files met in the job is not recorded)")
    rules = load_rules_or_exit(settings.rules)
    options = dict(shards=settings.shards, batch_size=settings.batch_size,
                   partition=f"file:{settings.input.name}", max_event_bytes=settings.max_event_bytes)
    config = settings.session_config()
    user = args.user
    if user is None:
        found = [n for n in run_offline(_records(settings.input), config, rules, **options).notifications
                 if n["notification_id"] == args.notification_id]
        if not found:
            return _fail(f"explain: no notification {args.notification_id} in {settings.input}")
        user = found[0]["user_id"]
    explanation = explain(_records(settings.input), user, config, rules, **options)
    if args.notification_id is not None:
        explanation.sessions = [s for s in explanation.sessions if s.notification is not None
                                and s.notification["notification_id"] == args.notification_id]
        if not explanation.sessions:
            return _fail(f"explain: no notification {args.notification_id} for user {user!r} "
                         f"in {settings.input}")
    if args.json:
        print(orjson.dumps({**as_dict(explanation), "settings": _settings(settings)},
                           option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(explanation, settings))
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _records(path: Path) -> Iterator[bytes]:
    """Every line is a record, as the job's file source reads them (a blank one is rejected)."""
    with path.open("rb") as lines:
        for line in lines:
            yield line.rstrip(b"\r\n")


def _settings(settings: Settings) -> dict[str, object]:
    return {"shards": settings.shards, "gap_seconds": settings.gap_seconds,
            "allowed_lateness_seconds": settings.allowed_lateness_seconds,
            "profile_ttl_days": settings.profile_ttl_days, "batch_size": settings.batch_size,
            "rules": str(settings.rules)}


# -- text ----------------------------------------------------------------------------------------


def render(explanation: Explanation, settings: Settings) -> str:
    lines = [f"user {explanation.user_id}: {len(explanation.sessions)} sessions; "
             f"{explanation.records} records of {settings.input} replayed with {settings.shards} "
             f"shards, gap {settings.gap_seconds:g} s, lateness "
             f"{settings.allowed_lateness_seconds:g} s, profile TTL {settings.profile_ttl_days:g} "
             f"days; rules {explanation.rules_version!r} ({settings.rules})"]
    for n, session in enumerate(explanation.sessions, 1):
        lines += _session_lines(n, len(explanation.sessions), session)
    if explanation.unsessioned:
        lines.append("records of the user in no session:")
        for a in explanation.unsessioned:
            what = _event_text(a.event) if a.event is not None else f"reason {a.reason}"
            lines.append(f"  line {a.line} {a.fate}: {what}")
    return "\n".join(lines)


def _session_lines(n: int, total: int, s: ExplainedSession) -> list[str]:
    f = s.facts
    lines = [f"session {n} of {total} ({s.shard}): {format_ms(f.start)} .. {format_ms(f.end)}, "
             f"{f.events} events, closed by {f.close_reason}", "  events:"]
    lines += [f"    line {a.line}: {_event_text(a.event)}" for a in s.events]  # type: ignore[arg-type]
    lines.append("  facts:")
    lines += [f"    {name} = {_value(value)}" for name, value in s.values.items()]
    lines.append(f"  variant: {_variant_text(s.trace)}")
    lines.append("  rules, in evaluation order:")
    for i, outcome in enumerate(s.trace.rules, 1):
        lines += _rule_lines(i, outcome)
    if s.decision is None:
        lines.append("  decision: none (no notification)")
    else:
        products = ", ".join(s.decision.products) or "none"
        lines.append(f"  decision: {s.decision.action} by rule {s.decision.rule} "
                     f"(variant {s.decision.variant}), products: {products}")
        lines.append(f"  notification {s.notification['notification_id']}: "  # type: ignore[index]
                     f"{orjson.dumps(s.notification).decode()}")
    return lines


def _event_text(event: dict) -> str:
    text = f"{event['ts']} {event['event_id']} {event['type']} ({event['source']})"
    if event["product_id"] is not None:
        text += f" {event['product_id']} x{event['quantity']}"
        if event["price"] is not None:
            text += f" @ {event['price']}"
        if event["category"] is not None:
            text += f" [{event['category']}]"
    return text


def _value(value: object) -> str:
    if isinstance(value, list):
        return "{" + ", ".join(map(str, value)) + "}"
    return repr(value) if isinstance(value, str) else f"{value}"


def _variant_text(trace: RulesTrace) -> str:
    tried = "; ".join(f"{v.name}: bucket {v.bucket} {'in' if v.chosen else 'not in'} "
                      f"[{v.low:g}, {v.high:g}) (salt {v.salt!r})" for v in trace.variants)
    return trace.variant + (f" ({tried})" if tried else " (the rules have no variants)")


def _rule_lines(i: int, r: RuleOutcome) -> list[str]:
    extra = f", priority {r.priority}" if r.priority else ""
    if r.audience_bucket is not None:
        extra += f", audience bucket {r.audience_bucket}"
    lines = [f"    {i}. {r.rule} ({r.action}{extra}): {r.outcome}"]
    if r.condition is not None:
        lines += _check_lines(r.condition, 7)
    elif r.outcome == "matched":
        lines.append("       no condition: always matches")
    return lines


def _check_lines(check: Check, indent: int) -> list[str]:
    pad = " " * indent
    verdict = "true" if check.result else "false"
    if check.kind == "fact":
        return [f"{pad}{check.fact} {check.op} {_value(check.expected)}: "
                f"{check.fact} is {_value(check.actual)} -> {verdict}"]
    lines = [f"{pad}{check.kind} of ({len(check.parts)} evaluated) -> {verdict}"]
    for part in check.parts:
        lines += _check_lines(part, indent + 2)
    return lines
