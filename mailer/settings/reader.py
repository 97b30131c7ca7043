"""Typed access to one TOML table of `settings.toml`, every problem a ConfigError naming the
file, the dotted key and the reason.

A `TableReader` remembers which keys it was asked for; `done()` then refuses the others, so
that a misspelt key stops the start instead of silently falling back to a default. `fill()`
reads a section whose dataclass is its schema: each field is a key, its default the value
when the key is absent.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REQUIRED = object()


class TableReader:
    """Typed access to one TOML table, raising ConfigError with the dotted key."""

    def __init__(self, file: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.file, self.data, self.prefix = file, data, prefix
        self.seen: set[str] = set()

    def done(self) -> None:
        """Refuse keys nobody read: a misspelt key must not silently fall back to a default."""
        for name in self.data:
            if name not in self.seen:
                raise self.fail(name, "unknown key (misspelt?)")

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(str(self.file), self.key(name), reason)

    def fail_table(self, reason: str) -> ConfigError:
        """The error for this table as a whole (its own dotted name as the key)."""
        return ConfigError(str(self.file), self.prefix.rstrip("."), reason)

    def table(self, name: str, required: bool = True) -> TableReader:
        """A reader for the sub-table `name` (empty when absent and not required)."""
        self.seen.add(name)
        value = self.data.get(name, None if required else {})
        if not isinstance(value, dict):
            raise self.fail(name, "missing table" if value is None else "must be a table")
        return TableReader(self.file, value, self.key(name) + ".")

    def _get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise self.fail(name, "missing")
            return default
        value = self.data[name]
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(name, f"must be {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def text(self, name: str, default: Any = None) -> Any:
        value = self._get(name, str, _REQUIRED if default is None else default)
        return value.strip() if isinstance(value, str) else value

    def integer(self, name: str, default: Any = None, minimum: int = 0) -> int:
        value = int(self._get(name, int, _REQUIRED if default is None else default))
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float | None = None, minimum: float = 0.0) -> float:
        value = float(self._get(name, (int, float), _REQUIRED if default is None else default))
        if value <= minimum:
            raise self.fail(name, f"must be greater than {minimum}, got {value}")
        return value

    def strings(self, name: str) -> list[str]:
        """A list of non-empty strings (empty when absent)."""
        value = self._get(name, list, [])
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise self.fail(name, "must be a list of non-empty strings")
        return [item.strip() for item in value]

    def flag(self, name: str, default: bool) -> bool:
        return bool(self._get(name, bool, default))

    def choice(self, name: str, choices: tuple[str, ...], default: Any = None) -> str:
        value = str(self.text(name, default))
        if value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def address(self, name: str, required: bool = False) -> str:
        """An email address (lower-cased); "" when absent and not required."""
        value = str(self.text(name) if required else self.text(name, "")).lower()
        if value and not EMAIL.match(value):
            raise self.fail(name, f"not an email address: {value!r}")
        return value

    def addresses(self, name: str) -> tuple[str, ...]:
        """A list of email addresses (lower-cased; empty when absent)."""
        addresses = [a.lower() for a in self.strings(name)]
        for i, address in enumerate(addresses):
            if not EMAIL.match(address):
                raise self.fail(f"{name}[{i}]", f"not an email address: {address!r}")
        return tuple(addresses)

    def known_zone(self, name: str, zone: str) -> str:
        """`zone`, read from `name`, if it is an IANA time zone name ("Asia/Jakarta")."""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(name, f"unknown IANA time zone {zone!r}") from None
        return zone

    def fill(self, cls: type[D], **read: Any) -> D:
        """A `cls` from this table, then `done()`. The fields in `read` are the caller's (read
        and checked by it, in its order); every other field is read here, in field order, as
        the key of its name by the type of its default: true/false, an integer of at least 1,
        a number above 0."""
        for f in dataclasses.fields(cls):
            if f.name not in read:
                read[f.name] = self._plain(f.name, f.default)
        self.done()
        return cls(**read)

    def _plain(self, name: str, default: object) -> bool | int | float:
        if isinstance(default, bool):
            return self.flag(name, default)
        if isinstance(default, int):
            return self.integer(name, default, minimum=1)
        if isinstance(default, float):
            return self.number(name, default)
        raise TypeError(f"fill() cannot read {name!r} (default {default!r}): pass it in")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
