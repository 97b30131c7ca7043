"""The words of every mail a person reads: only facts the office's standard publishes, printed
as facts (hours, a complaint promise, identity/purpose, free of charge, forwarded to the head);
Indonesian mail with no English or program text in it, dates in words and decimal commas; the
English acknowledgement in English throughout."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from sqlalchemy import Engine

from mailer.clock import FrozenClock
from mailer.decide import complaint
from mailer.decide.sla import due_at
from mailer.delivery.render import Outgoing, Renderer, hours_text
from mailer.intake.parse import parse
from mailer.model import Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Office, Settings, load_settings
from mailer.timed import escalate, monthly, notify
from mailer.timed.digest import Digest, Line, OfficeSection, managers
from storage import db, flags
from storage.vocabulary import NoticeLevel
from tests.conftest import OFFICE_CODES, ROOT, make_mail, office_env
from tests.test_aftercare import fetched, outgoing

RECEIVED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB
HEAD = "kepala3514@bps.go.id"
# Words and program text that give away English or the program in an Indonesian mail.
GIVEAWAYS = re.compile(
    r"\b(the|and|subject|names|complaint|request|sent to|ticket|deadline|reminder|escalation|"
    r"office_head|province_head|national|pst-mailer|None|True|False)\b|mailer |--\w|\{\{|\}\}"
)
# Indonesian labels and words that must not be in the English acknowledgement.
INDONESIAN = re.compile(
    r"\b(Langsung|Telepon|Alamat|Jam layanan|Pengaduan|Yth|Hormat kami|Petugas|hari kerja|"
    r"Senin|Selasa|Rabu|Kamis|Jumat|pukul|dan)\b"
)


@pytest.fixture(scope="module")
def shipped() -> Settings:
    return load_settings(ROOT / "settings.toml", environ=office_env("pw"))


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def bodies(out: Outgoing) -> tuple[str, str]:
    """(text, html) of a rendered mail, as its recipient's client decodes them."""
    msg = cast(EmailMessage, message_from_bytes(out.raw, policy=policy.default))
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()).replace("\r\n", "\n"), str(html.get_content()).replace("\r\n", "\n")


def ack(
    renderer: Renderer, office: Office, lang: str = "id", template: str = "ack", forwarded: bool = False
) -> tuple[str, str]:
    raw, _ = make_mail("rina@example.com", to=office.email, subject="Data kemiskinan 2024")
    out = renderer.acknowledgement(
        office, f"PST-{office.code}-2026-00042", parse(raw), "rina@example.com", lang,
        due_at(office, RECEIVED), RECEIVED, RECEIVED, template=template, forwarded=forwarded,
    )  # fmt: skip
    return bodies(out)


def line(office: Office, overdue: bool = True) -> Line:
    due = datetime(2026, 11, 25, 9, 0, tzinfo=office.tz)
    return Line(
        f"PST-{office.code}-2026-00042", "Rina Wulandari <rina@example.com>", "Data kemiskinan 2024",
        due, office.time_zone_label, 1 if overdue else 0, overdue, not overdue, "-", "Mohon data kemiskinan",
    )  # fmt: skip


def indonesian_mails(settings: Settings, renderer: Renderer) -> dict[str, str]:
    """Every kind of Indonesian mail, text and HTML (tags stripped), of office 3514."""
    office = dataclasses.replace(settings.office("3514"), complaint_days_published=True)
    found: dict[str, tuple[str, str]] = {
        "ack": ack(renderer, office),
        "ack_complaint": ack(renderer, office, template="ack_complaint", forwarded=True),
    }
    closing = {
        "requester_name": "Rina", "subject": "Data kemiskinan 2024", "reply_subject": "Re: Data",
        "after_days": "7", "reopen_days": "30", "by_officer": False,
        "ratings": [{"score": 4, "label": "Sangat puas", "url": "mailto:x@example.com"}],
    }  # fmt: skip
    found["closing"] = bodies(
        renderer.compose(office, "closing", "id", closing, "r@example.com", "PST-1", RECEIVED)
    )
    for why in (
        "sent to the complaint address ipds3571@bps.go.id",
        "the subject names a complaint: 'Pengaduan layanan'",
        f"{complaint.BODY_RULE}: 'petugas tidak membalas'",
    ):
        head = {
            "requester": "Rina <rina@example.com>", "subject": "Pengaduan layanan", "text": "Tidak dibalas.",
            "received_text": "Senin, 23 November 2026 pukul 09.00 WIB", "due_text": "Rabu, 25 November 2026",
            "reason": complaint.phrase(why), "in_conversation": False,
        }  # fmt: skip
        out = renderer.compose(office, "complaint_head", "id", head, HEAD, "PST-1", RECEIVED)
        found[f"complaint_head {why}"] = bodies(out)
    for level in NoticeLevel:
        person = escalate.recipient(settings, office, level)
        assert person is not None
        out = notify.notice(renderer, office, level, person, [line(office)], RECEIVED, 0.75, 2)
        found[f"notice {level}"] = bodies(out)
    for manager in managers(settings):
        sections = tuple(OfficeSection(o, 1, 0, (line(o),)) for o in manager.offices)
        _, text, html = notify.digest_parts(renderer, Digest(manager, date(2026, 11, 26), sections), RECEIVED)
        found[f"digest {manager.person.address}"] = (text, html)
    month = monthly.OfficeMonth("3514", office.name, "2026-11", requests=4, complaints=1, within=3,
                                response_hours=[2, 11, 17, 0.5], scores=[4, 3, 1])  # fmt: skip
    context = monthly.report_context([month], f"Laporan bulanan PST {office.name}")
    found["report"] = bodies(renderer.compose(office, "report", "id", context, HEAD, None, RECEIVED))
    return {kind: f"{text}\n{_visible(html)}" for kind, (text, html) in found.items()}


def _visible(html: str) -> str:
    """What a reader sees of an HTML part: no tags, styles or entities' markup."""
    html = re.sub(r"<(style|title)[^>]*>.*?</\1>", " ", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", html).replace("&nbsp;", " ").replace("&amp;", "&")


# -- only published facts as facts --------------------------------------------------------------


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_hours_printed_only_where_the_standard_publishes_them(
    shipped: Settings, renderer: Renderer, code: str
) -> None:
    """Pasuruan publishes its hours and its ack prints them; the others count with unpublished
    hours but print none (no "Jam layanan"/"Service hours" line, in text and HTML, id and en)."""
    office = shipped.office(code)
    assert office.hours_published is (code == "3514")
    for lang, label in (("id", "Jam layanan"), ("en", "Service hours")):
        text, html = ack(renderer, office, lang)
        for body in (text, html):
            assert (label in body) is office.hours_published
            assert (hours_text(office, lang) in body) is office.hours_published


@pytest.mark.parametrize("lang", ["id", "en"])
def test_complaint_ack_promises_a_date_only_where_configured(
    shipped: Settings, renderer: Renderer, lang: str
) -> None:
    """No complaint promise configured (the seeds publish none): no date and no "hari kerja", a
    reply by email instead; configured: the date and the working days."""
    office = shipped.office("3514")
    due = {"id": "Rabu, 25 November 2026 pukul 09.00 WIB", "en": "Wednesday, 25 November 2026 at 09:00 WIB"}
    days = {"id": "2 hari kerja", "en": "2 working days"}
    text, html = ack(renderer, office, lang, "ack_complaint")
    for body in (text, html):
        assert due[lang] not in body and days[lang] not in body
        assert ("melalui email ini" if lang == "id" else "reply to your complaint by email") in body
    configured = dataclasses.replace(office, complaint_days_published=True)
    text, html = ack(renderer, configured, lang, "ack_complaint")
    for body in (text, re.sub(r"</?strong>", "", html)):
        assert due[lang] in " ".join(body.split()) and days[lang] in body


@pytest.mark.parametrize(
    ("lang", "words"), [("id", "diteruskan kepada pimpinan"), ("en", "passed to the head")]
)
def test_complaint_ack_says_forwarded_only_when_it_was(
    shipped: Settings, renderer: Renderer, lang: str, words: str
) -> None:
    """The complaint ack says it went to the head only when `forwarded`."""
    office = shipped.office("3514")
    assert all(words in body for body in ack(renderer, office, lang, "ack_complaint", forwarded=True))
    assert not any(words in body for body in ack(renderer, office, lang, "ack_complaint", forwarded=False))


def _complaint_ack(settings: Settings, engine: Engine, clock: FrozenClock) -> str:
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail("rina@example.com", subject="Pengaduan layanan PST", body="Email saya tidak dibalas.")
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    (row,) = outgoing(engine, "ack")
    return row.body_text


def _head(settings: Settings, head: str) -> Settings:
    office = dataclasses.replace(settings.office("3514"), head=head)
    return dataclasses.replace(
        settings, offices=tuple(office if o.code == "3514" else o for o in settings.offices)
    )


def test_pipeline_says_forwarded_when_the_head_notice_is_queued(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A complaint to an office with a head: the notice is queued and the ack says so."""
    text = _complaint_ack(_head(settings, HEAD), engine, clock)
    assert len(outgoing(engine, "complaint_notice")) == 1
    assert "diteruskan kepada pimpinan" in text


def test_pipeline_says_nothing_of_the_head_when_none_is_configured(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """No head configured: no notice, and the ack does not claim one."""
    text = _complaint_ack(_head(settings, ""), engine, clock)
    assert outgoing(engine, "complaint_notice") == []
    assert "pimpinan" not in text


def test_pipeline_says_nothing_of_the_head_when_the_head_address_is_flagged(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """The head's address bounces (flagged): the notice is refused, and the ack does not claim it."""
    with db.transaction(engine) as s:
        flags.flag_address(s, "3514", HEAD, "bouncing", clock.now(), "550 no such user", None)
    text = _complaint_ack(_head(settings, HEAD), engine, clock)
    assert outgoing(engine, "complaint_notice") == []
    assert "pimpinan" not in text


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_identity_purpose_and_free_lines_where_the_standard_says(
    shipped: Settings, renderer: Renderer, code: str
) -> None:
    """Kediri, Mojokerto and Pasuruan ask for identity and purpose: their acks say so; all five
    say the service is free (id and en, text and HTML)."""
    office = shipped.office(code)
    assert office.asks_identity_and_purpose is (code in ("3571", "3576", "3514"))
    assert office.free_of_charge
    lines = {
        "id": ("identitas diri dan tujuan konsultasi", "tidak dipungut biaya"),
        "en": ("who you are and the purpose of your consultation", "free of charge"),
    }
    for lang, (identity, free) in lines.items():
        for body in ack(renderer, office, lang):
            flat = " ".join(body.split())
            assert (identity in flat) is office.asks_identity_and_purpose
            assert free in flat
        unsaid = dataclasses.replace(office, asks_identity_and_purpose=False, free_of_charge=False)
        for body in ack(renderer, unsaid, lang):
            assert identity not in " ".join(body.split()) and free not in body


# -- Indonesian a civil servant would sign --------------------------------------------------------


def test_no_english_or_program_text_in_any_indonesian_mail(shipped: Settings, renderer: Renderer) -> None:
    """Every Indonesian mail kind (acks, closing, complaint notice for each reason, notices of
    each level, digests of each manager, monthly report) has no English giveaway word, no
    `mailer` command, no template syntax, no ISO date and no repeated 'layanan Pelayanan'."""
    mails = indonesian_mails(shipped, renderer)
    assert len(mails) >= 14
    for kind, body in mails.items():
        assert not GIVEAWAYS.search(body), (kind, GIVEAWAYS.search(body))
        assert not re.search(r"\b20\d\d-\d\d(-\d\d)?\b", body), kind
        assert "layanan Pelayanan" not in body, kind


def test_people_are_greeted_and_the_desk_signs_with_one_name(shipped: Settings, renderer: Renderer) -> None:
    """The public is greeted "Yth. Bapak/Ibu …" and the desk signs "Hormat kami, Petugas PST BPS …";
    heads are greeted by their configured title; the desk's one name is the sender of everything."""
    mails = indonesian_mails(shipped, renderer)
    office = shipped.office("3514")
    assert f"Yth. {office.head_title}," in mails["report"]
    for kind in ("ack", "ack_complaint", "closing"):
        assert "Yth. Bapak/Ibu " in mails[kind]
        assert "Hormat kami,\nPetugas PST BPS Kabupaten Pasuruan" in mails[kind]
    assert f"Yth. {office.head_title}," in mails[f"notice {NoticeLevel.OFFICE_HEAD}"]
    province = shipped.provinces["3500"]
    assert f"Yth. {province.head_title}," in mails[f"notice {NoticeLevel.PROVINCE_HEAD}"]
    assert shipped.national is not None
    assert f"Yth. {shipped.national.head_title}," in mails[f"notice {NoticeLevel.NATIONAL}"]
    for kind, body in mails.items():
        if not kind.startswith("digest"):
            assert "PST BPS Kabupaten Pasuruan" in body, kind


def test_complaint_reason_reads_as_indonesian() -> None:
    """Each reason the complaint rule gives has an Indonesian phrase for the head's notice."""
    assert complaint.phrase("sent to the complaint address ipds3571@bps.go.id") == (
        "dikirim ke alamat pengaduan ipds3571@bps.go.id"
    )
    assert complaint.phrase("the subject names a complaint: 'x'") == "subjek email menyebut pengaduan"
    assert complaint.phrase(f"{complaint.BODY_RULE}: 'x'") == "isi email mengeluhkan layanan"


def test_monthly_report_names_the_month_and_uses_a_decimal_comma(
    shipped: Settings, renderer: Renderer
) -> None:
    """The report says "November 2026", not "2026-11", and writes 66,67 and 6,5, not 66.67."""
    body = indonesian_mails(shipped, renderer)["report"]
    assert "November 2026" in body and "2026-11" not in body
    assert "60%" in body and "6,5 jam kerja" in body and "66,67" in body  # within, median, SKM index
    assert not re.search(r"\d\.\d", body.replace("No. 14/2017", ""))


@pytest.mark.parametrize("template", ["ack", "ack_complaint"])
def test_english_ack_has_no_indonesian_labels(shipped: Settings, renderer: Renderer, template: str) -> None:
    """The English acknowledgement (every office) labels everything in English, complaint
    channels included ("In person", "Phone"); only published values stay as published."""
    for office in shipped.offices:
        values = " ".join(v for _, v in office.complaint_channels) + office.address + office.name
        for body in ack(renderer, office, "en", template, forwarded=True):
            for value in values.split():
                body = body.replace(value, " ")
            assert not INDONESIAN.search(body), (office.code, INDONESIAN.search(body))
        text, _ = ack(renderer, office, "en", template)
        if any(label == "Langsung" for label, _ in office.complaint_channels):
            assert "- In person: " in text
