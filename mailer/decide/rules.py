"""Pure decisions about an incoming mail: what it is, whether it gets an acknowledgement,
and which language to answer in. No I/O: tested with tables of cases.

Loop protection (RFC 3834 §2 and common practice): never answer mail that is itself
automatic (Auto-Submitted other than "no", X-Autoreply/X-Autorespond, Precedence
bulk/junk/list/auto_reply, Outlook's X-Auto-Response-Suppress), bounces (null return path,
MAILER-DAEMON/postmaster, multipart/report DSNs and ARF feedback reports), list mail (any
RFC 2369/2919 List-* header, ezmlm's Mailing-List), mail from our own office addresses, and
our own mail come back (our X-PST-Mailer header, an X-Loop naming one of our office
addresses, or a Message-ID of the form render.new_message_id gives in one of our domains).
A person's mail whose sender asks for no automatic replies (X-Auto-Response-Suppress: All or
AutoReply) still opens its ticket, unacknowledged.

Spam (no backscatter): a mail the receiving server's filter marked as spam (SpamAssassin and
Amavis, as Zimbra, Postfix and Exim setups write it: X-Spam-Flag: YES, X-Spam-Status: Yes, …,
X-Spam: Yes) is never acknowledged: its From is most often forged, and an automatic reply would
land on an innocent third party. It still opens a ticket, closed at once as spam, so that staff
can reopen a false positive (#buka) and the person's next mail reopens it.

The other way round, every mail we send says it is automatic: Auto-Submitted: auto-replied,
X-Auto-Response-Suppress: All, X-Loop: <office address> (render.py). Acknowledgements keep the
office as envelope sender rather than RFC 3834 §3.3's null one, so that a bounce comes back to
us and flags the address (mailer.intake.bounces, the pipeline's flags step); the checks above keep
that bounce itself unanswered.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from mailer.decide import floods
from mailer.model import Decision, ParsedMail
from storage.vocabulary import MessageKind

OWN_MAILER = "pst-mailer"  # value of our X-PST-Mailer header
OWN_MESSAGE_ID = re.compile(r"^pst\.[0-9a-f]{32}@([^@\s]+)$")  # render.new_message_id, no brackets
_ADDRESS = re.compile(r"[^\s<>,;:\"()]+@[^\s<>,;:\"()]+")
_LIST_HEADERS = (
    "list-id", "list-post", "list-unsubscribe", "list-subscribe", "list-help", "list-owner",
    "list-archive", "x-mailing-list", "mailing-list",
)  # fmt: skip
_LIST_PRECEDENCE = {"bulk", "junk", "list"}
_AUTO_PRECEDENCE = {"auto_reply", "auto-reply", "autoreply"}
_BOUNCE_LOCALPARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?reply|autoreply|auto:|out of (the )?office|balasan otomatis"
    r"|balas otomatis|saya sedang cuti|sedang cuti|abwesenheitsnotiz|réponse automatique|vacation reply"
    r"|undeliverable:|undelivered mail|delivery status notification|mail delivery failed)",
    re.IGNORECASE,
)
_SUPPRESS_AUTOREPLY = {"all", "autoreply", "oof"}
_ID_WORDS = frozenset(
    [
        "yang",
        "dan",
        "di",
        "ke",
        "dari",
        "untuk",
        "dengan",
        "saya",
        "kami",
        "data",
        "tahun",
        "mohon",
        "terima",
        "kasih",
        "bapak",
        "ibu",
        "apakah",
        "bisa",
        "tidak",
        "ada",
        "atau",
        "pada",
        "ini",
        "itu",
        "sudah",
        "belum",
        "bagaimana",
        "berapa",
        "jumlah",
        "penduduk",
        "kabupaten",
        "kota",
        "permohonan",
        "permintaan",
        "informasi",
        "tentang",
        "dalam",
        "atas",
        "selamat",
        "pagi",
        "siang",
        "hormat",
        "yth",
    ]
)
_EN_WORDS = frozenset(
    [
        "the",
        "and",
        "of",
        "to",
        "for",
        "with",
        "i",
        "we",
        "you",
        "is",
        "are",
        "would",
        "could",
        "please",
        "data",
        "year",
        "thank",
        "thanks",
        "dear",
        "regards",
        "kind",
        "like",
        "request",
        "information",
        "about",
        "on",
        "in",
        "this",
        "that",
        "have",
        "has",
        "be",
        "can",
        "from",
        "what",
        "how",
        "which",
        "where",
        "any",
        "my",
        "our",
        "hello",
        "good",
        "morning",
        "sir",
        "madam",
    ]
)
_WORD = re.compile(r"[a-zA-Z]+")


def decide(mail: ParsedMail, own_addresses: Collection[str]) -> Decision:
    """Classify an incoming mail. Returns Decision(kind, reason, acknowledge)."""
    h = mail.headers
    sender = mail.from_.email if mail.from_ else ""
    own = _own_reason(mail, own_addresses)
    if own:
        return Decision(MessageKind.OWN, own, False)
    if is_feedback_report(mail):
        return Decision(MessageKind.FEEDBACK, "multipart/report feedback report (ARF complaint)", False)
    bounce = _bounce_reason(mail, sender)
    if bounce:
        return Decision(MessageKind.BOUNCE, bounce, False)
    auto = _auto_reason(mail)
    if auto:
        return Decision(MessageKind.AUTO_REPLY, auto, False)
    listed = _list_reason(mail)
    if listed:
        return Decision(MessageKind.LIST, listed, False)
    if not sender:
        return Decision(MessageKind.REQUEST, "no usable From address: nobody to acknowledge", False)
    if sender in own_addresses:
        return Decision(
            MessageKind.REQUEST, "sent from an office address of this desk: not acknowledged", False
        )
    spam = spam_verdict(h)
    if spam:
        return Decision(
            MessageKind.REQUEST, f"{spam} (the receiving server's spam filter): not acknowledged", False, True
        )
    if _suppress(h) & {"all", "autoreply"}:
        reason = "X-Auto-Response-Suppress: the sender asks for no automatic reply"
        return Decision(MessageKind.REQUEST, reason, False)
    return Decision(MessageKind.REQUEST, "a person's mail", True)


def spam_verdict(h: dict[str, str]) -> str:
    """The spam filter's header that marks this mail as spam ("" when none does)."""
    for name, label in (
        ("x-spam-flag", "X-Spam-Flag"),
        ("x-spam-status", "X-Spam-Status"),
        ("x-spam", "X-Spam"),
    ):
        if _first_word(h.get(name, "")).rstrip(",") in ("yes", "true"):
            return f"{label}: {h[name].split(',', 1)[0].strip()}"
    return ""


def is_own_message_id(message_id: str | None, own_addresses: Collection[str]) -> bool:
    """Whether a Message-ID (no brackets) is one render.new_message_id made in one of our domains."""
    found = OWN_MESSAGE_ID.match(message_id.lower()) if message_id else None
    return found is not None and any(a.endswith(f"@{found[1]}") for a in own_addresses)


def _own_reason(mail: ParsedMail, own_addresses: Collection[str]) -> str:
    h = mail.headers
    if h.get("x-pst-mailer") == OWN_MAILER:
        return "X-PST-Mailer: our own mail came back"
    looped = [a for a in _ADDRESS.findall(h.get("x-loop", "").lower()) if a in own_addresses]
    if looped:
        return f"X-Loop: {looped[0]} (our own mail came back)"
    if is_own_message_id(mail.message_id, own_addresses):
        return "our own Message-ID came back"
    return ""


def _suppress(h: dict[str, str]) -> set[str]:
    """The values of Outlook's X-Auto-Response-Suppress, lower-cased."""
    return {p.strip().lower() for p in h.get("x-auto-response-suppress", "").split(",")}


def _first_word(value: str) -> str:
    """ "bulk" of 'Bulk', '"bulk"', 'bulk (newsletter)' or 'bulk; x': Precedence as written."""
    words = re.split(r"[\s;(]+", value.strip().strip('"').lower(), maxsplit=1)
    return words[0].strip('"')


def _bounce_reason(mail: ParsedMail, sender: str) -> str:
    if mail.return_path == "":
        return "null return path <>"
    if sender.split("@", 1)[0] in _BOUNCE_LOCALPARTS:
        return f"sender {sender}"
    if "x-failed-recipients" in mail.headers:
        return "X-Failed-Recipients header (Exim bounce)"
    ctype = mail.headers.get("content-type", mail.content_type).lower()
    if mail.content_type == "multipart/report" and "delivery-status" in ctype.replace(" ", ""):
        return "multipart/report delivery status notification"
    return ""


def is_feedback_report(mail: ParsedMail) -> bool:
    """An ARF report (RFC 5965): multipart/report; report-type=feedback-report."""
    ctype = mail.headers.get("content-type", "").lower().replace(" ", "").replace('"', "")
    return mail.content_type == "multipart/report" and "report-type=feedback-report" in ctype


def _auto_reason(mail: ParsedMail) -> str:
    h = mail.headers
    auto_submitted = h.get("auto-submitted", "").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-ms-exchange-inbox-rules-loop"):
        if name in h:
            return f"{name} header"
    precedence = _first_word(h.get("precedence", ""))
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _suppress(h) & _SUPPRESS_AUTOREPLY and _AUTO_SUBJECT.match(mail.subject):
        return "X-Auto-Response-Suppress with an automatic subject"
    if _AUTO_SUBJECT.match(mail.subject):
        return "automatic subject"
    return ""


def _list_reason(mail: ParsedMail) -> str:
    h = mail.headers
    precedence = _first_word(h.get("precedence", ""))
    if precedence in _LIST_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _LIST_HEADERS:
        if name in h:
            return f"{name} header: list or bulk mail"
    return ""


def language(mail: ParsedMail) -> str:
    """ "en" when the request is written in English, otherwise "id" (Bahasa Indonesia)."""
    words = [w.lower() for w in _WORD.findall(f"{mail.subject}\n{mail.text[:3000]}")]
    english = sum(w in _EN_WORDS for w in words)
    indonesian = sum(w in _ID_WORDS for w in words)
    return "en" if english > indonesian else "id"


_ANSWERABLE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def answerable(address: str) -> bool:
    """Whether we can send to this address: a plain ASCII addr-spec with a dotted domain
    (internationalised addresses would need SMTPUTF8, which we do not assume)."""
    return bool(address) and len(address) <= 254 and _ANSWERABLE.match(address) is not None


def acknowledgement_recipient(mail: ParsedMail) -> str | None:
    """Where the acknowledgement goes: From, or the first Reply-To on From's domain (never a
    third party on another domain: floods.reply_to_choice); None without a From."""
    return floods.reply_to_choice(mail.from_, mail.reply_to)[0]
