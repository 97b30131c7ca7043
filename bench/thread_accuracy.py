"""Threading benchmark: how many mails of a generated corpus land in the right ticket.

    .venv/bin/python bench/thread_accuracy.py [-n 5000] [--strip 0.3] [--seed 3514]

Prints figures; it is not a test. Steps, for each of two variants of the corpus:
  1. the corpus of N mails from ../shared/tools/gen_corpus.py (cached in bench/out/corpus-N/,
     shared with bench/backlog.py); its manifest.jsonl is the ground truth (`thread` = the
     Message-ID of the conversation's first mail);
  2. variant "as generated": the files as they are; variant "stripped": a share (--strip, 30%)
     of the replies, picked with a fixed seed, lose In-Reply-To and References and get their
     subject rewritten the way clients write it ("RE: ", "AW: ", "Bls: ", "[EXTERNAL] RE: ", …);
  3. bps3514@bps.go.id's INBOX on a private loopback stack (/tmp/pst-bench-threading, every
     port +6000) is cleared and loaded with the variant (MULTIAPPEND), then `Daemon.run_once()`
     with sending off works through it into a fresh SQLite database;
  4. every mail's ticket is compared with the ground truth (see bench/README.md, "right ticket").
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from email.header import Header, decode_header, make_header
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backlog import (  # noqa: E402  (after the path setup)
    DEFAULT_PORTS,
    OFFICE_CODE,
    OUT,
    PORT_VARS,
    Stack,
    bench_settings,
    ensure_corpus,
    load_backlog,
)

STACK = Stack(
    "/tmp/pst-bench-threading",
    {k: p + 6000 for k, p in zip(PORT_VARS, DEFAULT_PORTS, strict=True)},
    "pst-loopback",
)
TARGETS = {"as generated": 99.5, "stripped": 97.0}
# How clients prefix a reply's subject: Outlook (en, de, nl, sv), Gmail, Thunderbird, Apple Mail,
# Indonesian Outlook/Yahoo, The Bat (counted), a mail gateway's banner, and doubled prefixes.
CLIENT_PREFIXES = (
    "RE: ", "Re: ", "AW: ", "Antw: ", "SV: ", "Balas: ", "Bls: ", "BLS: ", "Re[2]: ",
    "[EXTERNAL] RE: ", "RE: RE: ", "Re: Balas: ",
)  # fmt: skip
_GENERATOR_PREFIXES = ("Re: ", "RE: ", "Balas: ", "Bls: ")
_DROP = re.compile(rb"(?i)^(in-reply-to|references):")


def bare(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>")


def manifest(corpus: Path) -> list[dict[str, Any]]:
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --- the stripped variant -----------------------------------------------------------------


def fields(head: bytes) -> list[bytes]:
    """The header block as a list of fields, each with its continuation lines."""
    out: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += b"\r\n" + line
        else:
            out.append(line)
    return out


def rewrite_subject(value: bytes, prefix: str) -> bytes:
    """The subject's text without the generator's reply prefix, under a client's prefix."""
    text = str(make_header(decode_header(value.decode("ascii", "replace").replace("\r\n", ""))))
    base = text.strip()
    stripped = True
    while stripped:
        stripped = False
        for pre in _GENERATOR_PREFIXES:
            if base.startswith(pre):
                base, stripped = base[len(pre) :], True
    subject = prefix + base
    if subject.isascii():
        return b" " + subject.encode()
    return b" " + Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n").encode()


def strip_reply(raw: bytes, prefix: str) -> bytes:
    """The mail without In-Reply-To/References, its subject under `prefix`; body untouched."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    out = []
    for field in fields(head):
        if _DROP.match(field):
            continue
        if field[:8].lower() == b"subject:":
            field = b"Subject:" + rewrite_subject(field[8:], prefix)
        out.append(field)
    return b"\r\n".join(out) + sep + body


def stripped_corpus(corpus: Path, share: float, seed: int) -> tuple[Path, set[str]]:
    """bench/out/threading-stripped-…/: the corpus with `share` of its replies stripped; returns
    the folder and the Message-IDs stripped."""
    records = manifest(corpus)
    rng = random.Random(seed)
    replies = [r for r in records if r["kind"] == "reply"]
    chosen = {r["i"]: rng.choice(CLIENT_PREFIXES) for r in rng.sample(replies, round(share * len(replies)))}
    target = OUT / f"threading-stripped-{len(records)}-{share:g}-{seed}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for r in records:
        raw = (corpus / r["file"]).read_bytes()
        if r["i"] in chosen:
            raw = strip_reply(raw, chosen[r["i"]])
        (target / r["file"]).write_bytes(raw)
    shutil.copy(corpus / "manifest.jsonl", target / "manifest.jsonl")
    return target, {bare(r["message_id"]) for r in records if r["i"] in chosen}


# --- one run and its score ----------------------------------------------------------------


def run(corpus: Path, db: Path) -> float:
    """Load the corpus into the office INBOX and let the daemon work through it once."""
    from mailer import log
    from mailer.daemon import Daemon

    load_backlog(STACK, corpus)
    settings = dataclasses.replace(bench_settings(STACK, str(db), sending=False), log_level="warning")
    log.configure("json", "warning")
    t0 = time.monotonic()
    daemon = Daemon(settings)
    try:
        report = asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    if report.errors:
        sys.exit(f"daemon pass failed: {report.errors}")
    return time.monotonic() - t0


@dataclasses.dataclass
class Score:
    mails: int = 0
    right: int = 0
    wrong_merges: int = 0
    missing: int = 0
    tickets: int = 0
    misses: Counter[str] = dataclasses.field(default_factory=Counter)
    merges: list[str] = dataclasses.field(default_factory=list)

    @property
    def share(self) -> float:
        return 100.0 * self.right / self.mails if self.mails else 0.0


def score(db: Path, records: list[dict[str, Any]], stripped: set[str]) -> Score:
    """Each mail against the ground truth; the rules are in bench/README.md."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        rows = con.execute(
            "select id, message_id, ticket_id from messages "
            "where office_code=? and direction='in' order by id",
            (OFFICE_CODE,),
        ).fetchall()
        tickets = con.execute("select count(*) from tickets where office_code=?", (OFFICE_CODE,)).fetchone()[
            0
        ]
    by_id = {r["message_id"].strip("<>"): r for r in records}
    ticket_of: dict[str, int | None] = {}
    thread_of_ticket: dict[int, str] = {}  # a ticket belongs to the thread of its first mail
    for _pk, mid, ticket in rows:
        ticket_of[mid] = ticket
        rec = by_id.get(mid)
        if ticket is not None and ticket not in thread_of_ticket and rec is not None:
            thread_of_ticket[ticket] = bare(rec.get("thread") or rec.get("answers_thread"))
    result = Score(mails=len(records), tickets=tickets)
    for r in records:
        mid = bare(r["message_id"])
        if mid not in ticket_of:
            result.missing += 1
            result.misses[f"{r['kind']}/missing"] += 1
            continue
        ticket = ticket_of[mid]
        label = f"{r['kind']}/{r['sub']}" + ("/stripped" if mid in stripped else "")
        if r["kind"] == "auto":
            thread = bare(r.get("answers_thread"))
            ok = ticket is None or thread_of_ticket.get(ticket) == thread
        else:
            thread = bare(r["thread"])
            ok = ticket is not None and ticket == ticket_of.get(thread)
        if ok:
            result.right += 1
            continue
        result.misses[label] += 1
        if ticket is not None and thread_of_ticket.get(ticket) != thread:
            result.wrong_merges += 1
            result.merges.append(f"{r['file']} ({label}) on the ticket of {thread_of_ticket.get(ticket)}")
    return result


def report(name: str, s: Score, seconds: float, stripped: int) -> None:
    print(f"\n== {name}: {s.mails} mails, {stripped} replies stripped, {s.tickets} tickets, {seconds:.1f}s")
    print(f"   right ticket : {s.right}/{s.mails} = {s.share:.2f}%  (target >= {TARGETS[name]}%)")
    print(f"   wrong merges : {s.wrong_merges}  (target 0)")
    print(f"   not stored   : {s.missing}")
    for label, n in s.misses.most_common():
        print(f"     miss {label:<40} {n}")
    for line in s.merges[:20]:
        print(f"     WRONG MERGE {line}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5000, help="corpus size (default 5000)")
    ap.add_argument("--strip", type=float, default=0.3, help="share of replies stripped (default 0.3)")
    ap.add_argument("--seed", type=int, default=3514, help="seed of the stripping (default 3514)")
    ap.add_argument("--only", choices=("generated", "stripped"), help="run one variant only")
    args = ap.parse_args()
    corpus = ensure_corpus(args.n)
    records = manifest(corpus)
    STACK.up()
    results = {}
    with tempfile.TemporaryDirectory(prefix="pst-bench-threading-") as tmp:
        if args.only != "stripped":
            seconds = run(corpus, Path(tmp) / "generated.sqlite3")
            results["as generated"] = score(Path(tmp) / "generated.sqlite3", records, set())
            report("as generated", results["as generated"], seconds, 0)
        if args.only != "generated":
            folder, stripped = stripped_corpus(corpus, args.strip, args.seed)
            seconds = run(folder, Path(tmp) / "stripped.sqlite3")
            results["stripped"] = score(Path(tmp) / "stripped.sqlite3", records, stripped)
            report("stripped", results["stripped"], seconds, len(stripped))
    print(
        "\nsummary: "
        + "; ".join(f"{k} {v.share:.2f}% right, {v.wrong_merges} wrong merges" for k, v in results.items())
    )
    met = all(v.share >= TARGETS[k] and v.wrong_merges == 0 for k, v in results.items())
    print("targets met" if met else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
