"""Threading end to end on the real loopback stack: replies shaped as the major mail clients
write them (tests/eml/*.eml), one mail to several offices, the same mail delivered twice."""

from __future__ import annotations

import base64
import email
import os
import re
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from email import policy
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer.settings import Settings
from storage import db
from storage.tables import MessageRow, OutboxRow
from tests import mailstack
from tests.conftest import make_mail, requester
from tests.test_end_to_end import OFFICE, deliver, run_once, tickets

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
EML = Path(__file__).resolve().parent / "eml"
NAME, SUBJECT = "Rina Wulandari", "Permohonan data jumlah penduduk miskin 2024"
WIB = timezone(timedelta(hours=7))
# Each client's reply and the matcher that must find its ticket. Outlook on the web sends no
# References: its reply to the acknowledgement keeps the ticket tag in the subject; its reply
# to the requester's own sent mail (from Sent Items) is found by Thread-Index.
CLIENTS = {
    "gmail.eml": "references",
    "gmail-id.eml": "references",  # Indonesian Gmail: "Pada … menulis:"
    "outlook-desktop.eml": "references",  # RE:, Thread-Index, "-----Original Message-----"
    "outlook-desktop-de.eml": "references",  # AW:, iso-8859-1
    "outlook-web.eml": "subject_tag",  # no References/In-Reply-To, RE:, Thread-Index
    "outlook-web-own-sent.eml": "thread_index",  # no References, no tag, same conversation
    "thunderbird.eml": "references",
    "apple-mail.eml": "references",
    "yahoo.eml": "references",
    "iphone-id.eml": "references",  # iOS Mail in Indonesian, References of the parent only
    "samsung-email.eml": "references",  # Samsung Email on Android, base64 parts
}
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_BASE64 = re.compile(r"\{\{BASE64:(.*?)\}\}", re.DOTALL)


def fill(template: str, values: dict[str, str]) -> bytes:
    """The .eml template with its {{NAME}} placeholders filled, {{BASE64:…}} encoded, CRLF."""
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    text = _BASE64.sub(
        lambda m: "\n".join(
            textwrap.wrap(base64.b64encode(m.group(1).replace("\n", "\r\n").encode()).decode(), 76)
        ),
        text,
    )
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def thread_index(conversation: bytes, replies: int = 0) -> str:
    return base64.b64encode(conversation + os.urandom(5 * replies)).decode()


def new_conversation() -> bytes:
    """An Outlook header block: reserved byte 1, 5 bytes of time, a 16-byte GUID."""
    return b"\x01" + os.urandom(5) + uuid.uuid4().bytes


def outbox_rows(settings: Settings) -> int:
    with db.reading(db.make_engine(settings.database_url)) as s:
        return int(s.execute(select(func.count()).select_from(OutboxRow)).scalar_one())


@pytest.mark.parametrize(("template", "matched_by"), CLIENTS.items())
def test_client_reply_joins_the_ticket_with_one_ack(
    settings: Settings, events: list[dict[str, object]], template: str, matched_by: str
) -> None:
    """A requester's reply as their client writes it, sent through Postfix, joins their ticket
    (by the expected matcher), and their mailbox holds exactly one acknowledgement."""
    who = requester()
    conversation = new_conversation()
    outlook = (("Thread-Index", thread_index(conversation)), ("Thread-Topic", SUBJECT))
    first, first_mid = make_mail(
        who, subject=SUBJECT, name=NAME, headers=outlook if "outlook" in template else ()
    )
    deliver(first, who)
    run_once(settings)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack = email.message_from_bytes(ack_raw, policy=policy.default)
    reply = fill(
        (EML / template).read_text(encoding="utf-8"),
        {
            "FROM": who,
            "FROM_NAME": NAME,
            "OFFICE": OFFICE,
            "FIRST_MID": first_mid,
            "FIRST_SUBJECT": SUBJECT,
            "ACK_MID": str(ack["Message-ID"]).strip("<>"),
            "ACK_SUBJECT": str(ack["Subject"]),
            "ACK_TOPIC": str(ack["Subject"]).removeprefix("Re: "),
            "DATE": format_datetime(datetime.now(WIB).replace(microsecond=0)),
            "UNIQUE": uuid.uuid4().hex[:12].upper(),
            "NEW_THREAD_INDEX": thread_index(new_conversation()),
            "REPLY_THREAD_INDEX": thread_index(conversation, 1),
        },
    )
    deliver(reply, who, expect=2)
    run_once(settings)
    (ticket,) = tickets(settings)
    assert ticket.message_count == 2
    assert [e["matched_by"] for e in events if e["event"] == "followup_stored"] == [matched_by]
    assert outbox_rows(settings) == 1
    assert len(mailstack.fetch_all(who)) == 1


def test_mail_to_several_offices_is_one_ticket_per_office_each_acknowledged_once(settings: Settings) -> None:
    """One mail To one office and Cc another, delivered to both mailboxes: a ticket in each
    office, one acknowledgement from each, nothing more on a second pass."""
    who, other = requester(), "bps3576@bps.go.id"
    raw, _ = make_mail(who, headers=(("Cc", other),))
    mailstack.send(raw, who, [OFFICE, other])
    mailstack.wait_for(OFFICE, 1)
    mailstack.wait_for(other, 1)
    run_once(settings)
    run_once(settings)
    assert sorted(t.office_code for t in tickets(settings)) == ["3514", "3576"]
    acks = mailstack.wait_for(who, 2)
    senders = sorted(str(email.message_from_bytes(a, policy=policy.default)["From"]) for a, _ in acks)
    assert [s.split("<")[-1].rstrip(">") for s in senders] == [OFFICE, other]
    assert outbox_rows(settings) == 2


def test_same_mail_delivered_twice_is_one_message(settings: Settings) -> None:
    """The same mail arriving twice (a client's retry, a second route: other Received headers,
    another UID) is stored once, on one ticket, acknowledged once."""
    who = requester()
    raw, _ = make_mail(who)
    deliver(raw, who)
    run_once(settings)
    deliver(raw, who, expect=2)
    run_once(settings)
    (ticket,) = tickets(settings)
    assert ticket.message_count == 1
    with db.reading(db.make_engine(settings.database_url)) as s:
        stored = s.execute(select(func.count()).select_from(MessageRow).where(MessageRow.direction == "in"))
        assert stored.scalar_one() == 1
    assert outbox_rows(settings) == 1
    assert len(mailstack.fetch_all(who)) == 1


def test_copy_of_a_stored_mail_appended_again_is_one_message(settings: Settings) -> None:
    """A copy of an already stored mail appended to the INBOX again, byte for byte (staff
    copying it back from another folder) gets a new UID but stays one message, one ack."""
    who = requester()
    raw, _ = make_mail(who)
    deliver(raw, who)
    run_once(settings)
    ((stored, _),) = mailstack.fetch_all(OFFICE)
    mailstack.append(OFFICE, stored, folder="INBOX")
    run_once(settings)
    assert len(mailstack.fetch_all(OFFICE)) == 2
    (ticket,) = tickets(settings)
    assert ticket.message_count == 1
    assert outbox_rows(settings) == 1
