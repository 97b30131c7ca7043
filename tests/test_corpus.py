"""Public test mail (imap_tools' 113 messages, ~30 deliberately malformed) through the real
stack: nothing crashes, nothing is lost, every mail is kept whole."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import select

from mailer.daemon import Daemon
from mailer.intake.parse import parse
from mailer.pipeline.reading import dedupe_key
from mailer.settings import Settings
from storage import db
from storage.tables import DeadLetter, MessageRow
from tests import mailstack
from tests.conftest import SHARED

CORPUS = SHARED / "corpora" / "imap_tools" / "messages"
pytestmark = [
    pytest.mark.mailstack,
    pytest.mark.shared,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no public corpus at {CORPUS} (clone without ../shared)"),
    pytest.mark.usefixtures("office_mailboxes"),
]
OFFICE = "bps3576@bps.go.id"


def test_every_imap_tools_message_is_ingested_whole(settings: Settings) -> None:
    """Each of the corpus' messages ends up stored (or dead-lettered) with its exact bytes."""
    import dataclasses

    files = sorted(CORPUS.rglob("*.eml"))
    assert len(files) >= 100
    for path in files:
        mailstack.append(OFFICE, path.read_bytes())
    quiet = dataclasses.replace(settings, outbox=dataclasses.replace(settings.outbox, enabled=False))
    daemon = Daemon(quiet)
    try:
        report = asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    assert report.errors == {}
    engine = db.make_engine(quiet.database_url)
    with db.reading(engine) as s:
        stored = list(
            s.execute(
                select(MessageRow.raw_sha256, MessageRow.raw).where(
                    MessageRow.office_code == "3576", MessageRow.direction == "in"
                )
            )
        )
        dead = list(s.execute(select(DeadLetter.raw_sha256, DeadLetter.raw, DeadLetter.error)))
    assert all(hashlib.sha256(raw).hexdigest() == sha for sha, raw, *_ in [*stored, *dead])
    assert dead == [], f"dead letters: {[e for *_, e in dead]}"
    assert sum(report.fetched["3576"].values()) == len(files)
    kept = {sha for sha, _ in stored}
    kept_keys = {dedupe_key(parse(raw).message_id, raw, parse(raw)) for _, raw in stored}
    for raw, _flags in mailstack.fetch_all(OFFICE):
        sha = hashlib.sha256(raw).hexdigest()
        mail = parse(raw)
        assert sha in kept or dedupe_key(mail.message_id, raw, mail) in kept_keys, mail.subject
    assert len(kept) >= 90  # the rest are copies of the same mail (byte-identical or nearly)
