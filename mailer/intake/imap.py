"""IMAP adapter over imapclient: connect, examine a folder read-only, list new UIDs, fetch, IDLE.

The folder is opened with EXAMINE (read-only) and fetched with BODY.PEEK[]: the daemon can
never set \\Seen, delete or move anything; staff find every mail as it arrived, unread.
All calls block: the daemon runs them in the mailbox's own worker thread.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT

from mailer.errors import ConfigError, LoginRefused, PermanentError, TransientError
from mailer.settings import ImapSettings
from mailer.tls import tls_context

FETCH_PART = b"BODY[]"
_UTC = UTC


@dataclass(frozen=True, slots=True)
class FolderState:
    """What EXAMINE told: UIDVALIDITY, UIDNEXT (0 if the server did not say) and EXISTS."""

    uidvalidity: int
    uidnext: int
    exists: int


class MailboxClient:
    """One connection to one folder of an office mailbox. Not thread-safe: one thread uses it.

    `folder` is the folder's name, or "auto-sent" for the folder the server flags \\Sent
    (RFC 6154 special-use), looked up at each connect."""

    AUTO_SENT = "auto-sent"

    def __init__(self, settings: ImapSettings, folder: str | None = None) -> None:
        self.settings = settings
        self.wanted = folder or settings.folder
        self.folder = "" if self.wanted == self.AUTO_SENT else self.wanted
        self._client: IMAPClient | None = None
        self.can_idle = False

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise TransientError("not connected")
        return self._client

    def connect(self) -> FolderState:
        """Connect, log in and EXAMINE the folder. Raises TransientError or PermanentError."""
        s = self.settings
        context = tls_context(s.ca_file) if s.tls != "plain" else None
        try:
            client = IMAPClient(
                s.host, port=s.port, ssl=s.tls == "imaps", ssl_context=context, timeout=s.timeout_s
            )
        except (OSError, IMAPClientError) as exc:
            raise TransientError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        try:
            if s.tls == "starttls":
                client.starttls(context)
            client.normalise_times = False  # INTERNALDATE with its offset, not naive local time
            _quiet_imaplib(client)
            client.login(s.username, s.password.value)
            self.can_idle = client.has_capability("IDLE")
            self._client = client
            if self.wanted == self.AUTO_SENT:
                self.folder = self._find_sent(client)
            return self.examine()
        except LoginError as exc:
            _quietly_close(client)
            raise LoginRefused(f"login refused for {s.username}: {_text(exc)}") from exc
        except ssl.SSLError as exc:
            _quietly_close(client)
            raise PermanentError(f"TLS failed with {s.host}:{s.port}: {exc}") from exc
        except (OSError, IMAPClientError) as exc:
            _quietly_close(client)
            raise TransientError(f"{s.host}:{s.port}: {exc}") from exc

    def _find_sent(self, client: IMAPClient) -> str:
        found = client.find_special_folder(SENT)
        if not found:
            raise PermanentError(
                f"{self.settings.username} has no folder flagged \\Sent: name it in imap.sent_folder, "
                'or set imap.sent_folder = "" not to read answers from the Sent folder'
            )
        return str(found)

    def examine(self) -> FolderState:
        """(Re-)open the folder read-only and return its state."""
        key = "imap.folder" if self.folder == self.settings.folder else "imap.sent_folder"
        try:
            info = self.client.select_folder(self.folder, readonly=True)
        except IMAPClientError as exc:
            raise ConfigError("settings", key, f"cannot open {self.folder!r}: {exc}") from exc
        return FolderState(
            uidvalidity=int(info.get(b"UIDVALIDITY", 0)),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
        )

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than `last_uid`, ascending. (`n:*` also returns the highest UID when
        there is nothing newer, so the result is filtered.)"""
        found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def sizes(self, uids: Iterable[int]) -> dict[int, int | None]:
        """{uid: RFC822.SIZE} for each UID still there; None where the server did not say. (A
        server's size can be wrong: it plans the FETCH batches, nothing else relies on it.)"""
        uid_list = list(uids)
        if not uid_list:
            return {}
        response = self.client.fetch(uid_list, ["RFC822.SIZE"])
        found: dict[int, int | None] = {}
        for uid, data in response.items():
            size = data.get(b"RFC822.SIZE")
            found[uid] = size if isinstance(size, int) and size >= 0 else None
        return found

    def fetch(self, uids: Iterable[int]) -> Iterator[tuple[int, bytes, datetime | None]]:
        """(uid, raw bytes, INTERNALDATE in UTC) for each UID still there, in UID order,
        without setting \\Seen."""
        uid_list = list(uids)
        if not uid_list:
            return
        response = self.client.fetch(uid_list, ["BODY.PEEK[]", "INTERNALDATE"])
        for uid in sorted(response):
            data = response.pop(uid)  # handed on, not kept here: one copy of the bytes at a time
            raw = data.pop(FETCH_PART, None)
            if raw is not None:
                yield uid, raw if type(raw) is bytes else bytes(raw), _utc(data.get(b"INTERNALDATE"))

    def wait_for_change(self, timeout_s: float, should_stop: Callable[[], bool]) -> bool:
        """Block until the server reports a change, `timeout_s` passes, or `should_stop()`
        turns true (checked every second). IDLE if the server has it, else NOOP polling.
        Returns True when the server reported something."""
        deadline = time.monotonic() + timeout_s
        stop = should_stop
        if not self.can_idle:
            while time.monotonic() < deadline and not stop():
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            return bool(self.client.noop()[1])
        self.client.idle()
        try:
            while time.monotonic() < deadline and not stop():
                if self.client.idle_check(timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
                    return True
            return False
        finally:
            self.client.idle_done()

    def close(self) -> None:
        if self._client is not None:
            _quietly_close(self._client)
            self._client = None


def _quiet_imaplib(client: IMAPClient) -> None:
    """imapclient sets imaplib's debug level to 5 to route its trace into a logger: imaplib then
    formats every literal it reads with %r (twice) before the logger drops the line. For a
    40 MB mail that was about 95 MB of text made and thrown away, three times the mail at
    once (bench/README.md, bigmail.py). Our logs never want that trace."""
    imap = getattr(client, "_imap", None)
    if imap is not None:
        imap.debug = 0


def _quietly_close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (OSError, IMAPClientError):
        with contextlib.suppress(OSError, IMAPClientError):
            client.shutdown()


def _utc(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(_UTC) if value.tzinfo else value.replace(tzinfo=_UTC)


def _text(exc: Exception) -> str:
    return str(exc).strip("b'\"")
