"""Argument types for the `promotions` command line: each refuses a bad value with one line.

argparse calls a type with the argument's text; an `ArgumentTypeError` becomes
`promotions <command>: error: argument --x: <message>` and exit status 2. Numbers are checked by
pydantic with the same constraints the `PROMO_*` settings use, so a command and the service agree
on what a gap or a shard count may be.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import Field, TypeAdapter, ValidationError

from promotion.timefmt import BadTimestamp, parse_rfc3339_ms


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandError(Exception):
    """A problem found while a command runs that is the caller's to fix (exit status 2)."""


def checked(annotation: Any) -> Callable[[str], Any]:
    """An argparse type validating the text against a (constrained) pydantic type."""
    adapter = TypeAdapter(annotation)

    def parse(text: str) -> Any:
        try:
            return adapter.validate_python(text)
        except ValidationError as error:
            message = error.errors()[0]["msg"]
            raise argparse.ArgumentTypeError(f"{message} (got {text!r})") from None

    return parse


def setting(name: str) -> Callable[[str], Any]:
    """An argparse type with the bounds of the service setting `PROMO_<NAME>`."""
    from dataflows.settings import Settings

    return checked(Settings.model_fields[name].rebuild_annotation())


def integer(minimum: int) -> Callable[[str], int]:
    return checked(Annotated[int, Field(ge=minimum)])


def fraction(text: str) -> float:
    """A share between 0 and 1."""
    return checked(Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)])(text)


def positive_number(text: str) -> float:
    return checked(Annotated[float, Field(gt=0, allow_inf_nan=False)])(text)


def existing_file(text: str) -> Path:
    """A path that is a readable regular file (not a directory)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def timestamp_ms(text: str) -> int:
    """`now`, an RFC 3339 time with an offset, or epoch milliseconds."""
    if text == "now":
        return time.time_ns() // 1_000_000
    if text.isdigit():
        return int(text)
    try:
        return parse_rfc3339_ms(text)
    except BadTimestamp:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use now, RFC 3339 such as 2026-01-01T00:00:00Z, or epoch ms)"
        ) from None
