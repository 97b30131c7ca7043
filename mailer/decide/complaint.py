"""Is a new mail a complaint about the service (pengaduan)? Pure: the rule and its reason.

The rule, in order (the first that holds):
1. It is addressed (To/Cc) to one of the office's complaint addresses
   (`offices.X.complaint_addresses`, e.g. Kediri's ipds3571@bps.go.id): a complaint, whatever
   it says.
2. Its subject names a complaint as a noun: pengaduan, aduan, keluhan, komplain, complaint,
   keberatan — unless a data word comes just before it ("data pengaduan", "jumlah keluhan",
   "statistik pengaduan": a request for statistics *about* complaints).
3. A sentence of what the person wrote (quotes cut) has a complaint word — the nouns above or
   the verbs mengadukan, mengadu, mengeluhkan, mengeluh, complain — and, in the same sentence,
   a word naming the service: pelayanan, layanan, petugas, PST, balasan, dibalas, tanggapan,
   ditanggapi, respon(s), service, staff, officer, reply, response. Not when the complaint word
   is about data ("mengadukan data yang salah", "keluhan terkait data": a data problem is a
   request for the office to look at the data, handled as a consultation).
4. A sentence declares one: a complaint noun right after a verb of filing it ("Saya ingin
   menyampaikan pengaduan: sudah 5 hari data belum dikirim", "mengajukan keluhan", "I want
   to file a complaint"), or "ingin/mau komplain", "want to complain". Not about data either.
Anything else is a request. (A mail found in the office's own complaint mailbox,
`offices.X.complaint_mailbox`, is a complaint before any of these is read: pipeline/reading.py.)

The same rule reads a follow-up in an existing conversation (pipeline/complaints.py): there the
sentences of the ticket's earlier mails (`history`: our acknowledgement names the complaint
channels, "Pengaduan layanan dapat disampaikan melalui …") do not count, so a reply that
pastes them without quote marks is no complaint.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from mailer.decide.trim import trim
from mailer.model import ParsedMail

_NOUNS = r"pengaduan|aduan|keluhan|komplain|complaint|complaints|keberatan"
_VERBS = r"mengadukan|mengadu|mengeluhkan|mengeluh|complain|complaining|komplen"
_DATA_BEFORE = re.compile(
    rf"\b(?:data|jumlah|banyaknya|statistik|rekap|rekapitulasi|angka|tabel|number of|statistics on|data on)"
    rf"(?:\s+\w+)?\s+(?:{_NOUNS})\b"
)
_NOUN = re.compile(rf"\b(?:{_NOUNS})\b")
_ANY = re.compile(rf"\b(?:{_NOUNS}|{_VERBS})\b")
_ABOUT_DATA = re.compile(
    rf"\b(?:{_NOUNS}|{_VERBS})\s+(?:\w+\s+){{0,2}}?(?:data|angka|tabel|publikasi|kesalahan data)\b"
)
_SERVICE = re.compile(
    r"\b(?:pelayanan|layanan|petugas|pst|balasan|dibalas|tanggapan|ditanggapi|respon|respons|"
    r"service|staff|officer|officers|reply|response)\b"
)
_DECLARED = re.compile(
    rf"\b(?:menyampaikan|mengajukan|sampaikan|ajukan|memberikan|file|lodge|make|submit|raise)\s+"
    rf"(?:(?:sebuah|suatu|satu|a|an|my|our|formal)\s+)?(?:{_NOUNS})\b"
    r"|\b(?:ingin|mau|akan|hendak|want to|wish to|would like to)\s+"
    r"(?:mengadu|mengeluh|komplain|komplen|complain)\b"
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_BODY_CHARS = 3000
BODY_RULE = "a complaint about the service"  # how a reason by rule 3 starts
MAILBOX_RULE = "found in the complaint mailbox {}"  # the reason for any mail in it (pipeline/reading.py)


def reason(mail: ParsedMail, complaint_addresses: Collection[str], history: Sequence[str] = ()) -> str:
    """Why this mail is a complaint about the service, or "" when it is a request; a sentence
    that is also in `history` (the texts of the conversation's earlier mails) is not read."""
    for address in (*mail.to, *mail.cc):
        if address.email in complaint_addresses:
            return f"sent to the complaint address {address.email}"
    subject = " ".join(mail.subject.casefold().split())
    if _NOUN.search(subject) and not _DATA_BEFORE.search(subject):
        return f"the subject names a complaint: {mail.subject.strip()[:80]!r}"
    fresh, _ = trim(mail.text[:_BODY_CHARS])
    earlier = "\n".join(" ".join(text.casefold().split()) for text in history)
    for sentence in _SENTENCE.split(fresh.casefold()):
        sentence = " ".join(sentence.split())
        if not _ANY.search(sentence) or not (_SERVICE.search(sentence) or _DECLARED.search(sentence)):
            continue
        if _DATA_BEFORE.search(sentence) or _ABOUT_DATA.search(sentence):
            continue
        if earlier and sentence in earlier:
            continue  # quoted from an earlier mail (ours names the complaint channels)
        return f"{BODY_RULE}: {sentence[:80]!r}"
    return ""


def phrase(reason: str) -> str:
    """A `reason` as the head of office reads it, in Indonesian (the reason itself stays in the
    log and the ticket's events): "dikirim ke alamat pengaduan ipds3571@bps.go.id", "subjek
    email menyebut pengaduan", "isi email mengeluhkan layanan"."""
    address = reason.removeprefix("sent to the complaint address ")
    if address != reason:
        return f"dikirim ke alamat pengaduan {address}"
    if reason.startswith("the subject names a complaint"):
        return "subjek email menyebut pengaduan"
    return "isi email mengeluhkan layanan"
