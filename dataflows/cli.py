"""`promotions`: the operational command line (sample data, rule checks, replays, recovery stores)."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from promotion.generator import GeneratorConfig, generate
from promotion.replay import render, replay
from promotion.rules import RulesError, load_rules
from promotion.shard import SessionConfig


def with_late_events(lines: Iterator[bytes], every: int, hold: int) -> Iterator[bytes]:
    """Hold back every `every`-th line by `hold` lines, so it arrives far behind its time."""
    held: list[tuple[int, bytes]] = []
    for n, line in enumerate(lines):
        if every and n % every == every - 1:
            held.append((n + hold, line))
        else:
            yield line
        while held and held[0][0] <= n:
            yield held.pop(0)[1]
    for _, line in held:
        yield line


def _generate(args: argparse.Namespace) -> int:
    config = GeneratorConfig(
        seed=args.seed,
        users=args.users,
        events=args.events,
        rate_per_s=args.rate,
        max_disorder_ms=args.disorder_ms,
        duplicate_rate=args.duplicate_rate,
        bad_rate=args.bad_rate,
    )
    lines = with_late_events(generate(config), args.late_every, args.late_hold)
    count = 0
    with open(args.out, "wb") if args.out != "-" else sys.stdout.buffer as out:
        for line in lines:
            out.write(line + b"\n")
            count += 1
    print(f"wrote {count} records to {args.out}", file=sys.stderr)
    return 0


def _rules_check(args: argparse.Namespace) -> int:
    try:
        rules = load_rules(args.file)
    except RulesError as error:
        print(error, file=sys.stderr)
        return 1
    rule_set = rules.rule_set
    print(f"{args.file}: valid, version {rule_set.version!r}, {len(rule_set.rules)} rules, "
          f"{len(rule_set.variants)} variants")
    arms = [("default", None, rule_set.rules)] + [(v.name, v.audience, v.rules) for v in rule_set.variants]
    for name, audience, rule_list in arms:
        if audience is not None:
            print(f"variant {name}: {audience.percent}% of users from {audience.offset}% "
                  f"(salt {audience.salt!r})")
        for i, rule in enumerate(rule_list):
            condition = "always" if rule.when is None else "when " + rule.when.model_dump_json(exclude_none=True)
            extra = f" priority {rule.priority}" if rule.priority else ""
            extra += f" audience {rule.audience.percent}%" if rule.audience else ""
            print(f"  {i + 1}. {rule.name}: {rule.action} ({rule.products_from}){extra} {condition}")
    return 0


def _rules_schema(args: argparse.Namespace) -> int:
    """The rules file format as JSON Schema (for editors and CI checks of rule repositories)."""
    from promotion.rules import RuleSet

    print(orjson.dumps(RuleSet.model_json_schema(), option=orjson.OPT_INDENT_2).decode())
    return 0


def _replay(args: argparse.Namespace) -> int:
    try:
        candidate, baseline = load_rules(args.rules), load_rules(args.baseline)
    except RulesError as error:
        print(error, file=sys.stderr)
        return 1
    config = SessionConfig(gap_ms=round(args.gap_seconds * 1000),
                           lateness_ms=round(args.allowed_lateness_seconds * 1000),
                           profile_ttl_ms=round(args.profile_ttl_days * 86_400_000))
    with open(args.events, "rb") as events:
        lines = (line.rstrip(b"\r\n") for line in events)  # a blank line is a rejected record
        report = replay(lines, config, baseline, candidate, shards=args.shards)
    if args.json:
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(report))
    return 0


def _recovery_init(args: argparse.Namespace) -> int:
    from bytewax.recovery import init_db_dir

    directory: Path = args.directory
    if directory.exists() and any(directory.glob("part-*.sqlite3")):
        print(f"{directory} already holds recovery partitions; their number is fixed", file=sys.stderr)
        return 1
    directory.mkdir(parents=True, exist_ok=True)
    init_db_dir(directory, args.partitions)
    print(f"created {args.partitions} recovery partitions in {directory}")
    return 0


def _recovery_backup(args: argparse.Namespace) -> int:
    """Copy each SQLite partition with SQLite's online backup API: consistent while running."""
    parts = sorted(args.directory.glob("part-*.sqlite3"))
    if not parts:
        print(f"no recovery partitions in {args.directory}", file=sys.stderr)
        return 1
    args.destination.mkdir(parents=True, exist_ok=True)
    for part in parts:
        source = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
        target = sqlite3.connect(args.destination / part.name)
        with target:
            source.backup(target)
        source.close()
        target.close()
    from dataflows.recovery_check import SETTINGS_FILE  # the settings the store was written with

    if (args.directory / SETTINGS_FILE).is_file():
        shutil.copy2(args.directory / SETTINGS_FILE, args.destination / SETTINGS_FILE)
    print(f"backed up {len(parts)} partitions to {args.destination}")
    return 0


def _state(args: argparse.Namespace) -> int:
    """The resume snapshot of a recovery store: one user's sessions, or counts per shard."""
    from dataflows import state_query

    try:
        gap_ms = state_query.gap_ms_from(args.gap_seconds)
        if args.summary:
            report = state_query.summary(args.directory, gap_ms)
        else:
            report = state_query.user_state(args.directory, args.user, gap_ms)
    except state_query.StateError as error:
        print(error, file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    elif args.summary:
        print(state_query.render_summary(report))
    else:
        print(state_query.render_user(report))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="promotions", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write seeded realistic events as JSON lines")
    gen.add_argument("out", help="output file, or - for stdout")
    gen.add_argument("--events", type=int, default=10_000)
    gen.add_argument("--users", type=int, default=1_000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--rate", type=float, default=1_000.0, help="event-time events per second")
    gen.add_argument("--disorder-ms", type=int, default=0)
    gen.add_argument("--duplicate-rate", type=float, default=0.0)
    gen.add_argument("--bad-rate", type=float, default=0.0)
    gen.add_argument("--late-every", type=int, default=0, help="make every Nth record late (0: none)")
    gen.add_argument("--late-hold", type=int, default=1_000, help="records a late one is held back")
    gen.set_defaults(run=_generate)

    rules = commands.add_parser("rules", help="promotion rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="validate a rules file and summarise it")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_rules_check)
    schema = rules_commands.add_parser("schema", help="print the rules format as JSON Schema")
    schema.set_defaults(run=_rules_schema)

    what_if = commands.add_parser("replay", help="compare two rule sets over recorded events")
    what_if.add_argument("events", type=Path, help="JSON-lines events file")
    what_if.add_argument("--rules", type=Path, required=True, help="candidate rules")
    what_if.add_argument("--baseline", type=Path, required=True, help="current rules")
    what_if.add_argument("--json", action="store_true", help="print the report as JSON")
    what_if.add_argument("--gap-seconds", type=float, default=300.0)
    what_if.add_argument("--allowed-lateness-seconds", type=float, default=10.0)
    what_if.add_argument("--profile-ttl-days", type=float, default=30.0)
    what_if.add_argument("--shards", type=int, default=64)
    what_if.set_defaults(run=_replay)

    recovery = commands.add_parser("recovery", help="the Bytewax recovery store")
    recovery_commands = recovery.add_subparsers(dest="recovery_command", required=True)
    init = recovery_commands.add_parser("init", help="create the recovery partitions (once)")
    init.add_argument("directory", type=Path)
    init.add_argument("partitions", type=int, help="fixed for the life of the store")
    init.set_defaults(run=_recovery_init)
    backup = recovery_commands.add_parser("backup", help="copy a (running) store consistently")
    backup.add_argument("directory", type=Path)
    backup.add_argument("destination", type=Path)
    backup.set_defaults(run=_recovery_backup)

    state = commands.add_parser(
        "state", help="open sessions in a recovery store (read-only, safe while the service runs)")
    state.add_argument("directory", type=Path, help="the recovery store")
    query = state.add_mutually_exclusive_group(required=True)
    query.add_argument("--user", help="one user's open sessions, profile and deadline")
    query.add_argument("--summary", action="store_true",
                       help="open users and sessions per shard, event time, rules version")
    state.add_argument("--json", action="store_true", help="print one JSON document")
    state.add_argument("--gap-seconds", type=float, default=None,
                       help="session gap (default: PROMO_GAP_SECONDS, else 300)")
    state.set_defaults(run=_state)

    from dataflows import explain

    explain.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
