"""The offices of the settings, mirrored into the database at each start (tickets refer to them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict

from sqlmodel import Session

from storage.tables import OfficeRow


class OfficeFacts(TypedDict):
    """An office as the settings name it (the columns of OfficeRow but updated_at)."""

    code: str
    name: str
    email: str
    province_code: str
    time_zone: str


def sync_offices(s: Session, offices: Iterable[OfficeFacts], now: datetime) -> None:
    """Insert or update the offices of the settings."""
    for office in offices:
        row = s.get(OfficeRow, office["code"])
        if row is None:
            s.add(OfficeRow(**office, updated_at=now))
        else:
            row.name, row.email = office["name"], office["email"]
            row.province_code, row.time_zone = office["province_code"], office["time_zone"]
            row.updated_at = now
