"""`promotions`: the operational command line of session-promotions.

Sample traffic, rule checks and what-if replays, recovery stores and their state, Kafka topics.
Every argument is checked when it is parsed (dataflows/arguments.py): a bad one is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from dataflows.arguments import (
    CommandError,
    Parser,
    existing_file,
    fraction,
    integer,
    positive_number,
    setting,
    timestamp_ms,
)
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
        start_ms=args.start,
    )
    try:
        config.validate()
    except ValueError as error:
        raise CommandError(str(error)) from None
    lines = with_late_events(generate(config), args.late_every, args.late_hold)
    count = 0
    try:
        out = open(args.out, "wb") if args.out != "-" else sys.stdout.buffer
    except OSError as error:
        raise CommandError(f"cannot write {args.out}: {error.strerror}") from None
    with out:
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

    from dataflows.kafka_exactly_once import StartOffsets

    directory: Path = args.directory
    if directory.exists() and any(directory.glob("part-*.sqlite3")):
        print(f"{directory} already holds recovery partitions; their number is fixed", file=sys.stderr)
        return 1
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {directory}: {error.strerror}") from None
    init_db_dir(directory, args.partitions)
    # Where an earlier store's Kafka sinks started: meaningless for the new one.
    shutil.rmtree(directory / StartOffsets.DIRECTORY, ignore_errors=True)
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


def _topics_create(args: argparse.Namespace) -> int:
    """The service's topics, from the same PROMO_* settings it runs with."""
    from dataflows.settings import load_settings
    from dataflows.topics import TopicsError, create_topics, service_topics

    settings = load_settings()
    try:
        outcome = create_topics(settings.kafka_common(), service_topics(settings), args.partitions,
                                args.replication_factor, args.timeout)
    except TopicsError as error:
        print(error, file=sys.stderr)
        return 1
    for name, result in outcome.items():
        print(f"{name}: {result}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="promotions", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write seeded realistic events as JSON lines")
    gen.add_argument("out", help="output file, or - for stdout")
    gen.add_argument("--events", type=integer(0), default=10_000,
                     help="valid events to write, before duplicates and bad records (default 10000)")
    gen.add_argument("--users", type=integer(1), default=1_000, help="distinct users (default 1000)")
    gen.add_argument("--seed", type=int, default=7,
                     help="random seed: the same seed and options give the same bytes (default 7)")
    gen.add_argument("--start", type=timestamp_ms, default=GeneratorConfig.start_ms,
                     help="event time of the first event: now, RFC 3339 or epoch ms "
                          "(default 2026-01-01T00:00:00Z)")
    gen.add_argument("--rate", type=positive_number, default=1_000.0,
                     help="event-time events per second (default 1000)")
    gen.add_argument("--disorder-ms", type=integer(0), default=0,
                     help="shuffle arrival order within this many ms of event time (default 0)")
    gen.add_argument("--duplicate-rate", type=fraction, default=0.0,
                     help="share of events sent twice, 0 to 1 (default 0)")
    gen.add_argument("--bad-rate", type=fraction, default=0.0,
                     help="malformed records added, as a share of events, 0 to 1 (default 0)")
    gen.add_argument("--late-every", type=integer(0), default=0,
                     help="make every Nth record late (default 0: none)")
    gen.add_argument("--late-hold", type=integer(1), default=1_000,
                     help="records a late one is held back (default 1000)")
    gen.set_defaults(run=_generate)

    rules = commands.add_parser("rules", help="promotion rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="validate a rules file and summarise it")
    check.add_argument("file", type=Path, help="rules file (YAML or JSON)")
    check.set_defaults(run=_rules_check)
    schema = rules_commands.add_parser("schema", help="print the rules format as JSON Schema")
    schema.set_defaults(run=_rules_schema)

    what_if = commands.add_parser("replay", help="compare two rule sets over recorded events")
    what_if.add_argument("events", type=existing_file, help="JSON-lines events file")
    what_if.add_argument("--rules", type=existing_file, required=True, help="candidate rules")
    what_if.add_argument("--baseline", type=existing_file, required=True, help="current rules")
    what_if.add_argument("--json", action="store_true", help="print the report as JSON")
    what_if.add_argument("--gap-seconds", type=setting("gap_seconds"), default=300.0,
                         help="session gap, as PROMO_GAP_SECONDS (default 300)")
    what_if.add_argument("--allowed-lateness-seconds", type=setting("allowed_lateness_seconds"),
                         default=10.0, help="as PROMO_ALLOWED_LATENESS_SECONDS (default 10)")
    what_if.add_argument("--profile-ttl-days", type=setting("profile_ttl_days"), default=30.0,
                         help="as PROMO_PROFILE_TTL_DAYS (default 30)")
    what_if.add_argument("--shards", type=setting("shards"), default=64,
                         help="user shards, as PROMO_SHARDS (default 64)")
    what_if.set_defaults(run=_replay)

    recovery = commands.add_parser("recovery", help="the Bytewax recovery store")
    recovery_commands = recovery.add_subparsers(dest="recovery_command", required=True)
    init = recovery_commands.add_parser("init", help="create the recovery partitions (once)")
    init.add_argument("directory", type=Path, help="directory of the store (created if missing)")
    init.add_argument("partitions", type=integer(1),
                      help="number of SQLite partitions, at least 1: fixed for the life of the store")
    init.set_defaults(run=_recovery_init)
    backup = recovery_commands.add_parser("backup", help="copy a (running) store consistently")
    backup.add_argument("directory", type=Path, help="the recovery store")
    backup.add_argument("destination", type=Path, help="directory for the copies (created if missing)")
    backup.set_defaults(run=_recovery_backup)

    state = commands.add_parser(
        "state", help="open sessions in a recovery store (read-only, safe while the service runs)")
    state.add_argument("directory", type=Path, help="the recovery store")
    query = state.add_mutually_exclusive_group(required=True)
    query.add_argument("--user", help="one user's open sessions, profile and deadline")
    query.add_argument("--summary", action="store_true",
                       help="open users and sessions per shard, event time, rules version")
    state.add_argument("--json", action="store_true", help="print one JSON document")
    state.add_argument("--gap-seconds", type=float, default=None,  # checked by state_query
                       help="session gap (default: PROMO_GAP_SECONDS, else 300)")
    state.set_defaults(run=_state)

    topics = commands.add_parser("topics", help="the Kafka topics the service reads and writes")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True)
    create = topics_commands.add_parser(
        "create", help="create the input, notifications, dead-letter and late topics (idempotent)",
        description="Brokers and topic names come from the service's settings "
                    "(PROMO_KAFKA_BOOTSTRAP_SERVERS, PROMO_KAFKA_*_TOPIC(S)); existing topics are "
                    "left as they are.")
    create.add_argument("--partitions", type=integer(1), default=3,
                        help="partitions of each new topic (default 3); input partitions bound "
                             "the workers that read")
    create.add_argument("--replication-factor", type=integer(1), default=1,
                        help="replicas of each new topic (default 1; 3 in production)")
    create.add_argument("--timeout", type=positive_number, default=30.0,
                        help="seconds to wait for the brokers (default 30)")
    create.set_defaults(run=_topics_create)

    from dataflows import explain

    explain.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as error:
        print(f"{top.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
