"""Threading beyond References (issue 3): Outlook's Thread-Index, who may join a ticket
(participants, linked tickets), the reopen window. The pipeline on SQLite, no mail servers."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import os
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine, func, select

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.decide import sla
from mailer.decide.threader import CONVERSATION_BYTES, outlook_hints
from mailer.delivery.render import Renderer
from mailer.errors import ConfigError
from mailer.model import FetchedMail, Outcome, Role
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings, load_settings
from storage import conversations, db
from storage.tables import MessageRow, OutboxRow, Ticket
from storage.tickets import close_ticket, list_tickets
from tests.conftest import ROOT, make_mail, office_env

_uids = itertools.count(1000)
RINA, BUDI, SARI = "rina@example.com", "budi@example.com", "sari@example.com"
FIRST_REF = "PST-3514-2026-00001"


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def fetched(raw: bytes, office: str = "3514") -> FetchedMail:
    return FetchedMail(office, "INBOX", 7, next(_uids), raw)


def tickets(engine: Engine) -> list[Ticket]:
    with db.reading(engine) as s:
        return sorted(list_tickets(s), key=lambda t: t.id or 0)


def acks(engine: Engine) -> int:
    with db.reading(engine) as s:
        return int(s.execute(select(func.count()).select_from(OutboxRow)).scalar_one())


def links(engine: Engine, ref: str) -> list[tuple[str, str, str]]:
    with db.reading(engine) as s:
        (ticket,) = [t for t in list_tickets(s) if t.ref == ref]
        assert ticket.id is not None
        return conversations.ticket_links(s, ticket.id)


def thread_index(conversation: bytes, replies: int = 0) -> str:
    """An Outlook Thread-Index: 22 bytes of conversation, 5 more per reply."""
    return base64.b64encode(conversation + b"\x01\x02\x03\x04\x05" * replies).decode()


def ack_id(engine: Engine, ref: str = FIRST_REF) -> str:
    with db.reading(engine) as s:
        ticket = s.execute(select(Ticket).where(Ticket.ref == ref)).scalar_one()
        mid = s.execute(
            select(MessageRow.message_id).where(
                MessageRow.ticket_id == ticket.id, MessageRow.direction == "out"
            )
        ).scalar_one()
    assert mid is not None
    return mid


def test_thread_index_conversation_part_is_its_first_22_bytes() -> None:
    """Replies share the first 22 bytes of Thread-Index; a broken one is ignored."""
    conversation = bytes(range(CONVERSATION_BYTES))
    first = make_mail(RINA, headers=(("Thread-Index", thread_index(conversation)),))[0]
    reply = make_mail(
        RINA, headers=(("Thread-Index", thread_index(conversation, 2)), ("Thread-Topic", "Data"))
    )[0]
    assert outlook_hints(first).conversation == outlook_hints(reply).conversation == conversation.hex()
    assert outlook_hints(reply).topic == "Data"
    assert outlook_hints(make_mail(RINA, headers=(("Thread-Index", "AQH!!"),))[0]).conversation is None
    assert outlook_hints(make_mail(RINA, headers=(("Thread-Index", "AQHZ"),))[0]).conversation is None


def test_thread_index_joins_a_reply_with_no_references_and_a_new_subject(
    pipe: Pipeline, engine: Engine
) -> None:
    """Outlook on the web: no References, an edited subject, the same Thread-Index conversation."""
    conversation = os.urandom(CONVERSATION_BYTES)
    pipe.process(fetched(make_mail(RINA, headers=(("Thread-Index", thread_index(conversation)),))[0]))
    reply = make_mail(
        RINA, subject="Pertanyaan lanjutan", headers=(("Thread-Index", thread_index(conversation, 1)),)
    )
    assert pipe.process(fetched(reply[0])) is Outcome.FOLLOWUP
    assert len(tickets(engine)) == 1 and acks(engine) == 1


def test_thread_index_of_another_conversation_does_not_join(pipe: Pipeline, engine: Engine) -> None:
    """A Thread-Index of another conversation (and a new subject) is a new request."""
    pipe.process(fetched(make_mail(RINA, headers=(("Thread-Index", thread_index(b"a" * 22)),))[0]))
    other = make_mail(RINA, subject="Data lain", headers=(("Thread-Index", thread_index(b"b" * 22, 1)),))
    assert pipe.process(fetched(other[0])) is Outcome.TICKET_CREATED


def test_subject_tag_from_a_stranger_opens_a_linked_ticket(pipe: Pipeline, engine: Engine) -> None:
    """Someone not on the ticket who writes with its tag gets a new, acknowledged ticket that
    links to the old one; the link shows both ways."""
    pipe.process(fetched(make_mail(RINA)[0]))
    stranger = make_mail(BUDI, subject=f"Re: Permohonan data [{FIRST_REF}]")[0]
    assert pipe.process(fetched(stranger)) is Outcome.TICKET_CREATED
    old, new = tickets(engine)
    assert new.requester_email == BUDI and acks(engine) == 2
    assert links(engine, new.ref) == [("from", old.ref, "not_a_participant")]
    assert links(engine, old.ref) == [("to", new.ref, "not_a_participant")]


def test_thread_index_from_a_stranger_opens_a_linked_ticket(pipe: Pipeline, engine: Engine) -> None:
    """An Outlook conversation forwarded to someone else does not bring them into the ticket."""
    conversation = os.urandom(CONVERSATION_BYTES)
    pipe.process(fetched(make_mail(RINA, headers=(("Thread-Index", thread_index(conversation)),))[0]))
    other = make_mail(
        BUDI, subject="FW: Permohonan data", headers=(("Thread-Index", thread_index(conversation, 1)),)
    )
    assert pipe.process(fetched(other[0])) is Outcome.TICKET_CREATED
    assert links(engine, tickets(engine)[1].ref) == [("from", FIRST_REF, "not_a_participant")]


def test_reply_to_our_own_message_id_is_trusted_whoever_sends(pipe: Pipeline, engine: Engine) -> None:
    """A reply to our acknowledgement's unguessable Message-ID joins even from a new address,
    which then becomes a participant."""
    pipe.process(fetched(make_mail(RINA)[0]))
    mid = ack_id(engine)
    reply = make_mail(
        BUDI, subject="Re: x", headers=(("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    )
    assert pipe.process(fetched(reply[0])) is Outcome.FOLLOWUP
    (ticket,) = tickets(engine)
    with db.reading(engine) as s:
        assert ticket.id is not None
        assert conversations.ticket_participants(s, ticket.id) == {RINA: "requester", BUDI: "cc"}


def test_reply_all_by_a_cc_person_joins(pipe: Pipeline, engine: Engine) -> None:
    """A person Cc'd on the first mail is a participant: their reply-all joins the ticket."""
    raw, mid = make_mail(RINA, headers=(("Cc", f"Sari <{SARI}>"),))
    pipe.process(fetched(raw))
    reply = make_mail(SARI, subject="Re: Permohonan data", headers=(("In-Reply-To", f"<{mid}>"),))
    assert pipe.process(fetched(reply[0])) is Outcome.FOLLOWUP


def test_stranger_citing_a_received_mail_opens_a_linked_ticket_even_replying_to_all(
    pipe: Pipeline, engine: Engine
) -> None:
    """A References match to a mail we received, from a non-participant, opens a linked ticket,
    whether or not the mail claims to be addressed to a participant (a Cc proves nothing)."""
    raw, mid = make_mail(RINA)
    pipe.process(fetched(raw))
    refs = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    alone = make_mail(BUDI, subject="Re: Permohonan data", headers=refs)[0]
    assert pipe.process(fetched(alone)) is Outcome.TICKET_CREATED
    assert links(engine, tickets(engine)[1].ref) == [("from", FIRST_REF, "not_a_participant")]
    to_all = make_mail(SARI, subject="Re: Permohonan data", headers=(*refs, ("Cc", RINA)))[0]
    assert pipe.process(fetched(to_all)) is Outcome.TICKET_CREATED
    assert links(engine, tickets(engine)[2].ref) == [("from", FIRST_REF, "not_a_participant")]
    assert tickets(engine)[0].message_count == 1


def test_reply_to_naming_someone_does_not_continue_their_linked_ticket(
    pipe: Pipeline, engine: Engine
) -> None:
    """A stranger whose mail names a requester in Reply-To does not continue the linked ticket
    opened for her: the sender must be on that ticket."""
    raw, mid = make_mail(RINA)
    pipe.process(fetched(raw))
    refs = (("In-Reply-To", f"<{mid}>"),)
    pipe.process(fetched(make_mail(BUDI, subject="Re: Permohonan data", headers=refs)[0]))
    again = make_mail(BUDI, subject="Re: Permohonan data", headers=refs)[0]
    assert pipe.process(fetched(again)) is Outcome.FOLLOWUP  # Budi continues his own linked ticket
    forged = make_mail(SARI, subject="Re: Permohonan data", headers=(*refs, ("Reply-To", BUDI)))[0]
    assert pipe.process(fetched(forged)) is Outcome.TICKET_CREATED
    assert [t.message_count for t in tickets(engine)] == [1, 2, 1]


def test_officers_answer_message_id_lets_no_stranger_in(pipe: Pipeline, engine: Engine) -> None:
    """An officer's answer carries the Message-ID their own mail client made (seen by all it went
    to, perhaps guessable): a stranger citing it opens a linked ticket; the requester joins."""
    raw, mid = make_mail(RINA)
    pipe.process(fetched(raw))
    answer, answer_id = make_mail(
        "bps3514@bps.go.id", to=RINA, subject="Re: Permohonan data", body="Data terlampir.",
        headers=(("In-Reply-To", f"<{mid}>"),),
    )  # fmt: skip
    sent = FetchedMail("3514", "Sent", 7, next(_uids), answer, None, Role.SENT)
    assert pipe.process(sent) is Outcome.FOLLOWUP
    cites = (("In-Reply-To", f"<{answer_id}>"),)
    stranger = make_mail(BUDI, subject="Re: Permohonan data", headers=cites)[0]
    assert pipe.process(fetched(stranger)) is Outcome.TICKET_CREATED
    assert links(engine, tickets(engine)[1].ref) == [("from", FIRST_REF, "not_a_participant")]
    assert pipe.process(fetched(make_mail(RINA, subject="Re: Permohonan data", headers=cites)[0])) is (
        Outcome.FOLLOWUP
    )


def test_staff_added_to_a_ticket_may_continue_it(pipe: Pipeline, engine: Engine, clock: FrozenClock) -> None:
    """An officer put on a ticket with conversations.add_staff continues it through the subject tag."""
    pipe.process(fetched(make_mail(RINA)[0]))
    with db.transaction(engine) as s:
        conversations.add_staff(s, tickets(engine)[0].id or 0, "Petugas@BPS.go.id", clock.now())
    staff = make_mail("petugas@bps.go.id", subject=f"Re: Permohonan data [{FIRST_REF}]")[0]
    assert pipe.process(fetched(staff)) is Outcome.FOLLOWUP


def test_automatic_mail_from_a_stranger_is_kept_off_the_ticket(pipe: Pipeline, engine: Engine) -> None:
    """An out-of-office reply from a non-participant carrying the tag is recorded, on no ticket."""
    pipe.process(fetched(make_mail(RINA)[0]))
    auto = make_mail(
        BUDI, subject=f"Automatic reply: [{FIRST_REF}]", headers=(("Auto-Submitted", "auto-replied"),)
    )
    assert pipe.process(fetched(auto[0])) is Outcome.RECORDED
    with db.reading(engine) as s:
        row = s.execute(select(MessageRow).where(MessageRow.from_email == BUDI)).scalar_one()
    assert row.ticket_id is None


def test_same_subject_without_reply_prefix_is_a_new_request(pipe: Pipeline, engine: Engine) -> None:
    """A second mail with the very same subject (no "Re:") is a new request, not a follow-up."""
    pipe.process(fetched(make_mail(RINA, subject="Data IPM 2024")[0]))
    assert pipe.process(fetched(make_mail(RINA, subject="Data IPM 2024")[0])) is Outcome.TICKET_CREATED


def test_subject_match_never_brings_in_new_people(pipe: Pipeline, engine: Engine) -> None:
    """A "Re:" mail of the same sender and subject that Cc's someone not on the ticket is new."""
    pipe.process(fetched(make_mail(RINA, subject="Data IPM 2024")[0]))
    reply = make_mail(RINA, subject="RE: Data IPM 2024", headers=(("Cc", BUDI),))[0]
    assert pipe.process(fetched(reply)) is Outcome.TICKET_CREATED


def test_subject_match_between_two_tickets_follows_the_quote(pipe: Pipeline, engine: Engine) -> None:
    """Two tickets of one sender with one subject: the reply joins the one whose text it quotes;
    with no telling quote it joins neither."""
    first = "Saya memerlukan data IPM per kecamatan tahun 2020 sampai 2024 untuk skripsi."
    second = "Mohon dikirimkan metadata komponen IPM (harapan lama sekolah) tahun 2023."
    pipe.process(fetched(make_mail(RINA, subject="Data IPM", body=first)[0]))
    pipe.process(fetched(make_mail(RINA, subject="Data IPM", body=second)[0]))
    quoting = make_mail(
        RINA, subject="RE: Data IPM", body=f"Tambahan.\r\n\r\nPada Sen, Rina menulis:\r\n> {first}"
    )
    assert pipe.process(fetched(quoting[0])) is Outcome.FOLLOWUP
    assert [t.message_count for t in tickets(engine)] == [2, 1]
    bare = make_mail(RINA, subject="RE: Data IPM", body="Apakah sudah ada kabar?")[0]
    assert pipe.process(fetched(bare)) is Outcome.TICKET_CREATED


def close_first(engine: Engine, clock: FrozenClock) -> None:
    with db.transaction(engine) as s:
        close_ticket(s, tickets(engine)[0].id or 0, clock.now())


def test_requester_within_reopen_window_reopens_with_a_fresh_deadline(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, settings: Settings
) -> None:
    """A reply on a closed ticket within threading.reopen_days reopens it, due from the reply."""
    raw, mid = make_mail(RINA)
    pipe.process(fetched(raw))
    close_first(engine, clock)
    clock.advance(timedelta(days=settings.threading.reopen_days - 1))
    reply = make_mail(RINA, subject="Re: Permohonan data", headers=(("In-Reply-To", f"<{mid}>"),))[0]
    assert pipe.process(fetched(reply)) is Outcome.FOLLOWUP
    (ticket,) = tickets(engine)
    assert ticket.state == "open"
    assert ticket.due_at == sla.due_at(settings.office("3514"), clock.now())
    assert acks(engine) == 1


def test_requester_after_reopen_window_gets_a_new_linked_ticket(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, settings: Settings
) -> None:
    """Past threading.reopen_days the reply opens a new, acknowledged ticket linked to the old."""
    raw, mid = make_mail(RINA)
    pipe.process(fetched(raw))
    close_first(engine, clock)
    clock.advance(timedelta(days=settings.threading.reopen_days + 1))
    reply = make_mail(RINA, subject="Re: Permohonan data", headers=(("In-Reply-To", f"<{mid}>"),))[0]
    assert pipe.process(fetched(reply)) is Outcome.TICKET_CREATED
    old, new = tickets(engine)
    assert old.state == "closed" and new.state == "open" and acks(engine) == 2
    assert links(engine, new.ref) == [("from", old.ref, "reopen_window_passed")]


@pytest.mark.parametrize("value", ["0", "-3", '"soon"'])
def test_reopen_days_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    """A wrong threading.reopen_days stops the start naming the file and the key."""
    text = (ROOT / "settings.toml").read_text().replace("reopen_days = 30", f"reopen_days = {value}")
    assert f"reopen_days = {value}" in text
    bad = tmp_path / "settings.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(bad, environ={**os.environ, **office_env()})
    assert "threading.reopen_days" in str(raised.value) and str(bad) in str(raised.value)


def test_reopen_days_is_read_from_the_settings(tmp_path: Path) -> None:
    """threading.reopen_days as written in the file is the window used."""
    text = (ROOT / "settings.toml").read_text().replace("reopen_days = 30", "reopen_days = 9.5")
    (tmp_path / "settings.toml").write_text(text)
    loaded = load_settings(tmp_path / "settings.toml", environ={**os.environ, **office_env()})
    assert dataclasses.asdict(loaded.threading)["reopen_days"] == 9.5


def test_show_lists_people_and_links_both_ways(
    tmp_path: Path, clock: FrozenClock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mailer show` prints a ticket's participants and its links, on the old and the new ticket."""
    from mailer.operator import cli

    text = (
        (ROOT / "settings.toml").read_text().replace('"var/pst-mailer.sqlite3"', f'"{tmp_path}/show.sqlite3"')
    )
    (tmp_path / "settings.toml").write_text(text)
    settings = load_settings(tmp_path / "settings.toml", environ={**os.environ, **office_env()})
    engine = open_database(settings, clock)
    pipe = Pipeline(settings, engine, Renderer(), clock)
    pipe.process(fetched(make_mail(RINA, headers=(("Cc", SARI),))[0]))
    pipe.process(fetched(make_mail(BUDI, subject=f"Re: Permohonan data [{FIRST_REF}]")[0]))
    engine.dispose()
    for name, value in office_env().items():  # the cli reads the passwords from the environment
        monkeypatch.setenv(name, value)
    logging = structlog.get_config()  # the cli configures logging onto the captured stderr
    try:
        assert cli.main(["--settings", str(tmp_path / "settings.toml"), "show", FIRST_REF]) == 0
        old = capsys.readouterr().out
        assert cli.main(["--settings", str(tmp_path / "settings.toml"), "show", "PST-3514-2026-00002"]) == 0
        new = capsys.readouterr().out
    finally:
        structlog.configure(**logging)
    assert f"{RINA} (requester)" in old and f"{SARI} (cc)" in old
    assert "link      : followed by PST-3514-2026-00002 (not a participant)" in old
    assert f"link      : opened from {FIRST_REF} (not a participant)" in new


def test_stranger_writing_again_with_the_tag_continues_their_linked_ticket(
    pipe: Pipeline, engine: Engine
) -> None:
    """A non-participant's second mail with the old tag joins the ticket opened for their first,
    instead of opening (and acknowledging) one more."""
    pipe.process(fetched(make_mail(RINA)[0]))
    for _ in range(2):
        pipe.process(fetched(make_mail(BUDI, subject=f"Re: Permohonan data [{FIRST_REF}]")[0]))
    old, new = tickets(engine)
    assert (old.message_count, new.message_count) == (1, 2)
    assert acks(engine) == 2


def test_requester_after_reopen_window_writing_twice_gets_one_new_ticket(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, settings: Settings
) -> None:
    """Two mails on a long-closed ticket: the second joins the new ticket the first opened."""
    raw, mid = make_mail(RINA)
    pipe.process(fetched(raw))
    close_first(engine, clock)
    clock.advance(timedelta(days=settings.threading.reopen_days + 1))
    for _ in range(2):
        reply = make_mail(RINA, subject="Re: Permohonan data", headers=(("In-Reply-To", f"<{mid}>"),))[0]
        pipe.process(fetched(reply))
    assert [t.message_count for t in tickets(engine)] == [1, 2]


def test_no_subject_placeholder_never_matches_by_subject(pipe: Pipeline, engine: Engine) -> None:
    """Two "Re: (tanpa subjek)" replies without references (to two subjectless mails) are not
    one conversation: the placeholder names none."""
    pipe.process(fetched(make_mail(RINA, subject="Re: (tanpa subjek)", body="Soal data IPM.")[0]))
    other = make_mail(RINA, subject="RE: (tanpa subjek)", body="Soal data inflasi.")[0]
    assert pipe.process(fetched(other)) is Outcome.TICKET_CREATED
