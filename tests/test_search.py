"""Search of past consultations (`mailer search`): closed tickets found by their text, ranked,
on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db, search, tickets
from tests.conftest import make_mail
from tests.test_staff import run_cli

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"


def consult(pipe: Pipeline, sender: str, subject: str, question: str, answer: str, close: bool = True) -> str:
    """A request, an officer's answer, and (if `close`) #selesai; returns the ticket reference."""
    raw, mid = make_mail(sender, subject=subject, body=question)
    pipe.process(FetchedMail("3514", "INBOX", 1, next(_uids), raw))
    reply = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    raw, _ = make_mail(
        "dewi@bps.go.id", to=sender, subject=f"Re: {subject}", body=answer, headers=(*reply, ("Cc", OFFICE))
    )
    pipe.process(FetchedMail("3514", "INBOX", 1, next(_uids), raw))
    if close:
        raw, _ = make_mail(
            "dewi@bps.go.id", to=OFFICE, subject=f"Re: {subject}", body="#selesai", headers=reply
        )
        pipe.process(FetchedMail("3514", "INBOX", 1, next(_uids), raw))
    with db.reading(pipe.engine) as s:
        return tickets.list_tickets(s, limit=1)[0].ref


def corpus(pipe: Pipeline) -> dict[str, str]:
    return {
        "poverty": consult(
            pipe,
            "rina@example.com",
            "Data kemiskinan kabupaten",
            "Mohon data jumlah penduduk miskin per kecamatan 2024.",
            "Data penduduk miskin per kecamatan tersedia di publikasi Kecamatan Dalam Angka.",
        ),
        "inflation": consult(
            pipe,
            "budi@example.com",
            "Inflasi bulanan",
            "Berapa inflasi bulan Oktober?",
            "Inflasi Oktober 2026 sebesar 0,21 persen (month to month).",
        ),
        "open": consult(
            pipe,
            "sari@example.com",
            "Penduduk miskin 2023",
            "Data penduduk miskin 2023?",
            "Sedang kami siapkan.",
            close=False,
        ),
    }


def test_search_finds_closed_ticket_by_its_answer(pipe: Pipeline) -> None:
    """Words from the officer's answer find the closed ticket, with an excerpt around them."""
    refs = corpus(pipe)
    with db.reading(pipe.engine) as s:
        hits = search.search_tickets(s, "kecamatan dalam angka")
    assert [h.ref for h in hits] == [refs["poverty"]]
    assert "[Kecamatan]" in hits[0].snippet or "[kecamatan]" in hits[0].snippet.lower()


def test_search_leaves_out_open_tickets(pipe: Pipeline) -> None:
    """Only closed tickets are past consultations: an open ticket with the words is not listed."""
    refs = corpus(pipe)
    with db.reading(pipe.engine) as s:
        found = [h.ref for h in search.search_tickets(s, "penduduk miskin")]
    assert found == [refs["poverty"]]


def test_search_ranks_subject_match_first(pipe: Pipeline) -> None:
    """A ticket whose subject has the word ranks above one that only mentions it in the text."""
    first = consult(
        pipe, "a@example.com", "Pertanyaan umum", "Apa itu inflasi inti?", "Inflasi inti adalah …"
    )
    second = consult(pipe, "b@example.com", "Inflasi tahunan", "Berapa inflasi tahunan?", "2,3 persen.")
    with db.reading(pipe.engine) as s:
        assert [h.ref for h in search.search_tickets(s, "inflasi")][:2] == [second, first]


def test_search_matches_word_starts_and_any_case(pipe: Pipeline) -> None:
    """ "INFLA" finds "inflasi": words match as prefixes, case folded."""
    refs = corpus(pipe)
    with db.reading(pipe.engine) as s:
        assert [h.ref for h in search.search_tickets(s, "INFLA")] == [refs["inflation"]]


def test_search_ignores_query_syntax(pipe: Pipeline) -> None:
    """Quotes, stars and operators in what staff type are not query syntax (no error)."""
    corpus(pipe)
    with db.reading(pipe.engine) as s:
        assert search.search_tickets(s, '"inflasi*') != []
        assert search.search_tickets(s, "inflasi) AND (") == []  # "and" is a word here, found nowhere
        assert search.search_tickets(s, '"*"') == []


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def test_search_on_postgresql(postgres: Settings, clock: FrozenClock) -> None:
    """The same search on PostgreSQL's full-text index."""
    engine = open_database(postgres, clock)
    try:
        pipe = Pipeline(postgres, engine, Renderer(), clock)
        refs = corpus(pipe)
        clock.advance(timedelta(minutes=1))
        with db.reading(engine) as s:
            assert [h.ref for h in search.search_tickets(s, "kecamatan dalam angka")] == [refs["poverty"]]
            assert [h.ref for h in search.search_tickets(s, "penduduk miskin")] == [refs["poverty"]]
            assert [h.ref for h in search.search_tickets(s, "INFLA")] == [refs["inflation"]]
    finally:
        engine.dispose()


def test_search_command_prints_hits(
    tmp_path: Path, pipe: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mailer search WORDS` lists the matching closed tickets with an excerpt; exit 1 if none."""
    refs = corpus(pipe)
    assert run_cli(tmp_path, monkeypatch, "search", "inflasi", "oktober") == 0
    out = capsys.readouterr().out
    assert refs["inflation"] in out and "[Oktober]" in out and "(1 closed ticket found" in out
    assert run_cli(tmp_path, monkeypatch, "search", "sensus", "pertanian") == 1


def test_a_ticket_closed_after_quiet_days_is_found(
    pipe: Pipeline, settings: Settings, clock: FrozenClock
) -> None:
    """The 7-quiet-days closing indexes the ticket as #selesai does: `search` finds it."""
    from mailer.timed import closing

    ref = consult(
        pipe,
        "rina@example.com",
        "Data curah hujan",
        "Mohon data curah hujan bulanan.",
        "Data curah hujan ada di Statistik Daerah.",
        close=False,
    )
    clock.advance(timedelta(days=10))
    assert dict(closing.close_quiet(settings, pipe.engine, Renderer(), clock)).get("closed") == 1
    with db.reading(pipe.engine) as s:
        assert [h.ref for h in search.search_tickets(s, "curah hujan")] == [ref]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_indexes_tickets_the_old_sweep_closed(
    backend: str, settings: Settings, clock: FrozenClock, request: pytest.FixtureRequest
) -> None:
    """Migration 0016 puts a closed ticket missing from the index into it (SQLite and PostgreSQL)."""
    used = request.getfixturevalue("postgres") if backend == "postgresql" else settings
    engine = open_database(used, clock)
    try:
        ref = consult(
            Pipeline(used, engine, Renderer(), clock),
            "rina@example.com",
            "Data curah hujan",
            "Mohon data curah hujan bulanan.",
            "Data curah hujan ada di Statistik Daerah.",
        )
        key = "rowid" if engine.dialect.name == "sqlite" else "ticket_id"
        with engine.begin() as conn:  # as the old sweep left it: closed, not indexed
            conn.exec_driver_sql(f"DELETE FROM ticket_search WHERE {key} IN (SELECT id FROM tickets)")
            head = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0015'")
        with db.reading(engine) as s:
            assert search.search_tickets(s, "curah hujan") == []
        db.migrate(engine, "0016")  # only this migration again (the later ones are in place)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{head}'")
        with db.reading(engine) as s:
            assert [h.ref for h in search.search_tickets(s, "curah hujan")] == [ref]
    finally:
        engine.dispose()
