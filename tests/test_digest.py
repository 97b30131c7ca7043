"""Managers' digests on SQLite: who covers which offices, content and grouping, when one is due,
once per manager and day, an empty day sends nothing; the mail's HTML and the preview command."""

from __future__ import annotations

import dataclasses
import email
import os
import re
import subprocess
from datetime import datetime
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.delivery.render import Renderer
from mailer.settings import Settings
from mailer.timed import digest, notify
from mailer.timed.sweep import Sweeper
from storage import db, tickets
from storage.tables import DigestRow, MessageRow
from tests.conftest import ROOT, office_env
from tests.test_escalate import MON, at, open_ticket

HEAD_3514 = "placeholder.kepala3514@bps.go.id"
JATIM = "placeholder.kepala.pst3500@bps.go.id"
NATIONAL = "placeholder.kepala.pst@bps.go.id"


def manager(settings: Settings, address: str) -> digest.Manager:
    found = digest.manager_by_address(settings, address)
    assert found is not None
    return found


def compose(settings: Settings, engine: Engine, address: str, now: datetime) -> digest.Digest:
    m = manager(settings, address)
    with db.reading(engine) as s:
        return Sweeper(settings, engine, Renderer(), FrozenClock(now)).compose(s, m, now.date(), now)


@pytest.mark.parametrize(
    ("address", "offices"),
    [
        (HEAD_3514, ["3514"]),
        (JATIM, ["3571", "3576", "3514"]),  # every regency/city office of Jawa Timur
        ("placeholder.kepala.pst8200@bps.go.id", ["8205"]),
        (NATIONAL, ["3571", "3576", "3514", "8205", "1808"]),
    ],
)
def test_managers_cover_the_offices_below_them(settings: Settings, address: str, offices: list[str]) -> None:
    """Head of office: the office; province PST head: the province's offices; national: all."""
    assert [o.code for o in manager(settings, address).offices] == offices


def test_digest_groups_overdue_and_due_today_by_office(settings: Settings, engine: Engine) -> None:
    """A province head's digest counts and lists every office of the province, overdue and due
    today apart, with reference, requester, working days late, officer and an excerpt."""
    late = open_ticket(settings, engine, "3514", MON)  # due Wed 25 Nov 10:00
    today = open_ticket(settings, engine, "3571", at("2026-11-25", "11:00"))  # due Fri 27 Nov 11:00
    open_ticket(settings, engine, "3576", at("2026-11-27", "09:00"))  # due Tue 1 Dec: not yet
    open_ticket(settings, engine, "8205", at("2026-11-23", "08:00"))  # another province
    with db.transaction(engine) as s:
        found = tickets.ticket_by_ref(s, late)
        assert found is not None
        tickets.change_ticket(s, found.id, state="open", at=MON, officer="andi@bps.go.id")
    d = compose(settings, engine, JATIM, at("2026-11-27", "08:00"))
    counts = {s.office.code: (s.overdue, s.due_today) for s in d.sections}
    assert counts == {"3571": (0, 1), "3576": (0, 0), "3514": (1, 0)}
    lines = {line.ref: line for s in d.sections for line in s.lines}
    assert set(lines) == {late, today}
    assert (lines[late].days_late, lines[late].overdue, lines[late].officer) == (2, True, "andi@bps.go.id")
    assert (lines[today].days_late, lines[today].overdue, lines[today].officer) == (0, False, "belum ada")
    assert lines[late].excerpt.startswith("Saya mohon data jumlah penduduk miskin")
    assert "Rina" in lines[late].requester and "Salam" not in lines[late].excerpt


def test_digest_lists_at_most_the_configured_tickets_but_counts_all(
    settings: Settings, engine: Engine
) -> None:
    """digest.max_tickets_per_office caps the list, never the counts."""
    capped = dataclasses.replace(
        settings, digest=dataclasses.replace(settings.digest, max_tickets_per_office=2)
    )
    for _ in range(3):
        open_ticket(settings, engine, "3514", MON)
    (section,) = compose(capped, engine, HEAD_3514, at("2026-11-27", "08:00")).sections
    assert (section.overdue, len(section.lines), section.more) == (3, 2, 1)


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (at("2026-11-27", "07:59"), None),  # before digest.local_time (08:00)
        (at("2026-11-27", "08:00"), "2026-11-27"),
        (at("2026-11-27", "15:59"), "2026-11-27"),  # late, but the manager is still at work
        (at("2026-11-27", "16:00"), None),  # after their closing: that day's digest is skipped
        (at("2026-11-28", "09:00"), None),  # Saturday
        (at("2026-12-24", "09:00"), None),  # Christmas joint leave
    ],
)
def test_digest_is_due_on_working_mornings(settings: Settings, now: datetime, day: str | None) -> None:
    """A digest goes on the manager's working days, from the configured local time to closing."""
    found = digest.digest_day(manager(settings, HEAD_3514), settings.digest.local_time, now)
    assert (found.isoformat() if found else None) == day


def test_digest_follows_the_managers_time_zone(settings: Settings) -> None:
    """08:00 WIB is 10:00 WIT: Maluku Utara's head got theirs; 06:00 WIB is too early for Jakarta."""
    wit_head = manager(settings, "placeholder.kepala.pst8200@bps.go.id")
    assert digest.digest_day(wit_head, "08:00", at("2026-11-27", "06:30")) is not None  # 08:30 WIT
    assert digest.digest_day(manager(settings, NATIONAL), "08:00", at("2026-11-27", "06:30")) is None


def digests(engine: Engine) -> list[tuple[str, str, int, bool]]:
    with db.reading(engine) as s:
        rows = s.execute(select(DigestRow).order_by(DigestRow.id)).scalars().all()  # type: ignore[arg-type]
    return [(r.manager, r.day, r.tickets, r.outbox_id is not None) for r in rows]


def test_one_digest_per_manager_and_day_and_none_when_empty(settings: Settings, engine: Engine) -> None:
    """Sweeping all morning sends each manager with something to report one digest; the others
    get none (recorded, so the day is not looked at again)."""
    open_ticket(settings, engine, "3514", MON)
    for hhmm in ("08:00", "08:01", "11:00"):
        Sweeper(settings, engine, Renderer(), FrozenClock(at("2026-11-27", hhmm))).run_once()
    sent = {m for m, _, _, queued in digests(engine) if queued}
    empty = {m for m, _, n, queued in digests(engine) if not queued and n == 0}
    assert sent == {HEAD_3514, JATIM, NATIONAL}
    assert "placeholder.kepala3571@bps.go.id" in empty and len(digests(engine)) == len(sent | empty)
    with db.reading(engine) as s:
        kinds = s.execute(select(MessageRow.kind).where(MessageRow.kind == "digest")).scalars().all()  # type: ignore[arg-type]
    assert len(kinds) == 3


def test_empty_digest_is_sent_when_configured(settings: Settings, engine: Engine) -> None:
    """digest.send_empty = true: a quiet day still gets its digest, saying so."""
    loud = dataclasses.replace(settings, digest=dataclasses.replace(settings.digest, send_empty=True))
    Sweeper(loud, engine, Renderer(), FrozenClock(at("2026-11-27", "08:00"))).run_once()
    assert all(queued for _, _, _, queued in digests(engine)) and len(digests(engine)) >= 7


def test_digest_mail_html_renders_in_gmail_and_outlook(settings: Settings, engine: Engine) -> None:
    """The digest is multipart/alternative with a text part and an HTML part built of tables and
    inline styles: no CSS classes, no <style> block, no external images or stylesheets."""
    open_ticket(settings, engine, "3514", MON)
    Sweeper(settings, engine, Renderer(), FrozenClock(at("2026-11-27", "08:00"))).run_once()
    with db.reading(engine) as s:
        raw = s.execute(
            select(MessageRow.raw).where(MessageRow.kind == "digest", MessageRow.to_emails == HEAD_3514)  # type: ignore[arg-type]
        ).scalar_one()
    mail = email.message_from_bytes(raw, policy=policy.default)
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert mail["Auto-Submitted"] == "auto-generated" and mail["X-PST-Notice"] == "digest"
    assert "<table" in html and 'style="' in html
    assert not re.search(r"\sclass=|<style|<link|<img|<script", html)
    assert "BPS Kabupaten Pasuruan" in html and "PST-3514-2026-" in text and "terlambat 2 hari kerja" in text


def test_preview_command_renders_without_sending(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """`mailer digest --manager --at --preview [--html]` prints the digest / writes the HTML
    and queues nothing."""
    ref = open_ticket(settings, engine, "3514", MON)
    config = tmp_path / "settings.toml"
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    config.write_text(text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{tmp_path / "pst.sqlite3"}"'))
    env = {**os.environ, **office_env()}
    command = [str(ROOT / ".venv/bin/mailer"), "--settings", str(config), "digest", "--manager", JATIM]
    command += ["--at", "2026-11-27T09:00", "--preview"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert ref in done.stdout and "BPS Kota Mojokerto" in done.stdout
    html_file = tmp_path / "digest.html"
    done = subprocess.run(
        [*command, "--html", str(html_file)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0 and ref in html_file.read_text(encoding="utf-8")
    assert digests(engine) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yth. Bapak/Ibu,\n\nMohon data IPM 2024.\n\nTerima kasih,\nRina", "Mohon data IPM 2024."),
        ("Mohon data IPM.\n\nPada Sen, 23 Nov 2026 Dewi menulis:\n> lama", "Mohon data IPM."),
        ("Halo,\nTerima kasih\nRina", "Halo, Terima kasih Rina"),  # nothing but courtesy: all of it
        ("Data " + "x" * 200 + "\nbaris berikut", "Data " + "x" * 114 + "…"),
        ("Mohon tabel inflasi\n--\nRina, Universitas", "Mohon tabel inflasi"),
    ],
    ids=["greeting-and-closing", "quote", "only-courtesy", "long-line", "signature-delimiter"],
)
def test_excerpt_is_what_they_asked(text: str, expected: str) -> None:
    """A digest line's excerpt: the request without greeting, closing, signature or quote, cut
    at the excerpt length."""
    assert digest.excerpt(text) == expected


def test_digest_says_due_today_only_on_the_due_day_and_past_due_not_zero_days_late(
    settings: Settings, engine: Engine
) -> None:
    """Saturday 5 Dec 14:49 to Pasuruan is due Tuesday 8 Dec 15:30: Monday's digest does not list
    it, Tuesday's says "jatuh tempo hari ini", Wednesday's "terlambat 1 hari kerja"; a ticket due
    Wednesday 08:00 itself (received Monday 08:00) reads "lewat tenggat" at 08:00, never
    "terlambat 0 hari kerja"."""
    saturday = open_ticket(settings, engine, "3514", at("2026-12-05", "14:49"))
    at_opening = open_ticket(settings, engine, "3514", at("2026-12-07", "08:00"))

    def state(day: str, ref: str) -> str:
        """What the 08:00 digest of `day` says of ticket `ref` ("" when it is not listed)."""
        d = compose(settings, engine, HEAD_3514, at(day, "08:00"))
        _, text, _ = notify.digest_parts(Renderer(), d, at(day, "08:00"))
        block = text.split(ref, 1)[1].split("\n- ", 1)[0] if ref in text else ""
        return " ".join(block.split())

    assert state("2026-12-07", saturday) == ""  # Monday: neither late nor due that day
    assert "(jatuh tempo hari ini)" in state("2026-12-08", saturday)
    assert "(terlambat 1 hari kerja)" in state("2026-12-09", saturday)
    assert "(lewat tenggat)" in state("2026-12-09", at_opening)
    assert "terlambat 0" not in state("2026-12-09", at_opening)
