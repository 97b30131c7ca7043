"""Closing quiet tickets, ratings and complaints: the pure rules (tables of cases) and what they
do through the pipeline and the closing pass, on a real SQLite database, without mail servers."""

from __future__ import annotations

import dataclasses
import email
import itertools
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.decide import complaint, rating
from mailer.delivery.render import Renderer
from mailer.errors import ConfigError
from mailer.model import Address, FetchedMail, Outcome, ParsedMail
from mailer.operator import cli
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings, load_settings
from mailer.timed import closing
from storage import conversations, db, flags, ratings, tickets
from storage.tables import MessageRow, OutboxRow, Rating, Ticket, TicketEvent
from tests.conftest import ROOT, make_mail, office_env

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
RINA = "rina@example.com"
HEAD = "kepala3514@bps.go.id"


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def fetched(raw: bytes, office: str = "3514") -> FetchedMail:
    return FetchedMail(office, "INBOX", 7, next(_uids), raw)


def the_ticket(engine: Engine) -> Ticket:
    with db.reading(engine) as s:
        (found,) = tickets.list_tickets(s)
        s.expunge(found)
        return found


def outgoing(engine: Engine, kind: str) -> list[MessageRow]:
    with db.reading(engine) as s:
        rows = list(s.execute(select(MessageRow).where(MessageRow.kind == kind)).scalars())
        for row in rows:
            s.expunge(row)
        return rows


def events(engine: Engine) -> list[tuple[str, str]]:
    with db.reading(engine) as s:
        rows = s.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()
        return [(e.event, e.detail) for e in rows]


def answered_ticket(pipe: Pipeline, clock: FrozenClock, subject: str = "Permohonan data kemiskinan") -> str:
    """Rina's request (Mon 09:00 WIB) answered by an officer two hours later; returns the
    answer's Message-ID."""
    raw, mid = make_mail(RINA, subject=subject)
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    clock.advance(timedelta(hours=2))
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"), ("Cc", OFFICE))
    raw, answer_mid = make_mail(
        OFFICER, to=RINA, subject=f"Re: {subject}", body="Data terlampir.", headers=headers
    )
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    return answer_mid


def close(settings: Settings, engine: Engine, clock: FrozenClock) -> dict[str, int]:
    return dict(closing.close_quiet(settings, engine, Renderer(), clock))


# --- closing ------------------------------------------------------------------------------------


def test_answered_ticket_closes_after_seven_quiet_days_once(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """Answered and quiet for 7 days: closed (event "closed", resolution kept) with one closing
    mail; not a minute earlier, and a second pass closes and mails nothing more."""
    answered_ticket(pipe, clock)
    clock.advance(timedelta(days=7) - timedelta(minutes=1))
    assert close(settings, engine, clock) == {}
    assert the_ticket(engine).state == "answered"
    clock.advance(timedelta(minutes=1))
    assert close(settings, engine, clock) == {"closed": 1}
    ticket = the_ticket(engine)
    assert (ticket.state, ticket.resolution) == ("closed", "answered")
    assert ticket.closed_at == clock.now()
    assert events(engine)[-1] == ("closed", "no reply from the requester for 7 days")
    assert len(outgoing(engine, "closing")) == 1
    clock.advance(timedelta(hours=1))
    assert close(settings, engine, clock) == {}
    assert len(outgoing(engine, "closing")) == 1


def test_no_closing_outside_office_hours(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """Due at night or on a weekend, a ticket is closed (and mailed) at the next opening."""
    answered_ticket(pipe, clock)  # answered Mon 23 Nov 11:00 WIB
    clock.set(datetime(2026, 12, 4, 10, 0, tzinfo=UTC))  # Fri 17:00 WIB, after closing time
    assert close(settings, engine, clock) == {}
    clock.set(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))  # Saturday 10:00 WIB
    assert close(settings, engine, clock) == {}
    clock.set(datetime(2026, 12, 7, 1, 0, tzinfo=UTC))  # Monday 08:00 WIB, opening
    assert close(settings, engine, clock) == {"closed": 1}


def test_requester_reply_within_the_days_keeps_ticket_open(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A requester's question after the answer reopens the ticket: nothing to close 7 days later."""
    answer_mid = answered_ticket(pipe, clock)
    clock.advance(timedelta(days=1))
    raw, _ = make_mail(
        RINA, subject="Re: Permohonan data kemiskinan", body="Apakah ada data tahun 2023 juga?",
        headers=(("In-Reply-To", f"<{answer_mid}>"),),
    )  # fmt: skip
    pipe.process(fetched(raw))
    clock.advance(timedelta(days=7))
    assert close(settings, engine, clock) == {}
    assert the_ticket(engine).state == "open"


def test_closing_after_days_is_per_office(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """An office's own closing.after_days (here 3) replaces the default 7."""
    office = dataclasses.replace(settings.office("3514"), closing_after_days=3.0)
    short = dataclasses.replace(settings, offices=(office,))
    answered_ticket(pipe, clock)
    clock.advance(timedelta(days=3))
    assert close(short, engine, clock) == {"closed": 1}


def test_flagged_requester_is_closed_without_mail(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A requester whose address bounces: the ticket closes, no closing mail is queued."""
    answered_ticket(pipe, clock)
    with db.transaction(engine) as s:
        flags.flag_address(s, "3514", RINA, "bouncing", clock.now(), "550 no such user", None)
    clock.advance(timedelta(days=7))
    assert close(settings, engine, clock) == {"closed_without_mail": 1}
    assert the_ticket(engine).state == "closed"
    assert outgoing(engine, "closing") == []


@pytest.mark.parametrize(("word", "resolution"), [("#spam", "spam"), ("#duplikat", "duplicate")])
def test_ticket_settled_as_spam_or_duplicate_closes_without_mail(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock, word: str, resolution: str
) -> None:
    """A ticket an officer settled with #spam or #duplikat closes after the quiet days with no
    closing mail and no rating request; its resolution is kept."""
    raw, _ = make_mail(RINA, subject="Permohonan data kemiskinan")
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    ref = the_ticket(engine).ref
    raw, _ = make_mail(OFFICER, to=OFFICE, subject=f"{word} {ref}", body="bukan permintaan layanan")
    pipe.process(fetched(raw))
    assert (the_ticket(engine).state, the_ticket(engine).resolution) == ("answered", resolution)
    clock.advance(timedelta(days=7))
    assert close(settings, engine, clock) == {"closed_without_mail": 1}
    assert (the_ticket(engine).state, the_ticket(engine).resolution) == ("closed", resolution)
    assert outgoing(engine, "closing") == []


def test_closing_mail_is_threaded_with_rating_links(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """The closing mail answers the conversation's last mail, carries the ticket tag, says it is
    automatic, and has four mailto: links to the office with the rating marker and the score."""
    answer_mid = answered_ticket(pipe, clock)
    clock.advance(timedelta(days=7))
    close(settings, engine, clock)
    (mail,) = outgoing(engine, "closing")
    parsed = email.message_from_bytes(mail.raw, policy=policy.default)
    ref = the_ticket(engine).ref
    assert parsed["In-Reply-To"] == f"<{answer_mid}>"
    assert parsed["Subject"] == f"Re: Permohonan data kemiskinan [{ref}]"
    assert parsed["Auto-Submitted"] == "auto-replied" and parsed["To"] == RINA
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    links = [unquote(part.split('"')[0]) for part in html.split('href="')[1:] if part.startswith("mailto:")]
    assert len(links) == 4
    for link, score in zip(links, (4, 3, 2, 1), strict=True):
        url = urlsplit(link)
        assert url.path == OFFICE
        subject = parse_qs(urlsplit(link.replace(" ", "%20")).query)["subject"][0]
        assert rating.subject_rating(subject, "3514") == rating.Marked(ref, score)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "4 = Sangat puas" in text and "1 = Tidak puas" in text


def test_closing_mail_in_english_for_an_english_ticket(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A ticket opened in English gets its closing mail and rating words in English."""
    raw, mid = make_mail(
        RINA, subject="Request for poverty data", body="Dear officer, could you please send me the poverty "
        "data for the districts? Thank you for your help.",
    )  # fmt: skip
    pipe.process(fetched(raw))
    headers = (("In-Reply-To", f"<{mid}>"), ("Cc", OFFICE))
    raw, _ = make_mail(
        OFFICER, to=RINA, subject="Re: Request for poverty data", body="Attached.", headers=headers
    )
    pipe.process(fetched(raw))
    clock.advance(timedelta(days=7, hours=1))
    close(settings, engine, clock)
    (mail,) = outgoing(engine, "closing")
    assert "4 = Very satisfied" in mail.body_text and "Please rate our service" in mail.body_text


# --- ratings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("4", 4), ("4/4", 4), ("Nilai: 3", 3), ("3 dari 4", 3), ("4 (sangat puas)", 4), ("Sangat puas!", 4),
        ("Puas, terima kasih", 3), ("kurang puas", 2), ("Tidak puas.", 1), ("Terima kasih.\n2", 2),
        ("Very satisfied", 4), ("satisfied", 3), ("not very satisfied", 2), ("Dissatisfied", 1),
        ("1, thanks", 1), ("5", None), ("2 tabel lagi mohon dikirim", None), ("Data 2024 ada?", None),
        ("1.5 juta jiwa", None), ("Apakah ada data tahun 2023 juga?", None), ("", None),
    ],
)  # fmt: skip
def test_reply_score(text: str, score: int | None) -> None:
    """A plain reply's first lines give a score 1–4 as a lone number or the scale's words."""
    assert rating.reply_score(text) == score


def test_subject_marker_names_this_office_only() -> None:
    """The rating marker is read from a subject (reply prefix allowed) for this office's tickets."""
    subject = "Re: Penilaian [PST-3514-2026-00042]: 4 (Sangat puas)"
    assert rating.subject_rating(subject, "3514") == rating.Marked("PST-3514-2026-00042", 4)
    assert rating.subject_rating(subject, "3571") is None
    assert rating.subject_rating("Rating [PST-3514-2026-00042]: 2 (Less satisfied)", "3514") is not None
    assert rating.subject_rating("Re: Permohonan data [PST-3514-2026-00042]", "3514") is None


def test_skm_index_is_average_times_25() -> None:
    """Count, average, index (average × 25) and the PermenPAN-RB grade of a set of scores."""
    summary = rating.summarise([4, 3, 1])
    assert (summary.count, summary.by_score, summary.grade) == (3, (1, 0, 1, 1), "C")
    assert summary.average == pytest.approx(8 / 3) and summary.index == pytest.approx(200 / 3)
    assert rating.summarise([4, 4, 4, 3]).grade == "A" and rating.summarise([]).index is None


def closed_ticket(pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock) -> MessageRow:
    answered_ticket(pipe, clock)
    clock.advance(timedelta(days=7))
    close(settings, engine, clock)
    (mail,) = outgoing(engine, "closing")
    return mail


def test_plain_reply_to_closing_mail_is_a_rating(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """ "Sangat puas" in reply to the closing mail: rating 4, stored as kind rating; the ticket
    stays closed and nothing is queued (no acknowledgement)."""
    closing_mail = closed_ticket(pipe, settings, engine, clock)
    clock.advance(timedelta(hours=3))
    queued = len(outgoing(engine, "ack")) + len(outgoing(engine, "closing"))
    raw, mid = make_mail(
        RINA, subject=f"Re: {closing_mail.subject}",
        body=f"Sangat puas, terima kasih!\n\n> {closing_mail.body_text[:40]}",
        headers=(("In-Reply-To", f"<{closing_mail.message_id}>"),),
    )  # fmt: skip
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    ticket = the_ticket(engine)
    assert ticket.state == "closed"
    with db.reading(engine) as s:
        assert ticket.id is not None
        found = ratings.rating_of(s, ticket.id)
        assert found is not None
        assert (found.score, found.how, found.rater, found.message_id) == (4, "reply", RINA, mid)
        outbox = len(list(s.execute(select(OutboxRow)).scalars()))
    assert outbox == queued
    assert [m.message_id for m in outgoing(engine, "rating")] == [mid]
    assert events(engine)[-1][0] == "closed"


def test_mailto_rating_then_a_later_one_wins(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A new mail with the marker subject (what the link opens) is a rating; a later rating of
    the same ticket replaces it (one row, counted twice)."""
    closed_ticket(pipe, settings, engine, clock)
    ref = the_ticket(engine).ref
    raw, _ = make_mail(
        RINA, subject=rating.marker_subject(ref, 2, "id"), body="Penilaian saya: 2 (Kurang puas)"
    )
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    clock.advance(timedelta(days=1))
    raw, _ = make_mail(
        RINA, subject=rating.marker_subject(ref, 4, "id"), body="Penilaian saya: 4 (Sangat puas)"
    )
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    with db.reading(engine) as s:
        (row,) = s.execute(select(Rating)).scalars()
        assert (row.score, row.how, row.count) == (4, "mailto", 2)
    assert the_ticket(engine).state == "closed"


def test_show_prints_the_rating(
    pipe: Pipeline,
    settings: Settings,
    engine: Engine,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`mailer show` prints a ticket's rating: score, how, who, and how many were received."""
    closed_ticket(pipe, settings, engine, clock)
    ref = the_ticket(engine).ref
    for score in (3, 4):
        raw, _ = make_mail(RINA, subject=rating.marker_subject(ref, score, "id"), body=f"{score}")
        pipe.process(fetched(raw))
    assert cli.main(["show", ref], settings=settings) == 0
    assert f"rating    : 4/4 by mailto from {RINA}" in capsys.readouterr().out


def test_question_in_reply_to_closing_mail_reopens(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A reply to the closing mail that gives no score is a follow-up: it reopens the ticket."""
    closing_mail = closed_ticket(pipe, settings, engine, clock)
    raw, _ = make_mail(
        RINA, subject=f"Re: {closing_mail.subject}", body="Maaf, saya masih perlu data tahun 2023.",
        headers=(("In-Reply-To", f"<{closing_mail.message_id}>"),),
    )  # fmt: skip
    pipe.process(fetched(raw))
    assert the_ticket(engine).state == "open"
    with db.reading(engine) as s:
        assert list(s.execute(select(Rating)).scalars()) == []


def test_marker_from_a_stranger_rates_nothing(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """Someone not on the ticket who writes the marker subject does not rate it."""
    closed_ticket(pipe, settings, engine, clock)
    ref = the_ticket(engine).ref
    raw, _ = make_mail("orang.lain@example.com", subject=rating.marker_subject(ref, 1, "id"), body="1")
    pipe.process(fetched(raw))
    with db.reading(engine) as s:
        assert list(s.execute(select(Rating)).scalars()) == []


# --- complaints ---------------------------------------------------------------------------------


def mail(subject: str, body: str, to: str = OFFICE) -> ParsedMail:
    return ParsedMail("x@y", subject, Address("Rina", RINA), to=(Address("", to),), text=body)


@pytest.mark.parametrize(
    ("subject", "body", "is_complaint"),
    [
        ("Pengaduan layanan", "Selamat siang.", True),
        ("Keluhan", "Sudah dua minggu belum ada jawaban.", True),
        ("Komplain pelayanan PST", "-", True),
        ("Complaint about your service", "-", True),
        ("Permohonan data", "Saya sampaikan keluhan: email saya seminggu tidak dibalas petugas.", True),
        ("Data", "Saya mengadukan pelayanan PST yang sangat lambat.", True),
        ("Re: data", "I want to complain about the service, no reply for two weeks.", True),
        ("Permintaan data pengaduan masyarakat 2024", "Mohon data jumlah pengaduan per kecamatan.", False),
        ("Jumlah keluhan konsumen", "Mohon datanya.", False),
        ("Data kemiskinan salah", "Saya mengadukan data kemiskinan yang salah, mohon petugas cek.", False),
        ("Data", "Ada keluhan terkait data inflasi di tabel publikasi.", False),
        ("Permohonan data IPM", "Mohon data IPM 2024 per kecamatan. Terima kasih atas pelayanannya.", False),
    ],
)  # fmt: skip
def test_complaint_rule(subject: str, body: str, is_complaint: bool) -> None:
    """A complaint names one in the subject, or complains about the service in a sentence;
    reporting a data problem ("mengadukan data") or asking for complaint statistics is a request."""
    assert bool(complaint.reason(mail(subject, body), ())) is is_complaint


def test_mail_to_complaint_address_is_a_complaint() -> None:
    """Anything sent to a configured complaint address is a complaint."""
    found = complaint.reason(
        mail("Permohonan data", "Mohon data.", to="ipds3571@bps.go.id"), ("ipds3571@bps.go.id",)
    )
    assert found == "sent to the complaint address ipds3571@bps.go.id"


def with_head(settings: Settings, code: str = "3514", **changes: object) -> Settings:
    office = dataclasses.replace(settings.office(code), head=HEAD, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(
        settings, offices=tuple(office if o.code == code else o for o in settings.offices)
    )


def test_complaint_ticket_has_own_ack_promise_and_goes_to_the_head(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A complaint opens a ticket of kind complaint with its own promise and acknowledgement
    wording, and a notice with the complaint to the head of office (Reply-To the requester)."""
    settings = with_head(settings, complaint_sla_working_days=5, complaint_days_published=True)
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail(
        RINA, subject="Pengaduan layanan PST", body="Sudah dua minggu email saya tidak dibalas."
    )
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    ticket = the_ticket(engine)
    assert ticket.kind == "complaint"
    assert ticket.due_at == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 5 working days: Mon 30 Nov 09:00
    (ack,) = outgoing(engine, "ack")
    assert "Pengaduan Anda atas layanan kami telah kami terima" in ack.body_text
    assert "5 hari kerja" in ack.body_text
    (notice,) = outgoing(engine, "complaint_notice")
    assert notice.to_emails == HEAD and ticket.ref in notice.subject
    assert "tidak dibalas" in notice.body_text
    parsed = email.message_from_bytes(notice.raw, policy=policy.default)
    assert parsed["Reply-To"] == f"{RINA}, {OFFICE}"


def test_complaint_notice_gives_the_head_the_deadline_with_its_time(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """The head reads the same deadline as the complainant's acknowledgement (an office that
    publishes a complaint promise): day and time."""
    settings = with_head(settings, complaint_sla_working_days=5, complaint_days_published=True)
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail(RINA, subject="Pengaduan layanan PST", body="Email saya tidak dibalas.")
    pipe.process(fetched(raw))
    (notice,) = outgoing(engine, "complaint_notice")
    (ack,) = outgoing(engine, "ack")
    due = "Senin, 30 November 2026 pukul 09.00 WIB"
    assert f"Tenggat    : {due} (5 hari kerja)" in notice.body_text
    assert due in " ".join(ack.body_text.split())


def test_complaint_keeps_its_promise_when_the_requester_writes_again(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """After an answer, the complainant's new question restarts the clock with the complaint's
    own promise (5 working days here), not the request's 2."""
    settings = with_head(settings, complaint_sla_working_days=5, complaint_days_published=True)
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, mid = make_mail(RINA, subject="Pengaduan layanan PST", body="Email saya tidak dibalas.")
    pipe.process(fetched(raw))
    headers = (("In-Reply-To", f"<{mid}>"), ("Cc", OFFICE))
    raw, answer_mid = make_mail(
        OFFICER, to=RINA, subject="Re: Pengaduan layanan PST", body="Mohon maaf.", headers=headers
    )
    pipe.process(fetched(raw))
    clock.advance(timedelta(days=1))  # Tue 24 Nov 09:00 WIB
    raw, _ = make_mail(
        RINA, subject="Re: Pengaduan layanan PST", body="Lalu kapan data saya dikirim?",
        headers=(("In-Reply-To", f"<{answer_mid}>"),),
    )  # fmt: skip
    pipe.process(fetched(raw))
    ticket = the_ticket(engine)
    assert ticket.state == "open"
    assert ticket.due_at == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 5 working days: Tue 1 Dec 09:00


def test_complaint_at_night_reaches_the_head_at_opening(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """The head's notice of a complaint received at night is held until the office opens."""
    settings = with_head(settings)
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # Mon 22:00 WIB
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail(RINA, subject="Keluhan pelayanan", body="Petugas tidak menanggapi.", date=clock.now())
    pipe.process(fetched(raw))
    with db.reading(engine) as s:
        rows = {o.envelope_to: o.next_attempt_at for o in s.execute(select(OutboxRow)).scalars()}
    assert rows[HEAD] == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tue 08:00 WIB
    assert rows[RINA] == clock.now()  # the acknowledgement of mail just written is not held


def test_complaint_address_routes_kediri_mail(settings: Settings, engine: Engine, clock: FrozenClock) -> None:
    """Kediri's seed complaint address (ipds3571@, in the shipped settings) makes a complaint of
    a mail addressed to it, and is never a participant or an address we answer."""
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail(
        RINA, to="ipds3571@bps.go.id", subject="Permohonan data", body="Mohon data.",
        headers=(("Cc", "bps3571@bps.go.id"),),
    )  # fmt: skip
    pipe.process(fetched(raw, office="3571"))
    ticket = the_ticket(engine)
    assert ticket.kind == "complaint"
    with db.reading(engine) as s:
        assert ticket.id is not None
        assert conversations.ticket_participants(s, ticket.id) == {RINA: "requester"}


def test_a_plain_request_stays_a_request(pipe: Pipeline, engine: Engine) -> None:
    """An ordinary data request is kind request with the ordinary acknowledgement."""
    raw, _ = make_mail(RINA)
    pipe.process(fetched(raw))
    assert the_ticket(engine).kind == "request"
    (ack,) = outgoing(engine, "ack")
    assert "Permintaan konsultasi Anda telah kami terima" in ack.body_text


# --- settings -----------------------------------------------------------------------------------


def load(tmp_path: Path, old: str = "", new: str = "") -> Settings:
    """The shipped settings with the first `old` replaced by `new`."""
    source = (ROOT / "settings.toml").read_text(encoding="utf-8")
    assert old in source
    path = tmp_path / "settings.toml"
    path.write_text(source.replace(old, new, 1), encoding="utf-8")
    return load_settings(path, environ=office_env())


def test_shipped_settings_have_seed_figures(tmp_path: Path) -> None:
    """Shipped: close after 7 days everywhere, Kediri's complaint address, complaint promise =
    the email promise inside the desk and never stated to the public (the seeds state none for
    complaints), heads only as marked placeholders."""
    settings = load(tmp_path)
    assert {o.closing_after_days for o in settings.offices} == {7.0}
    assert settings.office("3571").complaint_addresses == ("ipds3571@bps.go.id",)
    assert [o.complaint_sla_working_days for o in settings.offices] == [
        o.sla_working_days for o in settings.offices
    ]
    assert not any(o.complaint_days_published for o in settings.offices)
    assert all(o.head == f"placeholder.kepala{o.code}@bps.go.id" for o in settings.offices)


def test_office_closing_override(tmp_path: Path) -> None:
    """[offices.X.closing] after_days overrides [closing] for that office only."""
    settings = load(
        tmp_path, "[offices.3514.hours]", "[offices.3514.closing]\nafter_days = 14\n\n[offices.3514.hours]"
    )
    assert {o.code: o.closing_after_days for o in settings.offices if o.closing_after_days != 7.0} == {
        "3514": 14.0
    }


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('head = "placeholder.kepala3571@bps.go.id"', 'head = "kepala at bps"', "head"),
        (
            'complaint_addresses = ["ipds3571@bps.go.id"]',
            'complaint_addresses = ["ipds"]',
            "complaint_addresses[0]",
        ),
        (
            'complaint_addresses = ["ipds3571@bps.go.id"]',
            'complaint_addresses = ["ipds3571@bps.go.id"]\ncomplaint_sla_working_days = 0',
            "complaint_sla_working_days",
        ),
        ('head_title = "Kepala BPS Kota Kediri"\n', "", "head_title"),
        ("hours_published = false", 'hours_published = "no"', "hours_published"),
        ("asks_identity_and_purpose = true", "asks_identity_and_purpose = 1", "asks_identity_and_purpose"),
        ("free_of_charge = true", 'free_of_charge = "gratis"', "free_of_charge"),
        ('["Langsung", "Kotak saran dan', '["Datang", "Kotak saran dan', "complaint_channels[0]"),
    ],
)
def test_wrong_office_settings_stop_the_start(tmp_path: Path, old: str, new: str, key: str) -> None:
    """A head that is not an address or has no title, a bad complaint address or promise, a fact
    flag that is not true/false, a complaint channel of unknown label: file, key and reason."""
    with pytest.raises(ConfigError) as error:
        load(tmp_path, old, new)
    assert f"offices.3571.{key}" in str(error.value)


def test_wrong_closing_days_stop_the_start(tmp_path: Path) -> None:
    """closing.after_days must be a number above 0."""
    with pytest.raises(ConfigError, match=r"closing\.after_days"):
        load(tmp_path, "after_days = 7", "after_days = 0")


def test_one_pass_closes_more_than_a_batch(settings: Settings, engine: Engine, clock: FrozenClock) -> None:
    """A pass closes every quiet ticket of an office, beyond the first batch of 100."""
    answered = clock.now() - timedelta(days=8)
    with db.transaction(engine) as s:
        for i in range(closing.BATCH + 20):
            tickets.add_ticket(
                s, ref=f"PST-3514-2026-{i + 1:05d}", office_code="3514", state="answered",
                requester_email=f"warga{i}@example.com", requester_name="", subject="Data", subject_key="",
                language="id", received_at=answered, due_at=answered, state_changed_at=answered,
                last_message_at=answered, message_count=1, created_at=answered,
            )  # fmt: skip
    assert close(settings, engine, clock) == {"closed": closing.BATCH + 20}
