"""Flagged addresses: an outside address that gets no automatic mail from an office, because
our mail to it bounced for good (`bouncing`) or it complained about our mail (`complained`);
either is lifted when the address writes to us again (a person asking again wants an answer).

Lifting the flags is tried for every person's mail: a prepared statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlmodel import Session, col

from storage.prepared import Prepared, table_of
from storage.tables import AddressFlag

BOUNCING, COMPLAINED = "bouncing", "complained"  # the flags (address_flags.flag)


class Flag(NamedTuple):
    """A flagged address of an office: (flag, since, reason, ticket_id)."""

    flag: str
    since: datetime
    reason: str
    ticket_id: int | None


_F = table_of(AddressFlag)
_GET_FLAG = select(_F.c.flag, _F.c.since, _F.c.reason, _F.c.ticket_id).where(
    _F.c.office_code == bindparam("office"), _F.c.address == bindparam("address")
)
_CLEAR_FLAGS = Prepared(  # run for every person's mail: the hot path
    delete(_F).where(
        _F.c.office_code == bindparam("office"),
        _F.c.address == bindparam("address"),
        or_(_F.c.flag == BOUNCING, _F.c.flag == COMPLAINED),
    )
)


def address_flag(s: Session, office: str, address: str) -> Flag | None:
    """The flag on an address for an office (bouncing, complained), or None."""
    row = s.connection().execute(_GET_FLAG, {"office": office, "address": address}).first()
    return None if row is None else Flag(*row)


def flag_address(
    s: Session, office: str, address: str, flag: str, since: datetime, reason: str, ticket_id: int | None
) -> bool:
    """Flag an address (`bouncing` or `complained`); a complaint is never downgraded to a
    bounce. Returns False when the address already had this flag (or a complaint)."""
    values = {"flag": flag, "since": since, "reason": reason, "ticket_id": ticket_id}
    old = address_flag(s, office, address)
    conn = s.connection()
    if old is None:
        conn.execute(insert(_F).values(office_code=office, address=address, **values))
        return True
    if old.flag == flag or old.flag == COMPLAINED:
        return False
    conn.execute(update(_F).where(_F.c.office_code == office, _F.c.address == address).values(**values))
    return True


def clear_address_flags(s: Session, office: str, address: str) -> bool:
    """Lift the flag (bouncing or complained) from an address; returns whether there was one."""
    return int(_CLEAR_FLAGS.run(s, {"office": office, "address": address}).rowcount) > 0


def address_flags(s: Session, office: str | None = None) -> dict[tuple[str, str], AddressFlag]:
    """Every flagged address, {(office, address): flag row}, optionally of one office."""
    query = select(AddressFlag)
    if office:
        query = query.where(col(AddressFlag.office_code) == office)
    return {(f.office_code, f.address): f for f in s.execute(query).scalars()}
