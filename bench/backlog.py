"""Backlog benchmark: how fast the daemon works through N waiting mails, on the loopback stack.

    .venv/bin/python bench/backlog.py [-n 5000] [--latency 50] [--profile] [--stack private|shared]

Prints figures; it is not a test. Steps:
  1. corpus of N mails from ../shared/tools/gen_corpus.py, cached in bench/out/corpus-N/;
  2. bps3514@bps.go.id's INBOX cleared and loaded with the corpus (MULTIAPPEND; not timed);
  3. run A, ingest only: fresh database, sending off, `Daemon.run_once()`;
  4. run B, end to end: fresh database, sending on, `Daemon.run_once()`, then again with
     `run_forever()` (the database polled until every ticket is stored and every
     acknowledgement `sent`); acks counted in Postfix's maillog and sampled in Dovecot;
  5. each run in its own subprocess, so ru_maxrss is that run's peak RSS;
  6. ack latency with the daemon running (IDLE): mails one at a time through Postfix,
     SMTP return → outbox row `sent` (and → ack in the requester's Dovecot mailbox).
`--profile` repeats A and B (run_once and daemon) under py-spy (all threads, sampling) and
writes bench/out/profile-*.txt. The daemon's JSON logs go to bench/out/logs/.

`--stack private` (default) runs a second loopback Dovecot+Postfix of its own
(/tmp/pst-bench-mailstack, ports +1000) so that test runs, which clear the office mailboxes,
cannot disturb the backlog; `--stack shared` uses the one the tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import queue
import re
import resource
import shlex
import shutil
import signal
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage.vocabulary import OutboxState  # noqa: E402  (after the path set-up)

OUT = ROOT / "bench" / "out"
GEN = ROOT.parent / "shared" / "tools" / "gen_corpus.py"
SCRIPT = ROOT / "scripts" / "mailstack.sh"
SETTINGS = ROOT / "settings.toml"
OFFICE = "bps3514@bps.go.id"
OFFICE_CODE = "3514"
SPY_RATE = 100  # py-spy samples/s per thread; it needs a good part of a core itself
TARGETS = {"e2e_per_s": 200.0, "ingest_per_s": 400.0, "rss_mb": 200.0, "p95_ms": 1000.0}


# --- the loopback stack ------------------------------------------------------------------

PORT_VARS = (
    "PST_IMAP_PORT",
    "PST_IMAPS_PORT",
    "PST_LMTP_PORT",
    "PST_SMTP_PORT",
    "PST_SUBMISSION_PORT",
    "PST_SMTPS_PORT",
)
DEFAULT_PORTS = (10143, 10993, 10024, 2525, 10587, 10465)


@dataclasses.dataclass(frozen=True)
class Stack:
    dir: str
    ports: dict[str, int]
    password: str
    host: str = "127.0.0.1"

    @property
    def imap_port(self) -> int:
        return self.ports["PST_IMAP_PORT"]

    @property
    def smtp_port(self) -> int:
        return self.ports["PST_SMTP_PORT"]

    def env(self) -> dict[str, str]:
        return {
            "PST_MAILSTACK_DIR": self.dir,
            "PST_MAILSTACK_PASSWORD": self.password,
            **{k: str(v) for k, v in self.ports.items()},
        }

    @classmethod
    def private(cls) -> Stack:
        """The bench's own stack, every port +1000. On tmpfs (/dev/shm) where there is one:
        scratch mail needs no disk, and Postfix's fsync of each queue file on a disk cost
        about 1 ms of CPU per ack on this machine (bench/README.md)."""
        shm = Path("/dev/shm")
        default = shm / "pst-bench-mailstack" if shm.is_dir() else Path("/tmp/pst-bench-mailstack")
        return cls(
            os.environ.get("PST_BENCH_STACK_DIR", str(default)),
            {k: p + 1000 for k, p in zip(PORT_VARS, DEFAULT_PORTS, strict=True)},
            "pst-loopback",
        )

    @classmethod
    def from_env(cls) -> Stack:
        """As tests/mailstack.py: PST_* variables, else $PST_MAILSTACK_DIR/env, else defaults."""
        d = os.environ.get("PST_MAILSTACK_DIR", "/tmp/pst-mailstack")
        saved: dict[str, str] = {}
        env_file = Path(d) / "env"
        if env_file.exists():
            for line in env_file.read_text().splitlines():
                words = shlex.split(line)
                if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                    k, _, v = words[1].partition("=")
                    saved[k] = v

        def get(name: str, default: object) -> str:
            return os.environ.get(name) or saved.get(name) or str(default)

        return cls(
            d,
            {k: int(get(k, p)) for k, p in zip(PORT_VARS, DEFAULT_PORTS, strict=True)},
            get("PST_MAILSTACK_PASSWORD", "pst-loopback"),
        )

    def up(self) -> None:
        # Output to a file, not a pipe: the Dovecot that `up` starts keeps the caller's stderr
        # open, so reading a pipe to its end would wait for as long as Dovecot runs.
        with tempfile.TemporaryFile() as out:
            proc = subprocess.run(
                ["bash", str(SCRIPT), "up"],
                env={**os.environ, **self.env()},
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            out.seek(0)
            text = out.read().decode(errors="replace")
        if proc.returncode != 0:
            sys.exit(f"mailstack.sh up failed ({proc.returncode}):\n{text}")

    def imap(self, address: str) -> Any:
        from imapclient import IMAPClient

        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=30)
        client.login(address, self.password)
        return client


# --- settings as the shipped file has them, pointed at a scratch database ----------------

SENDER_PROCESS = "PST_BENCH_SENDER_PROCESS"  # set by --sender-process for the runs (children inherit it)


def bench_settings(stack: Stack, db_path: str, sending: bool) -> Any:
    """settings.toml with every office's password variable set to the stack's password, the
    loopback ports of `stack`, the database at `db_path` and sending on or off."""
    from mailer.settings import load_settings

    data = tomllib.loads(SETTINGS.read_text(encoding="utf-8"))
    env = dict(os.environ)
    for code, office in data.get("offices", {}).items():
        for part in ("imap", "smtp", "complaint_mailbox"):
            name = office.get(part, {}).get("password_env")
            if name:
                env[name] = stack.password
        env.setdefault(f"PST_MAIL_PASSWORD_{code}", stack.password)
    settings = load_settings(SETTINGS, environ=env)
    r = dataclasses.replace
    offices = tuple(
        r(
            o,
            imap=r(o.imap, port=stack.imap_port),
            smtp=r(o.smtp, port=stack.smtp_port),
            complaint_mailbox=o.complaint_mailbox
            and r(o.complaint_mailbox, imap=r(o.complaint_mailbox.imap, port=stack.imap_port)),
        )
        if o.imap.host == stack.host and o.imap.tls == "plain"
        else o
        for o in settings.offices
    )
    # Every new request is acknowledged, as issue 2 counts the work: the corpus has people who
    # write many requests, and the backlog arrives at once, so the shipped per-sender limit
    # (loop protection, 3 acks per hour; 30 per office) would withhold most of their acks and shrink
    # the work.
    ack = r(settings.acknowledgement, max_per_sender_per_hour=1_000_000, max_per_office_per_hour=1_000_000)
    return r(
        settings,
        database_url=f"sqlite:///{db_path}",
        offices=offices,
        outbox=r(
            settings.outbox,
            enabled=sending,
            own_process=settings.outbox.own_process or SENDER_PROCESS in os.environ,
        ),
        acknowledgement=ack,
    )


# --- child processes (one per run, so that ru_maxrss is the run's own peak) ---------------


def emit(**fields: Any) -> None:
    print("BENCH " + json.dumps(fields, default=str), flush=True)


def cpu_model() -> str:
    """The processor's name and clock from /proc/cpuinfo: figures from different machines differ by it."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown processor"
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines) if v}
    name, mhz = info.get("model name", "unknown processor"), info.get("cpu MHz")
    return f"{name} {float(mhz):.0f} MHz" if mhz else name


def usage() -> dict[str, float]:
    """Peak RSS and CPU of this process; CPU and peak RSS of its finished children (the
    sender process of `run`)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rss_mb": own_peak_rss_mb(ru.ru_maxrss / 1024),
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "child_rss_mb": kids.ru_maxrss / 1024,
        "child_cpu_s": kids.ru_utime + kids.ru_stime,
    }


def own_peak_rss_mb(fallback: float) -> float:
    """This process's peak RSS since its exec (VmHWM). ru_maxrss is not that: Linux carries the
    parent's peak over a (v)fork + exec into the child's, so a bench that held 400 MB of mail
    when it started the run read 600 MB for a run that never went past 300."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return fallback


def daemon_rss(r: dict[str, Any]) -> float:
    """The daemon's memory as a whole: its peak RSS plus its sender process's (an upper bound:
    the two peaks need not fall at the same moment)."""
    return float(r["rss_mb"] + r.get("child_rss_mb", 0.0))


def daemon_rss_text(r: dict[str, Any]) -> str:
    child = r.get("child_rss_mb", 0.0)
    if not child:
        return f"{r['rss_mb']:.0f} MB"
    return f"{r['rss_mb']:.0f} + {child:.0f} MB sender process = {daemon_rss(r):.0f} MB"


def child_main(args: argparse.Namespace) -> int:
    from mailer import log
    from mailer.daemon import Daemon

    stack = Stack.from_env()
    settings = bench_settings(stack, args.db, args.sending)
    log.configure(settings.log_format, settings.log_level)  # stderr is a file: JSON lines
    emit(event="ready", pid=os.getpid())
    if args.wait_go:
        sys.stdin.readline()

    if args.child == "once":
        t0, w0 = time.monotonic(), time.time()
        daemon = Daemon(settings)
        t1 = time.monotonic()
        report = asyncio.run(daemon.run_once())
        t2 = time.monotonic()
        daemon.close()
        emit(
            event="done",
            start_wall=w0,
            startup_s=t1 - t0,
            run_s=t2 - t1,
            fetched={k: dict(v) for k, v in report.fetched.items()},
            sent={k: dict(v) for k, v in report.sent.items()},
            errors=report.errors,
            **usage(),
        )
        return 0

    async def forever() -> None:
        daemon = Daemon(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        emit(event="started", start_wall=time.time(), start_mono=time.monotonic())
        await daemon.run_forever(stop)

    asyncio.run(forever())
    emit(event="done", **usage())
    return 0


class Child:
    """A run in a subprocess: BENCH lines on stdout, the daemon's logs in `log_path`."""

    def __init__(self, mode: str, tag: str, stack: Stack, db: Path, sending: bool, profile: bool) -> None:
        self.tag, self.log_path = tag, OUT / "logs" / f"{tag}.jsonl"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--db", str(db)]
        cmd += ["--sending"] if sending else []
        cmd += ["--wait-go"] if profile else []
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **stack.env()},
            text=True,
            cwd=ROOT,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.spy: subprocess.Popen[bytes] | None = None
        self.profile_raw = OUT / f"profile-{tag}.raw.txt"
        self.expect("ready")
        if profile:
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            self.spy = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(self.proc.pid),
                    "--rate",
                    str(SPY_RATE),
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--threads",
                    "--subprocesses",  # the sender process of `run`
                    "--output",
                    str(self.profile_raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.5)  # let py-spy attach
        if self.proc.stdin:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("BENCH "):
                self.lines.put(json.loads(line[6:]))

    def expect(self, event: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise RuntimeError(
                        f"{self.tag}: child exited ({self.proc.returncode}) before "
                        f"'{event}'; see {self.log_path}\n{tail(self.log_path)}"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.tag}: no '{event}' after {timeout}s") from None
                continue
            if msg["event"] == event:
                return msg

    def finish(self) -> None:
        self.proc.wait(timeout=120)
        self._log.close()
        if self.spy is not None:
            _, err = self.spy.communicate(timeout=120)
            if self.spy.returncode != 0 or not self.profile_raw.exists():
                print(f"  py-spy failed: {err.decode(errors='replace')[-500:]}")


def tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


# --- the corpus and the backlog ----------------------------------------------------------


def ensure_corpus(n: int) -> Path:
    """bench/out/corpus-N (generated once; `.complete` marks a finished one)."""
    target = OUT / f"corpus-{n}"
    if (target / ".complete").exists():
        return target
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=OUT, prefix=f".corpus-{n}-")
    t0 = time.monotonic()
    try:
        subprocess.run(
            ["python3", str(GEN), "-n", str(n), "-o", tmp, "--addresses", f"{tmp}/addresses.txt"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (Path(tmp) / ".complete").write_text(f"{n}\n")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"corpus: generated {n} mails in {time.monotonic() - t0:.1f}s -> {target}")
    return target


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(corpus.glob("*.eml"))


def load_backlog(stack: Stack, corpus: Path) -> None:
    """Clear the office INBOX, then MULTIAPPEND the corpus in order, 200 mails a command."""
    files = corpus_files(corpus)
    t0 = time.monotonic()
    client = stack.imap(OFFICE)
    try:
        info = client.select_folder("INBOX")
        if info.get(b"EXISTS", 0):
            client.set_flags("1:*", [b"\\Deleted"], silent=True)
            client.expunge()
        size = 0
        for i in range(0, len(files), 200):
            chunk = [f.read_bytes() for f in files[i : i + 200]]
            size += sum(map(len, chunk))
            client.multiappend("INBOX", chunk)
        exists = client.select_folder("INBOX", readonly=True)[b"EXISTS"]
    finally:
        client.logout()
    if exists != len(files):
        sys.exit(f"backlog: INBOX holds {exists} mails after loading {len(files)}")
    dt = time.monotonic() - t0
    print(
        f"backlog: {len(files)} mails ({size / 1e6:.1f} MB) loaded into {OFFICE} INBOX in {dt:.1f}s "
        f"({len(files) / dt:.0f}/s, MULTIAPPEND x200)"
    )


def inbox_count(stack: Stack) -> int:
    client = stack.imap(OFFICE)
    try:
        return int(client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"])
    finally:
        client.logout()


def clear_requesters(stack: Stack) -> str:
    """Remove every mailbox of the stack but the offices' (bps*), so that each sending run
    delivers its acks into the same empty mailboxes (scratch data; a delivery into a Maildir
    costs Dovecot a little more as the mailbox grows, and earlier runs left thousands)."""
    root = Path(stack.dir) / "mail"
    gone = 0
    for box in root.iterdir() if root.is_dir() else ():
        if not box.name.startswith("bps"):
            shutil.rmtree(box, ignore_errors=True)
            gone += not box.exists()
    return f"{gone} requester mailboxes removed"


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by the stack's Postfix and Dovecot: every process under each
    master (reaped children count in the master's cutime), read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    masters = {
        "postfix": Path(stack.dir) / "postfix/spool/pid/master.pid",
        "dovecot": Path(stack.dir) / "dovecot/run/master.pid",
    }
    cpu: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu[int(entry)] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        children.setdefault(int(fields[1]), []).append(int(entry))
    out: dict[str, float] = {}
    for name, pidfile in masters.items():
        try:
            todo = [int(pidfile.read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            continue
        total = 0.0
        while todo:
            pid = todo.pop()
            total += cpu.get(pid, 0.0)
            todo += children.get(pid, [])
        out[name] = total
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


# --- reading the database (stdlib sqlite3, read-only, from outside the daemon) -----------


def ro(db: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30))


def db_counts(db: Path, office: str = OFFICE_CODE) -> dict[str, Any]:
    with ro(db) as con:
        one = lambda q: con.execute(q, (office,)).fetchone()[0]  # noqa: E731
        c: dict[str, Any] = {
            "tickets": one("select count(*) from tickets where office_code=?"),
            "in": one("select count(*) from messages where office_code=? and direction='in'"),
            "dead": one("select count(*) from dead_letters where office_code=?"),
            "kinds": dict(
                con.execute(
                    "select kind, count(*) from messages where office_code=? "
                    "and direction='in' group by kind",
                    (office,),
                ).fetchall()
            ),
            "outbox": dict(
                con.execute(
                    "select state, count(*) from outbox where office_code=? group by state", (office,)
                ).fetchall()
            ),
            "dead_steps": con.execute(
                "select step, error from dead_letters where office_code=? order by uid", (office,)
            ).fetchall(),
            "other_offices_in": con.execute(
                "select count(*) from messages where office_code!=? and direction='in'", (office,)
            ).fetchone()[0],
        }
    c["outbox_total"] = sum(c["outbox"].values())
    c["ingested"] = c["in"] + c["dead"]
    return c


def recipients(db: Path) -> Counter[str]:
    with ro(db) as con:
        return Counter(
            r[0] for r in con.execute("select envelope_to from outbox where office_code=?", (OFFICE_CODE,))
        )


def wall(value: str | None) -> float:
    """A datetime column (naive UTC text) as a Unix time."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() if value else float("nan")


def last_times(db: Path) -> tuple[float, float]:
    """(last inbound message stored, last outbox row sent) as Unix times."""
    with ro(db) as con:
        stored = con.execute(
            "select max(stored_at) from messages where office_code=? and direction='in'", (OFFICE_CODE,)
        ).fetchone()[0]
        sent = con.execute("select max(sent_at) from outbox where office_code=?", (OFFICE_CODE,)).fetchone()[
            0
        ]
    return wall(stored), wall(sent)


# --- did the acks reach Dovecot? -----------------------------------------------------------


class Maillog:
    """Counts Postfix's LMTP deliveries to a set of addresses, from a byte offset on."""

    LINE = re.compile(rb"postfix/lmtp\[\d+\]: \w+: to=<([^>]+)>, .*status=sent")

    def __init__(self, stack: Stack) -> None:
        self.path = Path(stack.dir) / "maillog"
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.delivered: Counter[str] = Counter()

    def poll(self) -> Counter[str]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for m in self.LINE.finditer(data[:end]):
            self.delivered[m.group(1).decode().lower()] += 1
        return self.delivered


def wait_delivered(
    log: Maillog, expected: Counter[str], start_wall: float, timeout: float = 120
) -> dict[str, Any]:
    """Poll the maillog until every expected ack was delivered over LMTP into Dovecot."""
    want = Counter({k.lower(): v for k, v in expected.items()})
    deadline = time.monotonic() + timeout
    while True:
        got = log.poll()
        missing = sum(max(0, n - got[a]) for a, n in want.items())
        if missing == 0 or time.monotonic() > deadline:
            return {
                "delivered": sum(min(n, got[a]) for a, n in want.items()),
                "missing": missing,
                "landed_s": time.time() - start_wall,
            }
        time.sleep(0.1)


def sample_mailboxes(stack: Stack, addresses: list[str]) -> list[str]:
    """The newest message of a few requester mailboxes: is it our acknowledgement?"""
    from email import message_from_bytes, policy

    found = []
    for address in addresses:
        client = stack.imap(address)
        try:
            client.select_folder("INBOX", readonly=True)
            uids = client.search("ALL")
            if not uids:
                found.append(f"{address}: EMPTY")
                continue
            raw = client.fetch([max(uids)], ["BODY.PEEK[HEADER]"])[max(uids)][b"BODY[HEADER]"]
            msg = message_from_bytes(raw, policy=policy.default)
            ok = msg.get("Auto-Submitted") == "auto-replied" and "[PST-3514-" in str(msg["Subject"])
            found.append(
                f"{address}: {len(uids)} msg, newest {'ack OK' if ok else 'NOT an ack'}: "
                f"{str(msg['Subject'])[:70]!r}"
            )
        finally:
            client.logout()
    return found


# --- the runs ------------------------------------------------------------------------------


def run_once(tag: str, stack: Stack, tmp: Path, sending: bool, profile: bool = False) -> dict[str, Any]:
    db = tmp / f"{tag}.sqlite3"
    cpu0 = stack_cpu(stack)
    child = Child("once", tag, stack, db, sending, profile)
    done = child.expect("done")
    child.finish()
    return {
        **done,
        "db": db,
        "counts": db_counts(db),
        "log": child.log_path,
        "profile": child.profile_raw,
        "stack_cpu0": cpu0,
    }


def run_daemon(
    tag: str, stack: Stack, tmp: Path, expect: dict[str, Any], profile: bool = False, timeout: float = 600
) -> dict[str, Any]:
    """run_forever in a child; poll the database until the backlog is through; stop it."""
    db = tmp / f"{tag}.sqlite3"
    cpu0 = stack_cpu(stack)
    child = Child("daemon", tag, stack, db, True, profile)
    started = child.expect("started")
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    with ro(db) as con:
        while time.monotonic() < deadline:
            ingested = con.execute(
                "select (select count(*) from messages where office_code=?1 and direction='in') + "
                "(select count(*) from dead_letters where office_code=?1)",
                (OFFICE_CODE,),
            ).fetchone()[0]
            outbox = dict(
                con.execute(
                    "select state, count(*) from outbox where office_code=? group by state", (OFFICE_CODE,)
                ).fetchall()
            )
            state = {"ingested": ingested, "outbox": outbox}
            if ingested >= expect["ingested"] and outbox.get(OutboxState.SENT, 0) >= expect["outbox_total"]:
                break
            time.sleep(0.05)
    seen = time.time()
    child.proc.send_signal(signal.SIGTERM)
    done = child.expect("done")
    child.finish()
    stored, sent = last_times(db)
    return {
        **done,
        "db": db,
        "counts": db_counts(db),
        "log": child.log_path,
        "profile": child.profile_raw,
        "start_wall": started["start_wall"],
        "ingest_s": stored - started["start_wall"],
        "run_s": max(stored, sent) - started["start_wall"],
        "seen_s": seen - started["start_wall"],
        "timed_out": time.monotonic() >= deadline,
        "state": state,
        "stack_cpu0": cpu0,
    }


def request_mail(sender: str, n: int) -> bytes:
    lines = [
        f"From: {formataddr(('Warga Uji ' + str(n), sender))}",
        f"To: {OFFICE}",
        f"Subject: Permohonan data penduduk miskin per kecamatan (uji {n})",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: <{uuid.uuid4().hex}@mail.example.com>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Yth. Bapak/Ibu petugas PST,",
        "",
        "Saya mohon data jumlah penduduk miskin per kecamatan tahun 2024. Terima kasih.",
        "",
    ]
    return "\r\n".join(lines).encode()


def latency(stack: Stack, db: Path, count: int, warmup: int = 2) -> dict[str, Any]:
    """With run_forever up on a caught-up database: one mail at a time through Postfix.
    Times from the SMTP return: the mail in the office INBOX (STATUS polls), the ack's outbox
    row `sent` (5 ms polls of the database), the ack in the requester's INBOX."""
    child = Child("daemon", "latency", stack, db, True, False)
    child.expect("started")
    time.sleep(2.0)  # connect, catch up (nothing new), enter IDLE
    token = uuid.uuid4().hex[:6]
    rows = []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    office = stack.imap(OFFICE)
    messages = lambda c: c.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"]  # noqa: E731
    try:
        for i in range(warmup + count):
            sender = f"lat{i}.{token}@example.com"
            watch = stack.imap(sender)  # logged in beforehand; STATUS only, no SELECT
            in_office = messages(office)
            last_id = con.execute("select coalesce(max(id), 0) from outbox").fetchone()[0]
            smtp = smtplib.SMTP(stack.host, stack.smtp_port, timeout=30)
            smtp.sendmail(sender, [OFFICE], request_mail(sender, i))
            t_ret = time.time()
            smtp.quit()
            deadline = time.monotonic() + 30
            row, t_in, t_land = None, float("nan"), float("nan")
            while time.monotonic() < deadline:
                if t_in != t_in and messages(office) > in_office:
                    t_in = time.time()
                row = con.execute(
                    "select state, created_at, sent_at from outbox where id > ? and envelope_to = ?",
                    (last_id, sender),
                ).fetchone()
                if row and row[0] == OutboxState.SENT:
                    break
                time.sleep(0.005)
            t_seen = time.time()
            while time.monotonic() < deadline:
                if messages(watch):
                    t_land = time.time()
                    break
                time.sleep(0.005)
            watch.logout()
            if not row or row[0] != OutboxState.SENT:
                raise RuntimeError(
                    f"latency: no sent ack for {sender} after 30s (row {row}); see {child.log_path}"
                )
            if i >= warmup:
                rows.append(
                    {
                        "sent_seen_ms": (t_seen - t_ret) * 1e3,
                        "in_office_ms": (t_in - t_ret) * 1e3,
                        "to_pipeline_ms": (wall(row[1]) - t_ret) * 1e3,
                        "pipeline_to_sent_ms": (wall(row[2]) - wall(row[1])) * 1e3,
                        "landed_ms": (t_land - t_ret) * 1e3,
                    }
                )
    finally:
        office.logout()
        con.close()
        child.proc.send_signal(signal.SIGTERM)
        done = child.expect("done")
        child.finish()
    return {"rows": rows, "rss_mb": done["rss_mb"]}


def pct(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


# --- profile (py-spy raw, all threads, non-idle samples) ------------------------------------

CATEGORIES = (  # first match from the leaf frame upwards
    ("structlog/", "structlog logging"),
    ("alembic/", "startup: alembic migrate"),
    ("sqlalchemy/", "SQL: SQLAlchemy + sqlite3"),
    ("sqlmodel/", "SQL: SQLAlchemy + sqlite3"),
    ("storage/", "SQL: SQLAlchemy + sqlite3"),
    ("mailer/parse.py", "parse (email stdlib, policy.default)"),
    ("mailer/mime.py", "parse (email stdlib, policy.default)"),
    ("mailer/html_text.py", "parse (email stdlib, policy.default)"),
    ("mailer/rules.py", "classify (rules)"),
    ("mailer/threader.py", "threader"),
    ("mailer/sla.py", "SLA calendar (holidays)"),
    ("holidays/", "SLA calendar (holidays)"),
    ("mailer/render.py", "render ack (jinja2, babel, email)"),
    ("jinja2/", "render ack (jinja2, babel, email)"),
    ("babel/", "render ack (jinja2, babel, email)"),
    ("imapclient/", "IMAP fetch (imapclient/imaplib)"),
    ("imaplib", "IMAP fetch (imapclient/imaplib)"),
    ("mailer/imap.py", "IMAP fetch (imapclient/imaplib)"),
    ("aiosmtplib/", "SMTP (aiosmtplib)"),
    ("mailer/smtp.py", "SMTP (aiosmtplib)"),
    ("mailer/outbox.py", "outbox loop"),
    ("mailer/fetch.py", "fetch loop"),
    ("mailer/pipeline.py", "pipeline driver (sha256, contextvars)"),
    ("mailer/", "mailer other"),
    ("asyncio/", "asyncio loop, to_thread hand-offs"),
    ("concurrent/futures", "thread pool hand-offs"),
    ("threading.py", "thread pool hand-offs"),
)


def frame(text: str) -> tuple[str, str]:
    func, _, loc = text.rpartition(" (")
    return func, re.sub(r":\d+\)?$", "", loc.rstrip(")"))


WAITING = {  # leaf frames where a thread only waits (idle pool workers, select, blocking reads)
    ("_worker", "concurrent/futures/thread.py"),
    ("EpollSelector.select", "selectors.py"),
    ("IMAPClient._poll_socket", "imapclient/imapclient.py"),
    ("SocketIO.readinto", "socket.py"),
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
    ("Thread.join", "threading.py"),
    ("Thread._wait_for_tstate_lock", "threading.py"),
}


def category(frames: list[tuple[str, str]]) -> str:
    if frames and frames[-1] in WAITING:
        return "WAIT"
    if any(f.endswith("_on_begin") for f, _ in frames):
        return "SQL: BEGIN IMMEDIATE (waits for the write lock)"
    for _func, file in reversed(frames):
        for needle, label in CATEGORIES:
            if needle in file:
                return label
    return "other"


def profile_report(raw: Path, title: str, wall_s: float, rate: int) -> str:
    """Shares of the busy samples (all threads; waits left out) by category, by project
    function (inclusive) and by leaf function (self)."""
    cats: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count, parts = int(n), stack.split(";")
        proc = ""
        while parts and parts[0].startswith("process "):  # py-spy --subprocesses: the chain
            proc = "sender process/" if "multiprocessing" in parts[0] else ""
            parts = parts[1:]
        if not parts:
            continue
        has_thread = parts[0].startswith("thread")
        thread = proc + (re.sub(r"_\d+$", "_N", parts[0].split(": ", 1)[-1]) if has_thread else "?")
        frames = [frame(p) for p in (parts[1:] if has_thread else parts)]
        cat = category(frames)
        if not frames:  # a thread with no Python frame: interpreter start-up or exit
            continue
        if cat == "WAIT":
            waiting += count
            continue
        total += count
        threads[thread] += count
        cats[cat] += count
        if frames:
            leaf["{} ({})".format(*frames[-1])] += count
        for f, file in set(frames):
            if "mailer/" in file or "storage/" in file:
                incl[f"{file.split('main/')[-1]}:{f}"] += count
    if not total:
        return f"{title}: no samples"
    p = lambda c: 100 * c / total  # noqa: E731
    out = [
        f"{title}: {total} busy samples (+{waiting} waiting) at {rate} Hz over {wall_s:.1f}s wall "
        f"= {total / rate / wall_s:.2f} threads busy on average",
        "  busy samples by thread: " + ", ".join(f"{t} {p(c):.0f}%" for t, c in threads.most_common(6)),
        "  by category (leaf-most frame that matches):",
    ]
    out += [f"    {p(c):5.1f}%  {k}" for k, c in cats.most_common()]
    out += ["  project functions, inclusive:"]
    out += [f"    {p(c):5.1f}%  {k}" for k, c in incl.most_common(30)]
    out += ["  self time (leaf frames):"]
    out += [f"    {p(c):5.1f}%  {k}" for k, c in leaf.most_common(30)]
    return "\n".join(out)


# --- main ------------------------------------------------------------------------------------


def log_events(path: Path) -> tuple[Counter[str], list[str]]:
    events: Counter[str] = Counter()
    problems = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            problems.append(line[:300])
            continue
        events[e.get("event", "?")] += 1
        if e.get("level") in ("error", "critical") and e.get("event") != "mail_dead_lettered":
            problems.append(json.dumps(e)[:2000])
    return events, problems


def sender_cpu(r: dict[str, Any]) -> str:
    if not r.get("child_cpu_s"):
        return ""
    return f" + sender process CPU {r['child_cpu_s']:.1f}s (peak RSS {r['child_rss_mb']:.0f} MB)"


def cpu_budget(tag: str, r: dict[str, Any], stack: Stack) -> dict[str, float]:
    """Print (and return) the CPU seconds of the run: daemon, its sender process, Postfix and
    Dovecot (measured after the last ack landed), against the two cores' wall time."""
    c = r["counts"]
    acks = c["outbox"].get(OutboxState.SENT, 0)
    st = cpu_delta(r["stack_cpu0"], stack_cpu(stack))
    cpu = {
        "daemon": r["cpu_s"],
        "sender": r.get("child_cpu_s", 0.0),
        "postfix": st.get("postfix", 0.0),
        "dovecot": st.get("dovecot", 0.0),
    }
    total = sum(cpu.values())
    per_ack = (
        f"; per ack: Postfix {1000 * cpu['postfix'] / acks:.1f} ms, Dovecot "
        f"{1000 * (cpu['dovecot']) / acks:.1f} ms (incl. its IMAP side of the fetch)"
        if acks
        else ""
    )
    print(
        f"  {tag} CPU seconds: daemon {cpu['daemon']:.1f} + sender process {cpu['sender']:.1f} + Postfix "
        f"{cpu['postfix']:.1f} + Dovecot {cpu['dovecot']:.1f} = {total:.1f} s, i.e. >= {total / 2:.1f} s "
        f"of wall on 2 cores{per_ack}"
    )
    return {**cpu, "total": total}


def describe(tag: str, r: dict[str, Any], n: int) -> None:
    c = r["counts"]
    events, problems = log_events(r["log"])
    print(
        f"  {tag}: tickets {c['tickets']}, inbound stored {c['in']} {c['kinds']}, dead letters "
        f"{c['dead']}, outbox {c['outbox']}; ingested {c['ingested']}/{n}"
        f"{'' if c['ingested'] == n else '  <-- NOT N'}; peak RSS {r['rss_mb']:.0f} MB, "
        f"daemon process CPU {r['cpu_s']:.1f}s ({1000 * r['cpu_s'] / max(1, c['ingested']):.1f} ms/mail)"
        f"{sender_cpu(r)}; 1-min load average {os.getloadavg()[0]:.1f}"
    )
    if c["other_offices_in"]:
        print(f"    (other offices' mailboxes held {c['other_offices_in']} mails; not counted)")
    for (step, err), k in Counter((s, e[:160]) for s, e in c["dead_steps"]).most_common(5):
        print(f"    dead letter x{k}: step {step}: {err}")
    print(f"    log events: {dict(events.most_common(8))}")
    for p in problems[:3]:
        print(f"    LOG PROBLEM: {p}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=5000, help="backlog size (default 5000)")
    ap.add_argument("--latency", type=int, default=50, help="mails for the latency run (0: skip)")
    ap.add_argument("--profile", action="store_true", help="also profile A and B with py-spy")
    ap.add_argument("--stack", choices=("private", "shared"), default="private")
    ap.add_argument("--keep", action="store_true", help="keep the scratch databases")
    ap.add_argument(
        "--sender-process", action="store_true", help="B2 and latency with outbox.own_process = true"
    )
    ap.add_argument("--child", choices=("once", "daemon"), help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--sending", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--wait-go", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    if args.sender_process:
        os.environ[SENDER_PROCESS] = "1"
        print("B2 and the latency run: outbox.own_process = true (the senders in a child process)")

    head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--short", "mailer", "storage"], cwd=ROOT, capture_output=True, text=True
    )
    print(f"code: {head.stdout.strip()[:80]}; changed: {' '.join(dirty.stdout.split()[1::2]) or 'nothing'}")
    print(
        f"machine: {os.cpu_count()} cores ({cpu_model()}), "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    stack = Stack.private() if args.stack == "private" else Stack.from_env()
    os.environ.update(stack.env())
    t0 = time.monotonic()
    stack.up()
    print(
        f"stack: {args.stack} ({stack.dir}, IMAP {stack.imap_port}, SMTP {stack.smtp_port}) up "
        f"in {time.monotonic() - t0:.1f}s"
    )
    corpus = ensure_corpus(args.n)
    n = len(corpus_files(corpus))
    load_backlog(stack, corpus)
    tmp = Path(tempfile.mkdtemp(prefix="pst-bench-"))
    summary: dict[str, Any] = {}
    try:
        print("\nrun A: ingest only (run_once, outbox.enabled = false)")
        a = run_once("A-ingest", stack, tmp, sending=False)
        describe("A", a, n)
        ingest_rate = a["counts"]["ingested"] / a["run_s"]
        print(f"  => {a['run_s']:.2f}s (+{a['startup_s']:.2f}s start-up), {ingest_rate:.0f} mails/s ingested")
        a["cpu"] = cpu_budget("A", a, stack)
        expect = a["counts"]
        want = recipients(a["db"])

        print("\nrun B1: end to end, Daemon.run_once() (fetch everything, then drain the outbox)")
        print(f"  ({clear_requesters(stack)})")
        mlog = Maillog(stack)
        b1 = run_once("B1-run_once", stack, tmp, sending=True)
        describe("B1", b1, n)
        dv1 = wait_delivered(mlog, want, b1["start_wall"] + b1["startup_s"])
        phases = phase_times(b1["log"])
        b1_rate = b1["counts"]["ingested"] / b1["run_s"]
        print(
            f"  => {b1['run_s']:.2f}s (+{b1['startup_s']:.2f}s start-up), {b1_rate:.0f} mails/s end to end; "
            f"{phases}"
        )
        print(
            f"  acks: outbox sent {b1['counts']['outbox'].get('sent', 0)}/{expect['outbox_total']}; "
            f"Postfix LMTP -> Dovecot delivered {dv1['delivered']}/{sum(want.values())} "
            f"(missing {dv1['missing']}), all landed {dv1['landed_s']:.1f}s after start"
        )

        b1["cpu"] = cpu_budget("B1", b1, stack)

        print("\nrun B2: end to end, run_forever (IDLE watcher + outbox sender concurrently)")
        print(f"  ({clear_requesters(stack)})")
        mlog = Maillog(stack)
        b2 = run_daemon("B2-daemon", stack, tmp, expect)
        describe("B2", b2, n)
        dv2 = wait_delivered(mlog, want, b2["start_wall"])
        b2_rate = b2["counts"]["ingested"] / b2["run_s"]
        print(
            f"  => {b2['run_s']:.2f}s to the last ack sent (last mail stored at {b2['ingest_s']:.2f}s; "
            f"poll saw it at {b2['seen_s']:.2f}s), {b2_rate:.0f} mails/s end to end"
            f"{'  TIMED OUT ' + str(b2['state']) if b2['timed_out'] else ''}"
        )
        print(
            f"  acks: outbox sent {b2['counts']['outbox'].get('sent', 0)}/{expect['outbox_total']}; "
            f"delivered into Dovecot {dv2['delivered']}/{sum(want.values())} (missing {dv2['missing']}), "
            f"all landed {dv2['landed_s']:.1f}s after start"
        )
        b2["cpu"] = cpu_budget("B2", b2, stack)
        for line in sample_mailboxes(stack, [a for a, _ in want.most_common(2)] + sorted(want)[:2]):
            print(f"    {line}")
        left = inbox_count(stack)
        if left != n:
            print(f"  WARNING: the office INBOX now holds {left} mails, not {n}: something else used it")

        if args.profile:
            print("\nprofiles (py-spy, separate runs; their timings are not the figures above)")
            for tag, kind in (("P-A-ingest", "A"), ("P-B1-run_once", "B1"), ("P-B2-daemon", "B2")):
                if kind == "B2":
                    r = run_daemon(tag, stack, tmp, expect, profile=True)
                else:
                    r = run_once(tag, stack, tmp, sending=kind == "B1", profile=True)
                report = profile_report(r["profile"], f"{kind} ({tag})", r["run_s"], SPY_RATE)
                (OUT / f"profile-{tag}.txt").write_text(report + "\n")
                print(report)
                print(
                    f"  (report: bench/out/profile-{tag}.txt; raw stacks: {r['profile'].relative_to(ROOT)})"
                )

        lat: dict[str, Any] = {}
        if args.latency:
            print(
                f"\nlatency: run_forever on B2's database (caught up), {args.latency} mails one at a time "
                f"via Postfix :{stack.smtp_port}"
            )
            lat = latency(stack, b2["db"], args.latency)
            rows = lat["rows"]
            for key, label in (
                ("sent_seen_ms", "SMTP return -> ack's outbox row 'sent' (5 ms poll)"),
                ("in_office_ms", "  the mail in the office INBOX (Postfix -> LMTP -> Dovecot)"),
                ("to_pipeline_ms", "  pipeline starts (+ Dovecot IDLE notice, UID SEARCH, FETCH)"),
                ("pipeline_to_sent_ms", "  pipeline start -> Postfix's 250 for the ack"),
                ("landed_ms", "SMTP return -> ack in the requester's Dovecot INBOX"),
            ):
                vals = [r[key] for r in rows if r[key] == r[key]]
                print(
                    f"  {label:62s} p50 {pct(vals, 50):6.0f} ms  p95 {pct(vals, 95):6.0f} ms  "
                    f"max {max(vals):6.0f} ms"
                )
            print(f"  peak RSS {lat['rss_mb']:.0f} MB")

        summary = {"a": a, "b1": b1, "b2": b2, "lat": lat}
        print_summary(n, summary)
    finally:
        if args.keep:
            print(f"databases kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def phase_times(log_path: Path) -> str:
    """From the JSON log of a run_once: when fetching ended and sending began/ended."""
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        ev, ts = e.get("event"), e.get("timestamp")
        if ev in ("mailbox_connected", "mailbox_synced", "mail_sent") and ts:
            first.setdefault(ev, ts)
            last[ev] = ts
    if "mailbox_connected" not in first or "mail_sent" not in first:
        return "(no phase timestamps in the log)"
    t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()  # noqa: E731
    start = t(first["mailbox_connected"])
    return (
        f"phases from the log: fetch+ingest {t(last['mailbox_synced']) - start:.1f}s, "
        f"then sending {t(last['mail_sent']) - t(first['mail_sent']):.1f}s "
        f"(first ack at {t(first['mail_sent']) - start:.1f}s)"
    )


def print_summary(n: int, s: dict[str, Any]) -> None:
    a, b1, b2, lat = s["a"], s["b1"], s["b2"], s["lat"]
    ingest = a["counts"]["ingested"] / a["run_s"]
    e1 = b1["counts"]["ingested"] / b1["run_s"]
    e2 = b2["counts"]["ingested"] / b2["run_s"]
    rows = lat.get("rows", [])
    p50 = pct([r["sent_seen_ms"] for r in rows], 50) if rows else float("nan")
    p95 = pct([r["sent_seen_ms"] for r in rows], 95) if rows else float("nan")
    ok = lambda cond: "ok" if cond else "MISSED"  # noqa: E731
    best = max(e1, e2)
    print("\n" + "=" * 100)
    print(
        f"backlog N={n}: end-to-end {e1:.0f} mails/s ({b1['run_s']:.1f} s) [run_once] / {e2:.0f} mails/s "
        f"({b2['run_s']:.1f} s) [daemon]; ingest only {ingest:.0f} mails/s ({a['run_s']:.1f} s); "
        f"peak RSS {a['rss_mb']:.0f} MB (ingest) / {b1['rss_mb']:.0f} MB (end to end, run_once) / "
        f"{daemon_rss_text(b2)} (daemon); ack latency p50 {p50:.0f} ms, p95 {p95:.0f} ms"
    )
    print(
        f"targets: end to end >= 200/s {ok(best >= TARGETS['e2e_per_s'])} (best {best:.0f}/s); "
        f"ingest >= 400/s {ok(ingest >= TARGETS['ingest_per_s'])}; peak RSS < 200 MB "
        f"{ok(max(a['rss_mb'], b1['rss_mb'], daemon_rss(b2)) < TARGETS['rss_mb'])}; "
        f"p95 < 1 s {ok(p95 < TARGETS['p95_ms']) if rows else 'not run'}"
    )
    budget = []
    for tag, r in (("A", a), ("B1", b1), ("B2", b2)):
        c = r.get("cpu")
        if c:
            budget.append(
                f"{tag} {c['total']:.1f} s (daemon {c['daemon']:.1f}, sender {c['sender']:.1f}, "
                f"Postfix {c['postfix']:.1f}, Dovecot {c['dovecot']:.1f})"
            )
    print("CPU seconds: " + "; ".join(budget))
    loads = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {loads} ({os.cpu_count()} cores)")
    print("=" * 100)


if __name__ == "__main__":
    sys.exit(main())
