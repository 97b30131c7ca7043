"""`mailer`: run | once | check-config | tickets | show REF | … | status | dead-letters | outbox.

The parser and `main`; each sub-command's parser names its handler (`set_defaults(handler=…)`),
a function of (settings, parsed arguments) in the modules next to this one: cli_daemon (run,
once, check-config), cli_tickets (tickets, show, search, sla), cli_managers (report, digest),
cli_operator (status, dead-letters, outbox). The handlers import what they need when called, so
that `mailer check-config` does not load the database layer.

Exit codes: 0 done, 1 a pass had failures (`status`: something needs attention; a retry that
failed or was refused), 2 wrong settings or usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mailer import log
from mailer.errors import ConfigError
from mailer.model import canonical_ref
from mailer.operator import cli_daemon, cli_managers, cli_operator, cli_tickets
from mailer.settings import Settings, load_settings
from storage.vocabulary import MessageKind, ShownOutboxState, TicketState

Handler = Callable[[Settings, argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailer", description="PST mail desk: IMAP in, tickets, acknowledgements."
    )
    parser.add_argument(
        "--settings",
        default=os.environ.get("PST_SETTINGS", "settings.toml"),
        help="settings file (default: $PST_SETTINGS or ./settings.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _daemon_commands(sub)
    _ticket_commands(sub)
    _manager_commands(sub)
    _operator_commands(sub)
    return parser


def _daemon_commands(sub: Any) -> None:
    """`run`, `once`, `check-config` (cli_daemon)."""
    run = sub.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
    run.set_defaults(handler=lambda s, a: cli_daemon.run(s, forever=True))
    once = sub.add_parser("once", help="one full pass: fetch every mailbox, send what is due, exit")
    once.set_defaults(handler=lambda s, a: cli_daemon.run(s, forever=False))
    check = sub.add_parser("check-config", help="validate the settings and exit")
    check.add_argument(
        "--connect", action="store_true", help="also log in to every IMAP and SMTP server; 1 if one fails"
    )
    check.set_defaults(handler=lambda s, a: cli_daemon.check_config(s, a.connect))


def _ticket_commands(sub: Any) -> None:
    """`tickets`, `show REF`, `search WORDS`, `sla REF` (cli_tickets)."""
    tickets = sub.add_parser("tickets", help="list tickets, newest first")
    tickets.add_argument("--office", help="office code, e.g. 3514")
    tickets.add_argument("--state", choices=[state.value for state in TicketState])
    tickets.add_argument("--limit", type=int, default=50)
    tickets.set_defaults(handler=lambda s, a: cli_tickets.list_tickets(s, a.office, a.state, a.limit))
    show = sub.add_parser("show", help="one ticket with its messages")
    show.add_argument("ref", help="ticket reference, e.g. PST-3514-2026-00042")
    show.add_argument("--raw", action="store_true", help="print each message's full source")
    show.add_argument(
        "--full", action="store_true", help="print each message's full text, quoted history included"
    )
    show.set_defaults(handler=lambda s, a: cli_tickets.show_ticket(s, a.ref, a.raw, a.full))
    search = sub.add_parser("search", help="find closed tickets by their text, best first")
    search.add_argument("words", nargs="+", help="words the ticket's subject or text must contain")
    search.add_argument("--office", help="office code, e.g. 3514")
    search.add_argument("--limit", type=int, default=20)
    search.set_defaults(handler=lambda s, a: cli_tickets.search(s, " ".join(a.words), a.office, a.limit))
    sla_cmd = sub.add_parser("sla", help="explain a ticket's deadline step by step")
    sla_cmd.add_argument("ref", help="ticket reference, e.g. PST-3514-2026-00042")
    sla_cmd.set_defaults(handler=lambda s, a: cli_tickets.explain_sla(s, a.ref))


def _manager_commands(sub: Any) -> None:
    """`digest --manager ADDRESS --preview`, `report --month YYYY-MM` (cli_managers)."""
    digest = sub.add_parser("digest", help="render a manager's digest without sending it")
    digest.add_argument(
        "--manager",
        required=True,
        help="the manager's address (offices.X.head, provinces.X.head, national.head)",
    )
    digest.add_argument(
        "--at", help="as of this time, ISO 8601; without an offset, the manager's local time (default: now)"
    )
    digest.add_argument(
        "--preview", action="store_true", help="render without sending (the only mode: the daemon sends)"
    )
    digest.add_argument(
        "--html", metavar="FILE", help="write the HTML part to FILE instead of the text to the terminal"
    )
    digest.set_defaults(
        handler=lambda s, a: cli_managers.preview_digest(s, a.manager, a.at, a.preview, a.html)
    )
    report = sub.add_parser("report", help="the monthly report per office (CSV, HTML, mail to the heads)")
    report.add_argument("--month", required=True, help="the month reported on, YYYY-MM (office time)")
    scope = report.add_mutually_exclusive_group()
    scope.add_argument("--office", help="one office, e.g. 3514")
    scope.add_argument("--province", help="every office of a province, e.g. 3500")
    report.add_argument("--csv", help="write the figures as CSV to this file")
    report.add_argument("--html", help="write the HTML page (tables, charts) to this file")
    report.add_argument(
        "--send", action="store_true", help="mail each office's report to its head (once a month)"
    )
    report.set_defaults(
        handler=lambda s, a: cli_managers.monthly_report(
            s, a.month, a.office, a.province, a.csv, a.html, a.send
        )
    )


def _operator_commands(sub: Any) -> None:
    """`status`, `dead-letters [show|retry|dismiss]`, `outbox [retry]`: the operator's view (status.py)
    and actions (repair.py), in cli_operator. A sub-command's handler replaces its parent's."""
    status = sub.add_parser(
        "status", help="each office at a glance; exit 1 when something needs attention (monitoring)"
    )
    status.add_argument("--office", help="office code, e.g. 3514")
    status.add_argument("--json", action="store_true", help="the same as JSON, for machines")
    status.set_defaults(handler=lambda s, a: cli_operator.show_status(s, a.office, a.json))
    dead = sub.add_parser("dead-letters", help="mail that broke a step, kept whole: list, show, retry")
    dead.add_argument("--office", help="office code, e.g. 3514")
    dead.add_argument("--all", action="store_true", help="resolved ones too")
    dead.set_defaults(handler=lambda s, a: cli_operator.list_dead_letters(s, a.office, a.all))
    dead_sub = dead.add_subparsers(dest="action")
    show = dead_sub.add_parser("show", help="one dead letter: where, when, the whole reason, its headers")
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="the mail's exact bytes to stdout (save as .eml)")
    show.set_defaults(handler=lambda s, a: cli_operator.show_dead_letter(s, a.office, a.id, a.raw))
    retry = dead_sub.add_parser("retry", help="run kept mail through the pipeline again (after a fix)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?")
    which.add_argument("--all", action="store_true", dest="every", help="every one not yet resolved")
    retry.set_defaults(handler=lambda s, a: cli_operator.retry_dead_letters(s, a.office, a.id, a.every))
    dismiss = dead_sub.add_parser("dismiss", help="resolve one without processing it (kept whole)")
    dismiss.add_argument("id", type=int)
    dismiss.add_argument("--reason", required=True, help="why, for the record (e.g. 'spam, not a request')")
    dismiss.set_defaults(handler=lambda s, a: cli_operator.dismiss_dead_letter(s, a.office, a.id, a.reason))
    outbox = sub.add_parser("outbox", help="deliveries, newest first; retry a failed one")
    outbox.add_argument("--office", help="office code, e.g. 3514")
    outbox.add_argument("--state", choices=[state.value for state in ShownOutboxState])
    outbox.add_argument("--limit", type=int, default=50)
    outbox.set_defaults(handler=lambda s, a: cli_operator.list_deliveries(s, a.office, a.state, a.limit))
    outbox_sub = outbox.add_subparsers(dest="action")
    again = outbox_sub.add_parser("retry", help="put failed deliveries back in the queue (logged)")
    chosen = again.add_mutually_exclusive_group(required=True)
    chosen.add_argument("id", type=int, nargs="?")
    chosen.add_argument("--all", action="store_true", dest="every", help="every one failed since --since")
    again.add_argument(
        "--since",
        help="with --all: failed since this time, ISO 8601, office time if no offset (default: 24 h ago)",
    )
    again.add_argument("--kind", choices=[k.value for k in MessageKind], help="with --all: of this kind only")
    again.set_defaults(
        handler=lambda s, a: cli_operator.retry_deliveries(s, a.office, a.id, a.every, a.since, a.kind)
    )


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run the command in `argv` (default: the process's arguments) and return its exit code.
    `settings`: run with these instead of loading the `--settings` file (tests, embedding)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if settings is None:
        try:
            settings = load_settings(args.settings)
        except ConfigError as exc:
            print(f"mailer: configuration error: {exc}", file=sys.stderr)
            return 2
    wrong = _wrong_argument(settings, args)
    if wrong:
        print(f"mailer {args.command}: {wrong}", file=sys.stderr)
        return 2
    log.configure(settings.log_format, settings.log_level)
    handler: Handler = args.handler
    try:
        code = handler(settings, args)
        sys.stdout.flush()  # a pipe closed early fails here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # `mailer show … | head`: the reader left; stop quietly (no traceback), as `git log` does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # SIGPIPE's exit status


def _wrong_argument(settings: Settings, args: argparse.Namespace) -> str:
    """Why an office, province or ticket reference given is none the desk knows ("" when all
    are fine); a reference is taken in any case and without its leading zeros
    (`pst-3514-2026-42`). Rewrites `args.ref` to its canonical form."""
    offices = sorted(o.code for o in settings.offices)
    office = getattr(args, "office", None)
    if office and office not in offices:
        return f"no office {office} in {settings.file} (valid: {_few(offices)})"
    provinces = sorted({o.province_code for o in settings.offices})
    province = getattr(args, "province", None)
    if province and province not in provinces:
        return f"no province {province} in {settings.file} (valid: {_few(provinces)})"
    ref = getattr(args, "ref", None)
    if ref is not None:
        canonical = canonical_ref(ref)
        if canonical is None:
            return f"{ref!r} is not a ticket reference (like PST-3514-2026-00042)"
        args.ref = canonical
    return ""


def _few(codes: Sequence[str], shown: int = 12) -> str:
    """ "3514, 3571" or, for a registry of hundreds, the first dozen and how many more."""
    more = f" … and {len(codes) - shown} more" if len(codes) > shown else ""
    return ", ".join(codes[:shown]) + more


if __name__ == "__main__":
    sys.exit(main())
