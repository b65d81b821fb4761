"""Live rule updates: re-read the rules file when it changes, keep the last valid version.

One watcher per process serves every shard, so a change costs one `stat` per poll interval. An
invalid file is logged and counted, and the previous version stays active. Shards switch on their
next activation, without restart and without touching session state.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import orjson

from dataflows import metrics
from promotion.rules import CompiledRules, RulesError, dump_rules, load_rules, parse_rules

log = logging.getLogger(__name__)


def digest_of(rules: CompiledRules) -> str:
    """Identity of a rule set's content (two files with equal rules are equal)."""
    canonical = orjson.dumps(dump_rules(rules.rule_set), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


_compiled: dict[str, CompiledRules] = {}
_compiled_lock = threading.Lock()


def compiled_from_document(document: dict) -> CompiledRules:
    """Compile a stored rules document once per process (shards restore the same one)."""
    key = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
    with _compiled_lock:
        rules = _compiled.get(key)
        if rules is None:
            rules = _compiled[key] = parse_rules(document)
        return rules


class RulesWatcher:
    """The current rules of this process, following a file."""

    def __init__(self, path: Path | None, poll_ms: int, initial: CompiledRules) -> None:
        self._path = path
        self._poll_ms = poll_ms
        self._rules = initial
        self._digest = digest_of(initial)
        self._next_poll = 0
        self._signature: tuple[int, int] | None = self._stat()
        self._lock = threading.Lock()
        metrics.RULES.info({"version": initial.version})

    def _stat(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def current(self, now_ms: int) -> tuple[str, CompiledRules]:
        """(digest, rules), re-reading the file at most once per poll interval."""
        if self._path is None or now_ms < self._next_poll:
            return self._digest, self._rules
        with self._lock:
            if now_ms >= self._next_poll:
                self._next_poll = now_ms + self._poll_ms
                signature = self._stat()
                if signature is not None and signature != self._signature:
                    self._signature = signature
                    self._reload()
            return self._digest, self._rules

    def _reload(self) -> None:
        try:
            rules = load_rules(self._path)  # type: ignore[arg-type]
        except RulesError as error:
            metrics.RULES_UPDATES.labels("rejected").inc()
            log.error("rules update rejected, keeping version %r: %s", self._rules.version, error)
            return
        digest = digest_of(rules)
        if digest == self._digest:
            return
        log.warning("rules version %r active (was %r)", rules.version, self._rules.version)
        metrics.RULES_UPDATES.labels("applied").inc()
        metrics.RULES.info({"version": rules.version})
        self._rules, self._digest = rules, digest
