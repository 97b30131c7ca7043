"""Peak memory of the daemon with big mails waiting: ten 40 MB mails (a scanned PDF or a
spreadsheet attached, base64) among a few ordinary ones, read by `Daemon.run_once()`.

    .venv/bin/python bench/bigmail.py [--count 10] [--mb 40] [--small 5] [--daemon | --offices N] [--keep]

It prints figures; it is not a test. It uses the loopback stack of the PST_* variables (the
one the tests use, `scripts/mailstack.sh`; started if it is down): it clears the INBOX of
bps3514@bps.go.id and APPENDs the mails (not timed). Then a child process (bench/backlog.py's:
its peak RSS is its own VmHWM, its sender process's added when there is one) reads the mailbox
into a fresh SQLite database with sending on, and the bench checks that every mail is on a
ticket with its raw bytes stored intact (sha256 of the stored bytes), and counts the
acknowledgements sent. `--daemon` runs `mailer run` (run_forever) instead, polled until every
mail is stored and every ack sent. `--offices 5` deals the mails out to five office mailboxes,
read at once by five mailbox threads. Target: peak RSS < 300 MB (issue 13, item 7).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backlog  # bench/backlog.py: the stack, the child process, the settings

TARGET_MB = 300.0
KINDS = (
    ("application/pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", b"PK\x03\x04\x14\x00"),
)


def big_mail(n: int, size: int, token: str) -> bytes:
    """A request with one attachment of random bytes (what compressed PDF or XLSX content looks
    like), base64 in 76-character lines, the whole mail about `size` bytes."""
    ctype, ext, magic = KINDS[n % len(KINDS)]
    payload = magic + os.urandom(max(0, size * 3 // 4 - 2048))
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    boundary = f"=_big_{token}_{n}"
    sender = f"besar{n}.{token}@example.com"
    head = [
        f"From: {formataddr(('Peneliti Data ' + str(n), sender))}",
        f"To: {backlog.OFFICE}",
        f"Subject: Permohonan data: lampiran hasil survei {n} ({ext})",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: <big-{n}-{token}@mail.example.com>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Yth. petugas PST, terlampir data hasil survei kami. Mohon tabel ringkasannya. Terima kasih.",
        "",
        f"--{boundary}",
        f'Content-Type: {ctype}; name="survei-{n}.{ext}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="survei-{n}.{ext}"',
        "",
        "",
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    return "\r\n".join(head).encode() + encoded + tail


OFFICES = (
    "bps3514@bps.go.id",
    "bps3571@bps.go.id",
    "bps3576@bps.go.id",
    "bps8205@bps.go.id",
    "bps1808@bps.go.id",
)


def load(stack: backlog.Stack, mails: list[bytes], offices: int) -> None:
    """Empty the INBOX of every office, then deal the mails out to the first `offices`."""
    for n, office in enumerate(OFFICES):
        client = stack.imap(office)
        try:
            if client.select_folder("INBOX").get(b"EXISTS", 0):
                client.set_flags("1:*", [b"\\Deleted"], silent=True)
                client.expunge()
            for raw in mails[n::offices] if n < offices else ():
                client.append("INBOX", raw)
        finally:
            client.logout()


def check(db: Path, mails: list[bytes]) -> tuple[int, int, int, int]:
    """(tickets, mails stored intact, dead letters, acks queued)."""
    wanted = {hashlib.sha256(m).hexdigest() for m in mails}
    with backlog.ro(db) as con:
        tickets = con.execute("select count(*) from tickets").fetchone()[0]
        intact = 0
        for (raw,) in con.execute("select raw from messages where direction='in' and ticket_id is not null"):
            intact += hashlib.sha256(raw).hexdigest() in wanted
        dead = con.execute("select count(*) from dead_letters").fetchone()[0]
        acks = con.execute("select count(*) from outbox where state='sent'").fetchone()[0]
    return tickets, intact, dead, acks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10, help="big mails (default 10)")
    ap.add_argument("--mb", type=float, default=40, help="size of each big mail in MB (default 40)")
    ap.add_argument("--small", type=int, default=5, help="ordinary mails among them (default 5)")
    ap.add_argument("--daemon", action="store_true", help="`mailer run` (run_forever) instead of run_once")
    ap.add_argument(
        "--offices",
        type=int,
        default=1,
        choices=range(1, 6),
        help="mailboxes to deal the mails out to (run_once)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    if args.daemon and args.offices > 1:
        ap.error("--daemon counts one office's mail: use --offices with run_once")
    print(f"machine: {os.cpu_count()} cores ({backlog.cpu_model()}), load {os.getloadavg()[0]:.1f}")
    stack = backlog.Stack.from_env()
    os.environ.update(stack.env())
    stack.up()
    token = uuid.uuid4().hex[:8]
    size = int(args.mb * 1_000_000)
    mails = [big_mail(n, size, token) for n in range(args.count)]
    smalls = [backlog.request_mail(f"kecil{n}.{token}@example.com", n) for n in range(args.small)]
    ordered = [m for pair in zip(smalls, mails, strict=False) for m in pair]
    ordered += mails[len(smalls) :] + smalls[len(mails) :]
    t0 = time.monotonic()
    load(stack, ordered, args.offices)
    total = sum(map(len, ordered))
    print(
        f"loaded {len(mails)} mails of {size / 1e6:.0f} MB and {len(smalls)} ordinary ones "
        f"({total / 1e6:.0f} MB) into {', '.join(OFFICES[: args.offices])} in {time.monotonic() - t0:.1f}s"
    )
    tmp = Path(tempfile.mkdtemp(prefix="pst-bigmail-"))
    try:
        if args.daemon:
            expect = {"ingested": len(ordered), "outbox_total": len(ordered)}
            r = backlog.run_daemon("bigmail-daemon", stack, tmp, expect)
            wall_s = r["run_s"]
        else:
            r = backlog.run_once("bigmail", stack, tmp, sending=True)
            wall_s = r["run_s"]
        tickets, intact, dead, acks = check(r["db"], ordered)
        db_mb = sum(f.stat().st_size for f in tmp.iterdir() if f.is_file()) / 1e6
        rss = backlog.daemon_rss(r)
        print(
            f"{'run daemon' if args.daemon else 'run_once'}: {wall_s:.1f} s; tickets {tickets}, "
            f"stored intact {intact}/{len(ordered)}, dead letters {dead}, acks sent {acks}; "
            f"database {db_mb:.0f} MB"
        )
        verdict = "met" if rss < TARGET_MB else "MISSED"
        print(f"peak RSS {backlog.daemon_rss_text(r)} (target < {TARGET_MB:.0f} MB: {verdict})")
        print(f"daemon CPU {r['cpu_s']:.1f} s; logs {r['log']}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
