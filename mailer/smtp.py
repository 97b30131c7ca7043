"""SMTP submission adapter: one reusable connection per lane, replies sorted into transient
(retry later) and permanent (record and move on) failures.

A small client on asyncio streams rather than aiosmtplib, for one reason: PIPELINING (RFC
2920). Every server we submit to offers it, and with it a mail costs two round trips (MAIL,
RCPT and DATA sent together, then the message) instead of four, and far fewer system calls
on both sides; aiosmtplib sends each command and waits. Measured on the loopback stack: see
bench/README.md. A server without PIPELINING gets the commands one at a time.
Connection set-up is the usual: TLS from the first byte (smtps) or STARTTLS, both verifying
the certificate; EHLO; AUTH PLAIN (or LOGIN) when a username is set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import re
import socket
import ssl

from mailer.errors import PermanentError, RecipientDeferred, TransientError
from mailer.imap import tls_context
from mailer.settings import SmtpSettings

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r")
_MAX_REPLY_LINES = 100


class _Reply(Exception):
    """An unexpected reply: (code, text)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}".strip())
        self.code, self.text = code, text


class _Connection:
    """One open SMTP session (after EHLO, TLS and AUTH)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout_s: float) -> None:
        self.reader, self.writer, self.timeout_s = reader, writer, timeout_s
        self.extensions: dict[str, str] = {}

    @property
    def usable(self) -> bool:
        return not (self.writer.is_closing() or self.reader.at_eof())

    async def reply(self) -> tuple[int, str]:
        """One reply (all its lines): (code, text with the lines joined by newlines)."""
        async with asyncio.timeout(self.timeout_s):
            return await self._reply()

    async def _reply(self) -> tuple[int, str]:
        lines: list[str] = []
        while len(lines) < _MAX_REPLY_LINES:
            try:
                line = await self.reader.readline()
            except ValueError:  # asyncio.LimitOverrunError: a line over 64 KiB
                raise ConnectionError("SMTP reply line too long") from None
            if not line.endswith(b"\n"):
                raise ConnectionError("the server closed the connection")
            try:
                code = int(line[:3])
            except ValueError:
                raise ConnectionError(f"not an SMTP reply: {line[:80]!r}") from None
            lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":
                return code, "\n".join(lines)
        raise ConnectionError("SMTP reply too long")

    async def command(self, line: str, expect: tuple[int, ...]) -> str:
        self.writer.write(line.encode("utf-8") + b"\r\n")
        code, text = await self.reply()
        if code not in expect:
            raise _Reply(code, text)
        return text

    async def ehlo(self) -> None:
        text = await self.command(f"EHLO {_local_name()}", (250,))
        self.extensions = {}
        for line in text.split("\n")[1:]:
            keyword, _, params = line.partition(" ")
            self.extensions[keyword.upper()] = params

    async def close(self) -> None:
        try:
            if self.usable:
                self.writer.write(b"QUIT\r\n")
                await asyncio.wait_for(self.reply(), min(self.timeout_s, 5.0))
        except (OSError, ConnectionError, TimeoutError, ssl.SSLError):
            pass  # closing anyway
        finally:
            self.writer.close()
            with contextlib.suppress(OSError, ConnectionError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(self.writer.wait_closed(), 5.0)


class Submitter:
    """Sends mails through one office's SMTP submission server, reconnecting when needed."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._conn: _Connection | None = None

    async def _connect(self) -> _Connection:
        s = self.settings
        context = tls_context(s.ca_file) if s.tls != "plain" else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    s.host,
                    s.port,
                    ssl=context if s.tls == "smtps" else None,
                    server_hostname=s.host if s.tls == "smtps" else None,
                ),
                s.timeout_s,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise TransientError(f"cannot connect to SMTP {s.host}:{s.port}: {_why(exc)}") from exc
        conn = _Connection(reader, writer, s.timeout_s)
        try:
            code, text = await conn.reply()
            if code != 220:
                raise _Reply(code, text)
            await conn.ehlo()
            if s.tls == "starttls":
                if "STARTTLS" not in conn.extensions:
                    raise PermanentError(f"SMTP {s.host}:{s.port} does not offer STARTTLS")
                await conn.command("STARTTLS", (220,))
                assert context is not None
                await writer.start_tls(context, server_hostname=s.host)
                await conn.ehlo()
            if s.username and s.password:
                await self._login(conn)
        except PermanentError:
            await conn.close()
            raise
        except _Reply as exc:
            await conn.close()
            raise TransientError(f"SMTP {s.host}:{s.port} refused the session: {exc}") from exc
        except (OSError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
            await conn.close()
            raise TransientError(f"cannot connect to SMTP {s.host}:{s.port}: {_why(exc)}") from exc
        return conn

    async def _login(self, conn: _Connection) -> None:
        s = self.settings
        assert s.username is not None and s.password is not None
        mechanisms = conn.extensions.get("AUTH", "").upper().split()
        user, password = s.username.encode("utf-8"), s.password.value.encode("utf-8")
        try:
            if "PLAIN" in mechanisms or "LOGIN" not in mechanisms:
                token = base64.b64encode(b"\0" + user + b"\0" + password).decode("ascii")
                await conn.command(f"AUTH PLAIN {token}", (235,))
            else:
                await conn.command("AUTH LOGIN", (334,))
                await conn.command(base64.b64encode(user).decode("ascii"), (334,))
                await conn.command(base64.b64encode(password).decode("ascii"), (235,))
        except _Reply as exc:
            if 500 <= exc.code < 600:
                raise PermanentError(f"SMTP login refused for {s.username}: {exc}") from exc
            raise

    async def send(self, envelope_from: str, envelope_to: str, raw: bytes) -> str:
        """Submit one mail; returns the server's reply. Raises TransientError or PermanentError."""
        for address in (envelope_from, envelope_to):
            if any(c in address for c in "\r\n\0<> ") or not address.isprintable():
                raise PermanentError(f"address cannot be sent over SMTP: {address!r}")
        if self._conn is None or not self._conn.usable:
            await self.close()
            self._conn = await self._connect()
        conn = self._conn
        try:
            return await self._transaction(conn, envelope_from, envelope_to, raw)
        except _Reply as exc:
            await self._reset(conn)
            raise classify(exc.code, exc.text) from exc
        except (RecipientDeferred, PermanentError):
            await self._reset(conn)
            raise
        except (OSError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
            await self.close()
            raise TransientError(f"SMTP connection lost: {_why(exc)}") from exc

    async def _transaction(self, conn: _Connection, sender: str, to: str, raw: bytes) -> str:
        payload = data_payload(raw)
        options = f" SIZE={len(payload) - 3}" if "SIZE" in conn.extensions else ""
        if not (sender + to).isascii():
            if "SMTPUTF8" not in conn.extensions:
                raise PermanentError(f"non-ASCII address and the server has no SMTPUTF8: {to}")
            options += " SMTPUTF8"
        commands = (f"MAIL FROM:<{sender}>{options}", f"RCPT TO:<{to}>", "DATA")
        if "PIPELINING" in conn.extensions:
            conn.writer.write("".join(f"{c}\r\n" for c in commands).encode("utf-8"))
            replies = [await conn.reply() for _ in commands]  # read all three, whatever they say
        else:
            replies = []
            for c in commands:
                conn.writer.write(f"{c}\r\n".encode())
                replies.append(await conn.reply())
                if replies[-1][0] >= 400:
                    break
        (mail_code, mail_text), *rest = replies
        if mail_code != 250:
            raise _Reply(mail_code, mail_text)
        rcpt_code, rcpt_text = rest[0]
        if rcpt_code not in (250, 251):
            if len(rest) > 1 and rest[1][0] == 354:  # a server that opened DATA regardless
                conn.writer.write(b".\r\n")
                await conn.reply()
            error = classify(rcpt_code, rcpt_text)
            if isinstance(error, TransientError):
                raise RecipientDeferred(str(error))
            raise error
        data_code, data_text = rest[1]
        if data_code != 354:
            raise _Reply(data_code, data_text)
        conn.writer.write(payload)
        code, text = await conn.reply()
        if code != 250:
            raise _Reply(code, text)
        return f"{code} {text}"

    async def _reset(self, conn: _Connection) -> None:
        """After a refused mail: clear the envelope for the next one (or drop the connection)."""
        try:
            if conn.usable:
                await conn.command("RSET", (250,))
                return
        except (OSError, ConnectionError, TimeoutError, _Reply, ssl.SSLError):
            pass
        await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


def data_payload(raw: bytes) -> bytes:
    """The message as sent after DATA: CRLF line endings, a leading dot doubled (RFC 5321
    §4.5.2), ending with CRLF and the terminating "." line."""
    if raw.count(b"\n") != raw.count(b"\r\n") or raw.count(b"\r") != raw.count(b"\r\n"):
        raw = _LINE_ENDINGS.sub(b"\r\n", raw)
    if raw.startswith(b"."):
        raw = b"." + raw
    raw = raw.replace(b"\r\n.", b"\r\n..")
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


def classify(code: int, message: str) -> TransientError | PermanentError:
    """4xx (and odd codes) are worth retrying; 5xx is final (RFC 5321 §4.2.1)."""
    text = f"{code} {message}".strip()
    return PermanentError(text) if 500 <= code < 600 else TransientError(text)


@functools.cache
def _local_name() -> str:
    """Our name for EHLO (looked up once)."""
    name = socket.getfqdn()
    return name if name and name.isascii() and name.isprintable() and " " not in name else "localhost"


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
