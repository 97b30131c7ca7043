"""Test helpers for the loopback Dovecot + Postfix started by ``scripts/mailstack.sh``.

Settings come from the environment (``PST_*``), else from ``$PST_MAILSTACK_DIR/env`` written by
the last ``up``, else the script's defaults; :func:`ensure_up` passes them back to the script,
so the stack it starts is the one :data:`STACK` describes.

Every address at any domain is a mailbox and logs in with ``STACK.password``: the offices',
Kediri's complaint mailbox (``ipds3571@bps.go.id``) and the requesters' alike.
"""

from __future__ import annotations

import os
import shlex
import smtplib
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mailstack.sh"

Message = tuple[bytes, tuple[bytes, ...]]
"""A fetched message: its raw bytes (CRLF line ends) and its flags, e.g. ``(b"\\\\Seen",)``."""


@dataclass(frozen=True)
class Stack:
    dir: str
    host: str
    imap_port: int
    imaps_port: int
    lmtp_port: int
    smtp_port: int
    submission_port: int
    smtps_port: int
    password: str
    ca_file: str
    mail_format: str

    def script_env(self) -> dict[str, str]:
        """The environment that makes ``scripts/mailstack.sh`` use these settings."""
        return {
            "PST_MAILSTACK_DIR": self.dir,
            "PST_IMAP_PORT": str(self.imap_port),
            "PST_IMAPS_PORT": str(self.imaps_port),
            "PST_LMTP_PORT": str(self.lmtp_port),
            "PST_SMTP_PORT": str(self.smtp_port),
            "PST_SUBMISSION_PORT": str(self.submission_port),
            "PST_SMTPS_PORT": str(self.smtps_port),
            "PST_MAILSTACK_PASSWORD": self.password,
            "PST_MAILSTACK_MAIL_FORMAT": self.mail_format,
        }


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            values[key] = value
    return values


def _load() -> Stack:
    stack_dir = os.environ.get("PST_MAILSTACK_DIR", "/tmp/pst-mailstack")
    saved = _read_env_file(Path(stack_dir) / "env")

    def get(name: str, default: str) -> str:
        return os.environ.get(name) or saved.get(name) or default

    return Stack(
        dir=stack_dir,
        host="127.0.0.1",
        imap_port=int(get("PST_IMAP_PORT", "10143")),
        imaps_port=int(get("PST_IMAPS_PORT", "10993")),
        lmtp_port=int(get("PST_LMTP_PORT", "10024")),
        smtp_port=int(get("PST_SMTP_PORT", "2525")),
        submission_port=int(get("PST_SUBMISSION_PORT", "10587")),
        smtps_port=int(get("PST_SMTPS_PORT", "10465")),
        password=get("PST_MAILSTACK_PASSWORD", "pst-loopback"),
        ca_file=str(Path(stack_dir) / "tls" / "ca.pem"),
        mail_format=get("PST_MAILSTACK_MAIL_FORMAT", "maildir"),
    )


STACK = _load()

_is_up = False


def ensure_up() -> None:
    """Run ``scripts/mailstack.sh up`` once per process (a no-op when the stack is healthy)."""
    global _is_up
    if _is_up:
        return
    proc = subprocess.run(
        ["bash", str(SCRIPT), "up"],
        env={**os.environ, **STACK.script_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mailstack.sh up failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    _is_up = True


def imap(address: str) -> IMAPClient:
    """A logged-in plain IMAP connection (use it as a context manager to close it)."""
    client = IMAPClient(STACK.host, port=STACK.imap_port, ssl=False, timeout=10)
    try:
        client.login(address, STACK.password)
    except BaseException:
        client.shutdown()
        raise
    return client


def send(raw: bytes, mail_from: str, rcpt_to: list[str]) -> dict[str, tuple[int, bytes]]:
    """Send ``raw`` over plain SMTP (port 2525, no auth); returns the refused recipients."""
    with smtplib.SMTP(STACK.host, STACK.smtp_port, timeout=10) as smtp:
        return smtp.sendmail(mail_from, rcpt_to, raw)


def append(
    address: str,
    raw: bytes,
    folder: str = "INBOX",
    flags: tuple[str | bytes, ...] = (),
    msg_time: datetime | None = None,
) -> None:
    """Store ``raw`` in ``folder`` of ``address`` with IMAP APPEND (``msg_time``: the
    INTERNALDATE the server records, default now).

    The bytes are kept as they are, except that imaplib turns bare LF line ends into CRLF
    (IMAP stores lines, and FETCH returns them CRLF-terminated anyway)."""
    with imap(address) as client:
        client.append(folder, raw, flags=flags, msg_time=msg_time)


def _fetch(client: IMAPClient, folder: str) -> list[Message]:
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    if not uids:
        return []
    data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
    return [(data[uid][b"BODY[]"], tuple(data[uid][b"FLAGS"])) for uid in sorted(data)]


def fetch_all(address: str, folder: str = "INBOX") -> list[Message]:
    """Every message in ``folder`` (UID order) as (raw bytes, flags); does not set \\Seen."""
    with imap(address) as client:
        return _fetch(client, folder)


def wait_for(address: str, count: int, timeout: float = 10.0, folder: str = "INBOX") -> list[Message]:
    """Poll until ``folder`` holds at least ``count`` messages; return them all (UID order)."""
    deadline = time.monotonic() + timeout
    with imap(address) as client:
        while True:
            try:
                have = client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]
            except IMAPClientError:  # the folder does not exist yet
                have = 0
            if have >= count:
                return _fetch(client, folder)
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{address} {folder}: {have} message(s) after {timeout:g}s, wanted {count}"
                )
            time.sleep(0.05)


def clear(*addresses: str) -> None:
    """Remove every message from every folder of these mailboxes (over IMAP, no root needed)."""
    for address in addresses:
        with imap(address) as client:
            for _flags, _delim, name in client.list_folders():
                info = client.select_folder(name)
                if info.get(b"EXISTS", 0):
                    client.set_flags("1:*", [b"\\Deleted"], silent=True)
                    client.expunge()
                client.close_folder()
