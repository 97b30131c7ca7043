"""The levels above an office: `[provinces.CODE]` (a province, and its PST head: escalation
level 2, the digest of every office of the province) and `[national]` (escalation level 3, the
digest of every office). A head has a time zone and working hours of their own: nothing is
sent to them outside those hours."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailer.settings.reader import TableReader
from mailer.settings.working_time import ZONE_LABELS, OfficeHours, read_hours


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    # The province's PST head (escalation level 2, digest of every office of the province), with
    # their own time zone and hours: notices wait for their working hours. "" = no such level.
    head: str = ""
    head_title: str = ""  # how notices and digests address the head
    time_zone: str = ""
    time_zone_label: str = ""
    hours: OfficeHours | None = None


@dataclass(frozen=True)
class NationalLevel:
    """The national level above the provinces (escalation level 3, digest of every office)."""

    name: str
    head: str
    time_zone: str
    time_zone_label: str
    hours: OfficeHours
    head_title: str = ""  # how notices and digests address the head


def read_provinces(r: TableReader) -> dict[str, Province]:
    """{code: Province} with their names only: the offices name them, and their errors come
    before those of the heads (`read_province_heads`)."""
    provinces = {}
    for code in r.data:
        table = r.table(code)
        provinces[code] = Province(code, table.text("name"))
    return provinces


def read_province_heads(r: TableReader, provinces: dict[str, Province]) -> dict[str, Province]:
    """The provinces with their PST heads, read after the offices (whose errors come first)."""
    found = {}
    for code, province in provinces.items():
        table = r.table(code)
        table.seen.add("name")
        head, zone, label, hours = _level(table, required=False)
        title = _title(table, head)
        found[code] = replace(
            province, head=head, head_title=title, time_zone=zone, time_zone_label=label, hours=hours
        )
        table.done()
    return found


def read_national(r: TableReader) -> NationalLevel | None:
    if not r.data:
        return None
    head, zone, label, hours = _level(r, required=True)
    assert hours is not None
    national = NationalLevel(r.text("name"), head, zone, label, hours, _title(r, head))
    r.done()
    return national


def _level(r: TableReader, required: bool) -> tuple[str, str, str, OfficeHours | None]:
    """(head, time zone, label, hours) of a province or the national level. A head needs the
    time zone and hours: nothing is sent to them outside their own working hours."""
    head = r.address("head", required)
    zone, label = _zone(r, required or bool(head))
    hours = read_hours(r.table("hours")) if (head or "hours" in r.data) else None
    if head and not zone:
        raise r.fail("time_zone", "missing (the head's time zone: notices wait for their working hours)")
    return head, zone, label, hours


def _title(r: TableReader, head: str) -> str:
    """The head's title, as notices and digests address them: required with a head."""
    title = str(r.text("head_title", ""))
    if head and not title:
        raise r.fail("head_title", "missing (how notices and digests address the head)")
    return title


def _zone(r: TableReader, required: bool) -> tuple[str, str]:
    """(IANA time zone, label) of a level's manager; ("", "") when absent and not required."""
    zone = str(r.text("time_zone") if required else r.text("time_zone", ""))
    if zone:
        r.known_zone("time_zone", zone)
    label = r.choice("time_zone_label", ZONE_LABELS) if zone else ""
    return zone, label
