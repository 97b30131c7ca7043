"""SMTP adapter over aiosmtplib: one reusable connection per office, replies sorted into
transient (retry later) and permanent (record and move on) failures.

A submission is MAIL, RCPT, then DATA; `before_data` runs between RCPT and DATA, once the
server has taken the envelope and just before it may accept the mail (the outbox opens the
transaction that records the answer there, so that nothing stands between the server's 250 and
our commit but the commit itself)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosmtplib

from mailer.errors import LoginRefused, PermanentError, RecipientDeferred, TransientError
from mailer.settings import SmtpSettings
from mailer.tls import tls_context


class Submitter:
    """Sends mails through one office's SMTP submission server, reconnecting when needed."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        context = tls_context(s.ca_file) if s.tls != "plain" else None
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls == "smtps",
            start_tls=s.tls == "starttls",
            tls_context=context,
            timeout=s.timeout_s,
        )
        try:
            await smtp.connect()
            if s.username and s.password:
                await smtp.login(s.username, s.password.value)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _quietly_close(smtp)
            raise LoginRefused(f"SMTP login refused for {s.username}: {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _quietly_close(smtp)
            raise TransientError(f"cannot connect to SMTP {s.host}:{s.port}: {exc}") from exc
        return smtp

    async def probe(self) -> None:
        """Connect and log in once, then leave (`mailer check-config --connect`). Raises as
        `send` would."""
        smtp = await self._connect()
        await _quietly_close(smtp)

    async def send(
        self,
        envelope_from: str,
        envelope_to: str,
        raw: bytes,
        before_data: Callable[[], Awaitable[object]] | None = None,
    ) -> str:
        """Submit one mail; returns the server's reply. Raises TransientError or PermanentError,
        or what `before_data` raised (the server's envelope reset: nothing was submitted)."""
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = await self._connect()
        smtp = self._smtp
        try:
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
            options = [f"SIZE={len(raw)}"] if smtp.supports_extension("size") else []
            await smtp.mail(envelope_from, options=options)
            await smtp.rcpt(envelope_to)
        except aiosmtplib.SMTPRecipientRefused as exc:
            await self._reset_after_error()
            error = classify(exc.code, exc.message)
            if isinstance(error, TransientError):
                raise RecipientDeferred(str(error)) from exc
            raise error from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset_after_error()
            raise classify(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            raise TransientError(f"SMTP connection lost: {exc}") from exc
        if before_data is not None:
            try:
                await before_data()
            except BaseException:
                await self._reset_after_error()
                raise
        try:
            return (await smtp.data(raw)).message
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset_after_error()
            raise classify(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            raise TransientError(f"SMTP connection lost: {exc}") from exc

    async def _reset_after_error(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.rset()
            except (aiosmtplib.SMTPException, OSError):
                await self.close()

    async def close(self) -> None:
        if self._smtp is not None:
            await _quietly_close(self._smtp)
            self._smtp = None


def classify(code: int, message: str) -> TransientError | PermanentError:
    """4xx (and odd codes) are worth retrying; 5xx is final (RFC 5321 §4.2.1)."""
    text = f"{code} {message}".strip()
    return PermanentError(text) if 500 <= code < 600 else TransientError(text)


async def _quietly_close(smtp: aiosmtplib.SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
