"""Render: the acknowledgement of every office, in Indonesian and English, as text, HTML, headers
and the raw MIME bytes that go out."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

import pytest
from markupsafe import escape

from mailer.decide.rules import acknowledgement_recipient, decide
from mailer.decide.sla import due_at
from mailer.decide.threader import ticket_tag
from mailer.delivery.render import MAX_SUBJECT_CHARS, Outgoing, Renderer, hours_text, one_line
from mailer.intake.parse import parse
from mailer.model import ParsedMail
from mailer.settings import Office, OfficeHours, Settings, load_settings
from storage.vocabulary import MessageKind
from tests.conftest import OFFICE_CODES, ROOT, SHARED, make_mail, office_env

RECEIVED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB, 11:00 WIT
SUBJECT = "Permohonan data jumlah penduduk miskin 2024"
DUE_TEXT = {
    "3571": "Rabu, 25 November 2026 pukul 09.00 WIB",
    "3576": "Rabu, 25 November 2026 pukul 09.00 WIB",
    "3514": "Rabu, 25 November 2026 pukul 09.00 WIB",
    "8205": "Kamis, 26 November 2026 pukul 11.00 WIT",  # 3 working days
    "1808": "Kamis, 26 November 2026 pukul 09.00 WIB",  # 3 working days
}
FACT_LABELS_ID = {"address": "Alamat", "phone": "Telepon", "whatsapp": "WhatsApp", "website": "Website"}


@pytest.fixture(scope="module")
def shipped() -> Settings:
    return load_settings(ROOT / "settings.toml", environ=office_env("pw"))


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def ref(code: str) -> str:
    return f"PST-{code}-2026-00042"


def request(
    office: Office, subject: str = SUBJECT, headers: tuple[tuple[str, str], ...] = (), **kw: str
) -> ParsedMail:
    """A requester's mail to `office`, parsed."""
    raw, _ = make_mail("rina@example.com", to=office.email, subject=subject, headers=headers, **kw)
    return parse(raw)


def acknowledge(
    renderer: Renderer, office: Office, mail: ParsedMail, lang: str = "id"
) -> tuple[Outgoing, EmailMessage]:
    """The acknowledgement of `mail`, and its raw bytes parsed back with the modern email policy."""
    to = acknowledgement_recipient(mail)
    assert to is not None
    out = renderer.acknowledgement(
        office, ref(office.code), mail, to, lang, due_at(office, RECEIVED), RECEIVED, RECEIVED
    )
    return out, cast(EmailMessage, message_from_bytes(out.raw, policy=policy.default))


def bodies(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) content of a multipart/alternative acknowledgement, with LF line ends."""
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return _lf(text.get_content()), _lf(html.get_content())


def _lf(content: object) -> str:
    return str(content).replace("\r\n", "\n")


def flat(text: str) -> str:
    return " ".join(text.split())


def dashes(text: str) -> str:
    """Hyphens made en dashes, the way people write day and time ranges (ruff flags literal ones)."""
    return text.replace("-", "\u2013")


# -- content, per office ------------------------------------------------------------------------


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_indonesian_ack_states_every_published_fact(shipped: Settings, renderer: Renderer, code: str) -> None:
    """The Indonesian ack names the ticket, the office and every non-empty fact, in text and escaped HTML."""
    office = shipped.office(code)
    _, msg = acknowledge(renderer, office, request(office))
    text, html = bodies(msg)
    for body in (text, html):
        assert ref(code) in body
        assert str(escape(office.name)) in body
        assert DUE_TEXT[code] in body
        assert str(escape(office.sk_number)) in body
    for field in FACT_LABELS_ID:
        value = getattr(office, field)
        if value:
            assert value in text, field
            assert str(escape(value)) in html, field
    assert office.complaint_channels
    for label, value in office.complaint_channels:
        assert f"- {label}: {value}\n" in text
        assert f"<li>{escape(label)}: {escape(value)}</li>" in html
    assert (f"Jam layanan : {hours_text(office, 'id')}" in text) is office.hours_published
    said = office.promise.worded("id")  # the standard's own words, where the office sets them
    promise = (
        f", yaitu {said}." if said else f" ({office.sla_working_days} hari kerja setelah email diterima)."
    )
    assert f"paling lambat {DUE_TEXT[code]}{promise}" in flat(text)


# The promise of the online channel in the standards of Halmahera Utara and Tulang Bawang.
STANDARD_WORDS = "3 (tiga) hari kerja setelah permintaan jelas dan persyaratan pelayanan lengkap"


@pytest.mark.parametrize(
    ("code", "seed"), [("8205", "003_e3f5f7d2cdddd59f.txt"), ("1808", "004_0e3b2f113904483c.txt")]
)
def test_ack_of_a_restarting_office_states_its_standards_own_words(
    shipped: Settings, renderer: Renderer, code: str, seed: str
) -> None:
    """Halmahera Utara and Tulang Bawang state the promise in their standard's words, in text and
    HTML, and the English ack in English: the words the settings quote are the seed's."""
    assert STANDARD_WORDS in " ".join((SHARED / "seeds" / seed).read_text(encoding="utf-8").split())
    office = shipped.office(code)
    text, html = bodies(acknowledge(renderer, office, request(office))[1])
    assert f"paling lambat {DUE_TEXT[code]}, yaitu {STANDARD_WORDS}." in flat(text)
    assert f"<strong>{DUE_TEXT[code]}</strong>, yaitu {STANDARD_WORDS}." in flat(html)
    assert "setelah email diterima" not in text + html
    text_en, html_en = bodies(acknowledge(renderer, office, request(office), "en")[1])
    words_en = "3 working days after the request is clear and the service requirements are complete"
    assert f", that is {words_en}." in flat(text_en) and f", that is {words_en}." in flat(html_en)
    assert "permintaan jelas" not in text_en + html_en


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("3571", set()),
        ("3576", set()),
        ("3514", set()),
        ("8205", {"WhatsApp"}),
        ("1808", {"Alamat", "Telepon"}),
    ],
)
def test_ack_omits_labels_of_unpublished_facts(
    shipped: Settings, renderer: Renderer, code: str, absent: set[str]
) -> None:
    """A fact the office does not publish has no label line in text or HTML; published ones do."""
    office = shipped.office(code)
    _, msg = acknowledge(renderer, office, request(office))
    text, html = bodies(msg)
    for label in FACT_LABELS_ID.values():
        shown = label not in absent
        assert bool(re.search(rf"^{label} +: \S", text, re.MULTILINE)) is shown, label
        assert (f">{label}</td>" in html) is shown, label


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_ack_mime_structure(shipped: Settings, renderer: Renderer, code: str) -> None:
    """The raw bytes are multipart/alternative (text/plain then text/html, UTF-8), CRLF, lines ≤ 998 bytes."""
    office = shipped.office(code)
    out, msg = acknowledge(renderer, office, request(office))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert msg.defects == [] and all(p.defects == [] for p in parts)
    assert b"\n" not in out.raw.replace(b"\r\n", b"")
    assert max(len(line) for line in out.raw.split(b"\r\n")) <= 998
    assert bodies(msg)[0] == out.text
    date = msg["Date"].datetime
    assert date == RECEIVED
    assert date.utcoffset() == RECEIVED.astimezone(office.tz).utcoffset()


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_ack_is_recognised_as_our_own_when_it_comes_back(
    shipped: Settings, renderer: Renderer, code: str
) -> None:
    """Our acknowledgement, parsed as incoming mail, is OWN (never answered) and carries its ticket tag."""
    office = shipped.office(code)
    out, _ = acknowledge(renderer, office, request(office))
    back = parse(out.raw)
    assert decide(back, {office.email}).kind is MessageKind.OWN
    assert ticket_tag(back.subject, code) == ref(code)
    assert back.headers["x-loop"] == office.email


# -- headers ------------------------------------------------------------------------------------


def test_ack_headers_thread_under_the_request(shipped: Settings, renderer: Renderer) -> None:
    """In-Reply-To is the request; References is its References plus the request; auto headers are set."""
    office = shipped.office("3514")
    mail = request(
        office,
        headers=(
            ("In-Reply-To", "<older@mail.example.com>"),
            ("References", "<root@mail.example.com> <older@mail.example.com>"),
        ),
    )
    out, msg = acknowledge(renderer, office, mail)
    assert msg["In-Reply-To"] == f"<{mail.message_id}>"
    assert msg["References"].split() == [
        "<root@mail.example.com>",
        "<older@mail.example.com>",
        f"<{mail.message_id}>",
    ]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-PST-Ticket"] == "PST-3514-2026-00042"
    assert msg["X-PST-Mailer"] == "pst-mailer"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["From"].addresses[0].addr_spec == "bps3514@bps.go.id"
    assert msg["From"].addresses[0].display_name == "PST BPS Kabupaten Pasuruan"  # desk_name
    assert msg["To"].addresses[0].addr_spec == "rina@example.com"
    assert msg["To"].addresses[0].display_name == "Rina Wulandari"
    assert msg["Content-Language"] == "id"
    assert (out.envelope_from, out.envelope_to) == ("bps3514@bps.go.id", "rina@example.com")


def test_ack_goes_to_reply_to_as_a_bare_address(shipped: Settings, renderer: Renderer) -> None:
    """With a Reply-To on From's domain, the ack is addressed to the Reply-To (without From's name)."""
    office = shipped.office("3514")
    out, msg = acknowledge(
        renderer, office, request(office, headers=(("Reply-To", "rina.kerja@example.com"),))
    )
    assert out.envelope_to == "rina.kerja@example.com"
    assert str(msg["To"]) == "rina.kerja@example.com"


def test_message_id_is_unguessable(shipped: Settings, renderer: Renderer) -> None:
    """Each render has a fresh Message-ID with at least 32 hex digits of randomness in the office domain."""
    office = shipped.office("3514")
    mail = request(office)
    ids = []
    for _ in range(2):
        out, msg = acknowledge(renderer, office, mail)
        found = re.fullmatch(r"<pst\.([0-9a-f]{32,})@bps\.go\.id>", msg["Message-ID"])
        assert found, msg["Message-ID"]
        assert out.message_id == msg["Message-ID"][1:-1]
        ids.append(found.group(1))
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("their_subject", "lang", "expected"),
    [
        ("Permohonan data penduduk", "id", "Re: Permohonan data penduduk [PST-3514-2026-00042]"),
        ("Re: Permohonan data penduduk", "id", "Re: Permohonan data penduduk [PST-3514-2026-00042]"),
        ("RE: Permohonan data penduduk", "id", "RE: Permohonan data penduduk [PST-3514-2026-00042]"),
        ("Balas: Permohonan data penduduk", "id", "Balas: Permohonan data penduduk [PST-3514-2026-00042]"),
        ("  Permohonan \t data   penduduk ", "id", "Re: Permohonan data penduduk [PST-3514-2026-00042]"),
        ("", "id", "Re: Permintaan konsultasi statistik [PST-3514-2026-00042]"),
        ("", "en", "Re: Statistical consultation request [PST-3514-2026-00042]"),
        ("Rekap: data inflasi", "id", "Re: Rekap: data inflasi [PST-3514-2026-00042]"),
    ],
)
def test_subject(shipped: Settings, renderer: Renderer, their_subject: str, lang: str, expected: str) -> None:
    """The subject is `Re: <their subject> [REF]` with no doubled reply prefix."""
    office = shipped.office("3514")
    mail = dataclasses.replace(request(office), subject=their_subject)
    out, msg = acknowledge(renderer, office, mail, lang)
    assert out.subject == expected
    assert msg["Subject"] == expected


@pytest.mark.parametrize(
    "their_subject",
    [
        "Permohonan data — Kecamatan Grati, édisi 2024",
        "Data PDRB Kabupaten Pasuruan (Rp) — " + "atas dasar harga berlaku é " * 12,
    ],
    ids=["short", "long"],
)
def test_non_ascii_subject_is_rfc2047_encoded(
    shipped: Settings, renderer: Renderer, their_subject: str
) -> None:
    """A non-ASCII subject goes out as RFC 2047 encoded words that decode back to the same text."""
    office = shipped.office("3514")
    mail = dataclasses.replace(request(office), subject=their_subject)
    out, msg = acknowledge(renderer, office, mail)
    head = out.raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header byte is ASCII
    assert re.search(rb"^Subject: =\?utf-8\?[bq]\?", head, re.MULTILINE | re.IGNORECASE)
    expected = f"Re: {' '.join(their_subject.split())} [PST-3514-2026-00042]"
    assert out.subject == expected
    assert msg["Subject"] == expected
    assert max(len(line) for line in head.split(b"\r\n")) <= 998


def test_html_escapes_what_the_requester_wrote(shipped: Settings, renderer: Renderer) -> None:
    """The requester's name and subject are HTML-escaped in the HTML part and verbatim in the text."""
    office = shipped.office("3514")
    mail = dataclasses.replace(
        request(office, name="Rina <b>& Co</b>"), subject="Data <script>alert(1)</script> & lainnya"
    )
    _, msg = acknowledge(renderer, office, mail)
    text, html = bodies(msg)
    assert "<script>" not in html and "<b>&" not in html
    assert "Data &lt;script&gt;alert(1)&lt;/script&gt; &amp; lainnya" in html
    assert "Yth. Bapak/Ibu Rina &lt;b&gt;&amp; Co&lt;/b&gt;," in html
    assert "Data <script>alert(1)</script> & lainnya" in text
    assert "Yth. Bapak/Ibu Rina <b>& Co</b>," in text


def test_english_ack(shipped: Settings, renderer: Renderer) -> None:
    """lang "en" renders the English template with an English promised date."""
    office = shipped.office("3514")
    out, msg = acknowledge(renderer, office, request(office), "en")
    text, html = bodies(msg)
    promise = (
        "no later than Wednesday, 25 November 2026 at 09:00 WIB (2 working days after the email is received)"
    )
    assert promise in flat(text)
    assert "<strong>Wednesday, 25 November 2026 at 09:00 WIB</strong>" in html
    assert "Dear Rina Wulandari," in text
    assert dashes("Service hours : Monday-Thursday 08.00-15.30, Friday 08.00-16.00 WIB") in text
    assert "Received     : Monday, 23 November 2026 at 09:00 WIB" in text
    assert "paling lambat" not in text and "Rabu" not in text
    assert msg["Content-Language"] == "en"
    assert out.subject == f"Re: {SUBJECT} [PST-3514-2026-00042]"


def test_indonesian_received_time_is_local(shipped: Settings, renderer: Renderer) -> None:
    """The receipt time is in the office's own zone: 09.00 WIB in Pasuruan, 11.00 WIT in Halmahera Utara."""
    for code, shown in (
        ("3514", "Senin, 23 November 2026 pukul 09.00 WIB"),
        ("8205", "Senin, 23 November 2026 pukul 11.00 WIT"),
    ):
        office = shipped.office(code)
        text, _ = bodies(acknowledge(renderer, office, request(office))[1])
        assert f"Diterima        : {shown}" in text


# -- hours_text ---------------------------------------------------------------------------------

_DAY = ("08:00", "15:30")


@pytest.mark.parametrize(
    ("code", "by_day", "lang", "expected"),
    [
        ("3514", None, "id", dashes("Senin-Kamis 08.00-15.30, Jumat 08.00-16.00 WIB")),
        ("3514", None, "en", dashes("Monday-Thursday 08.00-15.30, Friday 08.00-16.00 WIB")),
        ("8205", None, "id", dashes("Senin-Kamis 08.00-15.30, Jumat 08.00-16.00 WIT")),
        (
            "3514",
            {"mon": _DAY, "wed": _DAY, "thu": _DAY, "sat": ("08:00", "12:00")},
            "id",
            dashes("Senin 08.00-15.30, Rabu-Kamis 08.00-15.30, Sabtu 08.00-12.00 WIB"),
        ),
        (
            "3514",
            {d: ("07:30", "16:00") for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            "id",
            dashes("Senin-Minggu 07.30-16.00 WIB"),
        ),
        ("3514", {"fri": ("13:00", "16:00")}, "en", dashes("Friday 13.00-16.00 WIB")),
    ],
)
def test_hours_text(
    shipped: Settings, code: str, by_day: dict[str, tuple[str, str]] | None, lang: str, expected: str
) -> None:
    """Opening hours read as people write them: consecutive days with equal hours become a range."""
    office = shipped.office(code)
    if by_day is not None:
        office = dataclasses.replace(office, hours=OfficeHours(by_day))
    assert hours_text(office, lang) == expected


# -- line length (RFC 5322 §2.1.1: at most 998 octets per line) ---------------------------------


def test_long_references_header_is_folded(shipped: Settings, renderer: Renderer) -> None:
    """A request deep in a Gmail thread (19 References) still gives an ack whose lines are ≤ 998 bytes."""
    office = shipped.office("3514")
    refs = " ".join(f"<CAKx{i:02d}{'q' * 44}+dVw@mail.gmail.com>" for i in range(19))
    out, msg = acknowledge(renderer, office, request(office, headers=(("References", refs),)))
    assert len(msg["References"].split()) == 20
    assert max(len(line) for line in out.raw.split(b"\r\n")) <= 998


def test_long_ascii_subject_is_folded(shipped: Settings, renderer: Renderer) -> None:
    """A very long plain-ASCII subject gives an ack whose lines are ≤ 998 bytes and whose subject
    decodes back to theirs, cut at MAX_SUBJECT_CHARS."""
    office = shipped.office("3514")
    long_subject = "Permohonan data penduduk per kecamatan " * 30
    out, msg = acknowledge(renderer, office, dataclasses.replace(request(office), subject=long_subject))
    assert msg["Subject"] == f"Re: {one_line(long_subject, MAX_SUBJECT_CHARS)} [PST-3514-2026-00042]"
    assert max(len(line) for line in out.raw.split(b"\r\n")) <= 998


LATE_PROMISE = {
    ("id", "ack"): (
        "Mohon maaf, email Anda baru dapat kami proses pada Kamis, 3 Desember 2026.",
        "paling lambat Senin, 7 Desember 2026 pukul 09.00 WIB (2 hari kerja sejak email diproses)",
    ),
    ("en", "ack"): (
        "We apologise: your email could only be processed on Thursday, 3 December 2026.",
        "no later than Monday, 7 December 2026 at 09:00 WIB (2 working days after it was processed)",
    ),
    ("id", "ack_complaint"): (
        "Mohon maaf, email Anda baru dapat kami proses pada Kamis, 3 Desember 2026.",
        "paling lambat Senin, 7 Desember 2026 pukul 09.00 WIB",
    ),
    ("en", "ack_complaint"): (
        "We apologise: your email could only be processed on Thursday, 3 December 2026.",
        "no later than Monday, 7 December 2026 at 09:00 WIB",
    ),
}


@pytest.mark.parametrize(("lang", "template"), list(LATE_PROMISE))
def test_ack_of_mail_read_after_its_deadline_apologises_and_counts_from_now(
    shipped: Settings, renderer: Renderer, lang: str, template: str
) -> None:
    """An ack rendered `late` (the mail read after its deadline) says so, in text and HTML, and
    states the promise counted from the day it was processed (a complaint: where the office
    configured a complaint promise)."""
    office = dataclasses.replace(shipped.office("3514"), complaint_days_published=True)
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # Thursday 09:00 WIB, ten days after RECEIVED
    mail = request(office)
    out = renderer.acknowledgement(
        office, ref("3514"), mail, "rina@example.com", lang, due_at(office, now), RECEIVED, now,
        template=template, late=True,
    )  # fmt: skip
    text, html = bodies(cast(EmailMessage, message_from_bytes(out.raw, policy=policy.default)))
    sorry, promise = LATE_PROMISE[(lang, template)]
    assert sorry in flat(text) and promise in flat(text)
    assert sorry in flat(html) and promise.split(" (")[0] in re.sub(r"</?strong>", "", flat(html))
    on_time = renderer.acknowledgement(
        office, ref("3514"), mail, "rina@example.com", lang, due_at(office, RECEIVED), RECEIVED, RECEIVED,
        template=template,
    )  # fmt: skip
    on_time_text, _ = bodies(cast(EmailMessage, message_from_bytes(on_time.raw, policy=policy.default)))
    assert sorry not in flat(on_time_text)


OUTSIDE_HOURS_LINE = {
    "id": "Email yang diterima di luar jam layanan dihitung mulai hari kerja berikutnya.",
    "en": "Email received outside service hours counts from the next working day.",
}


@pytest.mark.parametrize(("lang", "template"), list(LATE_PROMISE))
def test_ack_of_mail_outside_hours_states_the_rule_and_the_closing_time(
    shipped: Settings, renderer: Renderer, lang: str, template: str
) -> None:
    """A mail received on Saturday 5 December 2026 14:49 WIB is promised for Tuesday 8 December at
    the closing (15.30 WIB), and the ack says in one line that mail outside service hours counts
    from the next working day; a mail in service hours gets no such line (a complaint: where the
    office configured a complaint promise)."""
    office = dataclasses.replace(shipped.office("3514"), complaint_days_published=True)
    saturday = datetime(2026, 12, 5, 7, 49, tzinfo=UTC)
    due = due_at(office, saturday)
    out = renderer.acknowledgement(
        office, ref("3514"), request(office), "rina@example.com", lang, due, saturday, saturday,
        template=template,
    )  # fmt: skip
    text, html = bodies(cast(EmailMessage, message_from_bytes(out.raw, policy=policy.default)))
    promised = {"id": "Selasa, 8 Desember 2026 pukul 15.30 WIB", "en": "Tuesday, 8 December 2026 at 15:30"}
    promised_text = promised[lang]
    for body in (flat(text), flat(html)):
        assert promised_text in body
        assert OUTSIDE_HOURS_LINE[lang] in body
    _, in_hours = acknowledge(renderer, office, request(office), lang)
    assert OUTSIDE_HOURS_LINE[lang] not in flat(bodies(in_hours)[0])


def _encoded(text: str) -> str:
    """`text` as one RFC 2047 base64 encoded word (how a hostile display name hides a CR/LF)."""
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


INJECTED_NAMES = [
    pytest.param("W\r\nContent-Type: text/html\r\n\r\n<h1>Hadiah</h1>", id="crlf-then-html-body"),
    pytest.param("Warga\r\nX-Injected: y", id="crlf-header"),
    pytest.param("Warga\nX-Injected: y", id="bare-lf-header"),
    pytest.param("Warga\rX-Injected: y", id="bare-cr-header"),
    pytest.param("Warga\u2028X-Injected: y\x0bz", id="unicode-line-separator"),
]


@pytest.mark.parametrize("name", INJECTED_NAMES)
def test_display_name_with_line_breaks_cannot_add_headers_or_a_body(
    shipped: Settings, renderer: Renderer, name: str
) -> None:
    """A From display name whose encoded word decodes to CR/LF (or another line break) stays one
    line of the To header and of the greeting: no header and no body part of the sender's."""
    office = shipped.office("3514")
    raw = (
        f"From: {_encoded(name)} <victim@example.com>\r\nTo: {office.email}\r\n"
        f"Subject: {_encoded('Permohonan data' + name)}\r\nMessage-ID: <x1@example.com>\r\n"
        "Date: Mon, 23 Nov 2026 09:00:00 +0700\r\n\r\nMohon data.\r\n"
    ).encode("ascii")
    mail = parse(raw)
    out, msg = acknowledge(renderer, office, mail)
    header_block = out.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nX-Injected" not in header_block and b"\r\nContent-Type: text/html" not in header_block
    assert "X-Injected" not in msg and msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text, html = bodies(msg)
    assert "<h1>" not in html and "\nX-Injected" not in text and "\nContent-Type" not in text
    assert msg["To"].addresses[0].addr_spec == "victim@example.com"


def test_huge_subject_is_cut_in_the_acknowledgement(shipped: Settings, renderer: Renderer) -> None:
    """A 1 MB subject gives an acknowledgement of a few kilobytes, its subject cut with an ellipsis."""
    office = shipped.office("3514")
    mail = dataclasses.replace(request(office), subject="Hadiah gratis klik " * 55_000)
    out, msg = acknowledge(renderer, office, mail)
    assert len(out.raw) < 20_000
    assert "…" in msg["Subject"] and len(msg["Subject"]) < 560
