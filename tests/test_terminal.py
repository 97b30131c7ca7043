"""What `mailer tickets` and `mailer show` print of a mail is safe for a terminal: escape
sequences in subjects and names are shown, never obeyed."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import Engine

from mailer.clock import FrozenClock
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.operator import cli
from mailer.operator.terminal import safe
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's window title
CLEAR = "\x1b[2J\x1b[H"  # clears the screen
BIDI = "\u202e"  # right-to-left override


def _encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (TITLE, "\\x1b]0;pwned\\x07"),
        ("a\rb", "a\\x0db"),
        ("x\x9by", "x\\x9by"),  # C1 CSI
        (f"{BIDI}fdp.exe", "\\u202efdp.exe"),
        ("baris\n\tberikut", "baris\n\tberikut"),  # line feeds and tabs stay
        ("Permohonan data ü", "Permohonan data ü"),
    ],
)
def test_safe_shows_control_characters_and_keeps_text(text: str, shown: str) -> None:
    """safe() makes ESC, BEL, CR, C1 and bidi overrides visible and leaves other text alone."""
    assert safe(text) == shown


def test_tickets_and_show_print_no_escape_sequence_from_a_mail(
    settings: Settings, engine: Engine, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subject and a display name full of escape sequences reach the operator's terminal as
    visible text in `mailer tickets` and `mailer show` (plain and --full)."""
    raw = (
        f"From: {_encoded('Rina' + TITLE)} <rina@example.com>\r\nTo: bps3514@bps.go.id\r\n"
        f"Subject: {_encoded('Data' + CLEAR + TITLE + BIDI)}\r\nMessage-ID: <t1@example.com>\r\n"
        f"Date: Mon, 23 Nov 2026 09:00:00 +0700\r\n\r\nMohon data.{CLEAR}\r\n"
    ).encode()
    pipe = Pipeline(settings, engine, Renderer(), clock)
    assert pipe.process(FetchedMail("3514", "INBOX", 7, 1, raw, clock.now())) is Outcome.TICKET_CREATED
    assert cli.main(["tickets"], settings=settings) == 0
    listing = capsys.readouterr().out
    ref = next(word for word in listing.split() if word.startswith("PST-3514-"))
    assert cli.main(["show", ref], settings=settings) == 0
    assert cli.main(["show", ref, "--full"], settings=settings) == 0
    printed = listing + capsys.readouterr().out
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in printed
    assert "\\x1b]0;pwned\\x07" in printed
