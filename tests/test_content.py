"""What is stored of a mail's content: the text the person wrote beside the full text, and the
attachments (safe names, size cap, hashes), on a real SQLite database without mail servers."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.tables import AttachmentRow, MessageRow
from tests.conftest import make_mail, office_env

_uids = itertools.count(1)
REPLY = (
    "Baik, terima kasih. Mohon datanya dalam format Excel.\r\n\r\nSalam,\r\nRina\r\n\r\n"
    "Dikirim dari iPhone saya\r\n\r\n"
    "Pada Sen, 23 Nov 2026 pukul 09.12 BPS Kabupaten Pasuruan <bps3514@bps.go.id>\r\nmenulis:\r\n\r\n"
    "> Yth. Rina,\r\n> Permintaan Anda telah kami terima dengan nomor PST-3514-2026-00001.\r\n"
)


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def fetched(raw: bytes, office: str = "3514") -> FetchedMail:
    return FetchedMail(office, "INBOX", 7, next(_uids), raw)


def stored_messages(engine: Engine) -> list[MessageRow]:
    """The incoming messages, in order."""
    with db.reading(engine) as s:
        query = select(MessageRow).where(MessageRow.direction == "in").order_by(MessageRow.id)
        return list(s.execute(query).scalars())


def test_stored_text_is_what_the_person_wrote_and_the_full_text_is_kept(
    pipe: Pipeline, engine: Engine
) -> None:
    """body_trimmed holds the reply without the quoted history and phone signature; body_text
    keeps the whole decoded text."""
    raw, _ = make_mail("rina@example.com", subject="Re: Data kemiskinan", body=REPLY)
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    (message,) = stored_messages(engine)
    assert message.body_trimmed == "Baik, terima kasih. Mohon datanya dalam format Excel.\n\nSalam,\nRina"
    assert "> Permintaan Anda telah kami terima" in message.body_text
    assert "Dikirim dari iPhone saya" in message.body_text


def test_show_prints_the_trimmed_text_and_the_full_text_on_request(
    pipe: Pipeline, settings: Settings, tmp_path: Path
) -> None:
    """`mailer show REF` shows what the person wrote; `--full` shows the quoted history too."""
    raw, _ = make_mail("rina@example.com", subject="Re: Data kemiskinan", body=REPLY)
    pipe.process(fetched(raw))
    short = show(settings, tmp_path, "PST-3514-2026-00001")
    assert "Mohon datanya dalam format Excel." in short
    assert "Permintaan Anda telah kami terima" not in short
    assert "--full shows them" in short
    assert "> Permintaan Anda telah kami terima" in show(settings, tmp_path, "PST-3514-2026-00001", "--full")


def show(settings: Settings, tmp_path: Path, *args: str) -> str:
    """What `mailer show …` prints, run as a command on this test's database."""
    settings_file = str(_settings_file(settings, tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "mailer", "--settings", settings_file, "show", *args],
        env={**os.environ, **office_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _settings_file(settings: Settings, tmp_path: Path) -> Path:
    """The shipped settings.toml with the storage path pointed at this test's database."""
    shipped = Path(__file__).resolve().parents[1] / "settings.toml"
    lines = shipped.read_text(encoding="utf-8").splitlines()
    database = settings.database_url.removeprefix("sqlite:///")
    out = [f'path = "{database}"' if line.startswith("path = ") else line for line in lines]
    target = tmp_path / "settings.toml"
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


def test_upgrade_from_0002_fills_the_trimmed_text_of_older_messages(
    settings: Settings, clock: FrozenClock
) -> None:
    """Messages stored before revision 0004 get their full text as the trimmed text."""
    from alembic import command
    from alembic.config import Config

    engine = db.make_engine(settings.database_url)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.execute(
            text("INSERT INTO offices VALUES ('3514', 'BPS', 'b@bps.go.id', '3500', 'Asia/Jakarta', :at)"),
            {"at": "2026-11-23 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO messages (office_code, direction, kind, reason, dedupe_key, from_email, "
                "from_name, to_emails, subject, stored_at, body_text, defects, raw_sha256, raw) VALUES "
                "('3514', 'in', 'request', '', 'k', 'a@example.com', '', '', 'Data', :at, 'Isi lama', '', "
                "'x', :raw)"
            ),
            {"at": "2026-11-23 00:00:00", "raw": b"Subject: Data\r\n\r\nIsi lama\r\n"},
        )
    engine.dispose()
    upgraded = open_database(settings, clock)
    try:
        (message,) = stored_messages(upgraded)
        assert message.body_trimmed == "Isi lama"
    finally:
        upgraded.dispose()


OUTLOOK_HTML_ONLY = (
    '<html><body><div class="WordSection1"><p class="MsoNormal">Terima kasih, datanya sudah saya '
    'terima.<o:p></o:p></p><p class="MsoNormal">Salam,<br>Budi<o:p></o:p></p><div><div style="border:none;'
    'border-top:solid #E1E1E1 1.0pt"><p class="MsoNormal"><b>Dari:</b> BPS Kota Kediri &lt;bps3571@bps.go.id'
    "&gt;<br><b>Dikirim:</b> Senin, 23 November 2026 10.00<br><b>Kepada:</b> budi@example.com<br>"
    '<b>Subjek:</b> Re: Data inflasi<o:p></o:p></p></div></div><p class="MsoNormal">Yth. Budi, berikut '
    "data inflasi Kota Kediri 2025.<o:p></o:p></p></div></body></html>"
)


def test_html_only_outlook_reply_is_stored_as_readable_trimmed_text(pipe: Pipeline, engine: Engine) -> None:
    """An HTML-only Outlook reply becomes text, and its "Dari: / Dikirim: / Kepada: / Subjek:"
    block with the old mail below is trimmed."""
    raw = (
        "From: Budi <budi@example.com>\r\nTo: bps3571@bps.go.id\r\nSubject: RE: Data inflasi\r\n"
        "Message-ID: <html-only-1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + OUTLOOK_HTML_ONLY
    ).encode()
    pipe.process(fetched(raw, office="3571"))
    (message,) = stored_messages(engine)
    assert message.body_trimmed == "Terima kasih, datanya sudah saya terima.\n\nSalam,\nBudi"
    assert "Yth. Budi, berikut data inflasi Kota Kediri 2025." in message.body_text
    assert "<" not in message.body_text.replace("<bps3571@bps.go.id>", "")


def test_mail_with_nul_characters_is_stored_on_postgresql(postgres: Settings, clock: FrozenClock) -> None:
    """On PostgreSQL (no NUL in text columns) a mail with NULs in its text, subject and file
    name is stored with its ticket and attachment, not dead-lettered."""
    from tests.test_charsets import NUL_MAIL

    engine = open_database(postgres, clock)
    try:
        pipe = Pipeline(postgres, engine, Renderer(), clock)
        assert pipe.process(fetched(NUL_MAIL)) is Outcome.TICKET_CREATED
        (message,) = stored_messages(engine)
        assert (message.body_text, message.raw) == ("Isi\ufffdteks", NUL_MAIL)
        with db.reading(engine) as s:
            (name,) = s.execute(select(AttachmentRow.original_filename)).scalars()
        assert name == "a\ufffdb.pdf"
    finally:
        engine.dispose()
