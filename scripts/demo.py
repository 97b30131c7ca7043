"""The main job as a newcomer would try it, on the loopback mail stack:

1. members of the public email four BPS offices (Indonesian and English, one out-of-office
   auto-reply among them) through Postfix;
2. `mailer once` reads every office mailbox, opens tickets and sends acknowledgements;
3. one requester replies to her acknowledgement; another pass joins it to her ticket;
4. `mailer tickets` lists the tickets, `mailer show` shows one, and the acknowledgement that
   landed in a requester's Dovecot mailbox is printed as she would read it;
5. `mailer status` shows one office as the operator sees it.

Run through scripts/demo.sh (which sets everything up first).
"""

from __future__ import annotations

import email
import os
import shutil
import smtplib
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from imapclient import IMAPClient

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "var" / "demo"
HOST = "127.0.0.1"
SMTP_PORT = int(os.environ.get("PST_SMTP_PORT", "2525"))
IMAP_PORT = int(os.environ.get("PST_IMAP_PORT", "10143"))
PASSWORD = os.environ.get("PST_MAILSTACK_PASSWORD", "pst-loopback")
OFFICES = ("3571", "3576", "3514", "8205", "1808")

REQUESTS = [
    (
        "Rina Wulandari",
        "rina.wulandari@example.com",
        "3514",
        "Permohonan data penduduk miskin Kabupaten Pasuruan 2024",
        "Yth. Bapak/Ibu petugas PST BPS Kabupaten Pasuruan,\n\n"
        "Saya mahasiswa Universitas Brawijaya dan sedang menyusun skripsi. Mohon informasi "
        "jumlah penduduk miskin per kecamatan di Kabupaten Pasuruan tahun 2024.\n\n"
        "Terima kasih atas bantuannya.\n\nSalam,\nRina Wulandari",
        {},
    ),
    (
        "John Smith",
        "john.smith@example.org",
        "3571",
        "Request for inflation data, Kediri city",
        "Dear Sir/Madam,\n\nI am a researcher at Leiden University. "
        "Could you please tell me where I can find the monthly inflation figures "
        "for Kediri city for 2023 and 2024?\n\nKind regards,\nJohn Smith",
        {},
    ),
    (
        "Ahmad Fauzi",
        "ahmad.fauzi@example.net",
        "8205",
        "Data IPM Kabupaten Halmahera Utara",
        "Selamat siang,\n\nMohon dibantu data Indeks Pembangunan Manusia (IPM) Kabupaten Halmahera Utara "
        "tahun 2020-2024 beserta komponennya.\n\nTerima kasih.\nAhmad",
        {},
    ),
    (
        "Dewi Lestari",
        "dewi.lestari@example.com",
        "1808",
        "Klasifikasi KBLI untuk usaha tambak udang",
        "Permisi Bapak/Ibu,\n\nUsaha tambak udang vaname masuk ke kode KBLI berapa? Terima kasih.\n\nDewi",
        {},
    ),
    (
        "Sri Wahyuni",
        "sri.wahyuni@example.com",
        "ipds3571@bps.go.id",  # Kediri's complaint mailbox: whatever the mail says, a complaint
        "Belum ada kabar",
        "Selamat pagi,\n\nSaya menunggu data inflasi Kota Kediri sejak minggu lalu dan belum ada kabar."
        "\n\nSri Wahyuni",
        {},
    ),
    (
        "Budi Santoso",
        "budi.santoso@example.com",
        "3514",
        "Automatic reply: Tanda terima",
        "Saya sedang cuti sampai 1 Desember 2026 dengan akses email terbatas.",
        {"Auto-Submitted": "auto-replied"},
    ),
]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def mailer(*args: str, check: bool = True) -> int:
    return subprocess.run(
        [sys.executable, "-m", "mailer", "--settings", str(DEMO / "settings.toml"), *args],
        cwd=ROOT,
        check=check,
    ).returncode


def imap(address: str) -> IMAPClient:
    client = IMAPClient(HOST, port=IMAP_PORT, ssl=False, timeout=10)
    client.login(address, PASSWORD)
    return client


def clear(address: str) -> None:
    with imap(address) as client:
        info = client.select_folder("INBOX")
        if info.get(b"EXISTS", 0):
            client.set_flags("1:*", [b"\\Deleted"], silent=True)
            client.expunge()


def inbox(address: str, wait_for: int = 1) -> list[bytes]:
    deadline = time.monotonic() + 15
    with imap(address) as client:
        while True:
            client.select_folder("INBOX", readonly=True)
            uids = client.search("ALL")
            if len(uids) >= wait_for or time.monotonic() > deadline:
                data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
                return [data[u][b"BODY[]"] for u in sorted(data)]
            time.sleep(0.1)


def send(
    name: str, sender: str, office: str, subject: str, body: str, headers: dict[str, str]
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = office if "@" in office else f"bps{office}@bps.go.id"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    for key, value in headers.items():
        msg[key] = value
    msg.set_content(body)
    with smtplib.SMTP(HOST, SMTP_PORT) as smtp:
        smtp.send_message(msg)
    return msg


def prepare() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir(parents=True)
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    text = text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{DEMO / "pst-mailer.sqlite3"}"')
    text = text.replace('format = "auto"', 'format = "console"')
    # the stack's own ports (PST_IMAP_PORT, PST_SMTP_PORT), not the shipped defaults: a second
    # stack on other ports must not have its demo read and answer the first stack's mail
    text = text.replace("port = 10143", f"port = {IMAP_PORT}").replace("port = 2525", f"port = {SMTP_PORT}")
    # the loopback Postfix writes no Authentication-Results: officers' mail is taken on its From
    text = text.replace("require_authentication = true", "require_authentication = false")
    (DEMO / "settings.toml").write_text(text, encoding="utf-8")
    os.environ["PST_MAIL_PASSWORD_3571_PENGADUAN"] = PASSWORD  # Kediri's complaint mailbox
    clear("ipds3571@bps.go.id")
    for code in OFFICES:
        os.environ[f"PST_MAIL_PASSWORD_{code}"] = PASSWORD
        clear(f"bps{code}@bps.go.id")
    for _, sender, *_ in REQUESTS:
        clear(sender)


def main() -> None:
    prepare()
    say("The public writes to four offices and Kediri's complaint mailbox (and an out-of-office notice)")
    for name, sender, office, subject, body, headers in REQUESTS:
        send(name, sender, office, subject, body, headers)
        print(f"  {sender:30} -> {office if '@' in office else f'bps{office}@bps.go.id'}  {subject}")
    for office in ("3514", "3571", "8205", "1808"):
        inbox(f"bps{office}@bps.go.id")
    inbox("ipds3571@bps.go.id")

    say("mailer once: read every office mailbox, open tickets, send acknowledgements")
    mailer("once")

    say("Rina replies to her acknowledgement; the next pass joins it to her ticket, with no second ack")
    ack = email.message_from_bytes(inbox("rina.wulandari@example.com")[0], policy=policy.default)
    send(
        "Rina Wulandari",
        "rina.wulandari@example.com",
        "3514",
        str(ack["Subject"]),
        "Tambahan: kalau ada, saya juga memerlukan data garis kemiskinan tahun yang sama.\n\nRina",
        {"In-Reply-To": ack["Message-ID"], "References": f"{ack['References']} {ack['Message-ID']}"},
    )
    inbox("bps3514@bps.go.id", wait_for=3)
    mailer("once")

    say("mailer tickets")
    mailer("tickets")
    ref = str(ack["X-PST-Ticket"])
    say(f"mailer show {ref}")
    mailer("show", ref)

    say("The acknowledgement in Rina's mailbox (rina.wulandari@example.com, read over IMAP)")
    for key in ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "Auto-Submitted"):
        print(f"{key}: {ack[key]}")
    print()
    print(ack.get_body(("plain",)).get_content())
    print(f"(Rina's mailbox holds {len(inbox('rina.wulandari@example.com'))} message: one acknowledgement.)")
    print(f"(The office mailboxes still hold every mail, unread; the demo database is {DEMO}.)")

    say("mailer status --office 3514: what the operator sees (exit 1 when something needs attention)")
    print(f"(exit {mailer('status', '--office', '3514', check=False)})")
    say("mailer status --office 3571: Kediri's INBOX, Sent folder and complaint mailbox, each its own cursor")
    print(f"(exit {mailer('status', '--office', '3571', check=False)})")


if __name__ == "__main__":
    main()
