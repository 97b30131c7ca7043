"""The loopback mail stack (scripts/mailstack.sh) behaves like the offices' servers."""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.mailstack import STACK, clear, ensure_up, send, wait_for

pytestmark = pytest.mark.mailstack

DESK = "bps3514@bps.go.id"
REQUESTER = "pst.requester.test@gmail.com"


@pytest.fixture(scope="module", autouse=True)
def _stack() -> Iterator[None]:
    ensure_up()
    yield


def _message(to: str, subject: str) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg_id = f"<{uuid.uuid4().hex}@mailstack.test>"
    msg["From"] = "Pemohon Data <pemohon@yahoo.co.id>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = msg_id
    msg.set_content("Mohon data inflasi bulanan Kabupaten Tuban 2023.\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")), msg_id


def _tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=STACK.ca_file)


def test_smtp_2525_delivers_to_any_domain() -> None:
    """Mail sent to 2525 lands in the INBOX of a bps.go.id and a gmail.com address within seconds."""
    clear(DESK, REQUESTER)
    raw, msg_id = _message(f"{DESK}, {REQUESTER}", "Permintaan data")
    assert send(raw, "pemohon@yahoo.co.id", [DESK, REQUESTER]) == {}
    for address in (DESK, REQUESTER):
        [(body, flags)] = wait_for(address, 1, timeout=5.0)
        assert msg_id.encode() in body
        assert b"\\Seen" not in flags


def test_imaps_and_submission_verify_the_test_ca() -> None:
    """IMAPS (10993), STARTTLS submission (10587) and SMTPS (10465) verify against ca.pem."""
    clear(DESK)
    raw, msg_id = _message(DESK, "Balasan lewat submission")
    with smtplib.SMTP(STACK.host, STACK.submission_port, timeout=10) as smtp:
        smtp.starttls(context=_tls())
        smtp.login(DESK, STACK.password)
        assert smtp.sendmail(DESK, [DESK], raw) == {}
    with smtplib.SMTP_SSL(STACK.host, STACK.smtps_port, timeout=10, context=_tls()) as smtp:
        smtp.login(DESK, STACK.password)
        assert smtp.sendmail(DESK, [DESK], raw) == {}
    wait_for(DESK, 2, timeout=5.0)
    with IMAPClient("localhost", port=STACK.imaps_port, ssl=True, ssl_context=_tls(), timeout=10) as imap:
        imap.login(DESK, STACK.password)
        imap.select_folder("INBOX", readonly=True)
        assert len(imap.search(["HEADER", "Message-ID", msg_id])) == 2


def test_wrong_password_is_refused() -> None:
    """A wrong password is refused by IMAP and by SMTP AUTH."""
    with (
        IMAPClient(STACK.host, port=STACK.imap_port, ssl=False, timeout=10) as imap,
        pytest.raises(LoginError),
    ):
        imap.login(DESK, STACK.password + "-wrong")
    with smtplib.SMTP(STACK.host, STACK.submission_port, timeout=10) as smtp:
        smtp.starttls(context=_tls())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(DESK, STACK.password + "-wrong")


def test_sent_folder_has_special_use_flag() -> None:
    """The Sent folder carries the \\Sent special-use flag (and Drafts/Trash/Junk theirs)."""
    with IMAPClient(STACK.host, port=STACK.imap_port, ssl=False, timeout=10) as imap:
        imap.login(REQUESTER, STACK.password)
        assert imap.find_special_folder(b"\\Sent") == "Sent"
        assert imap.find_special_folder(b"\\Drafts") == "Drafts"
        assert imap.find_special_folder(b"\\Trash") == "Trash"
        assert imap.find_special_folder(b"\\Junk") == "Junk"
