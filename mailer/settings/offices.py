"""The offices: each `[offices.CODE]` table (who it is, what it publishes, its promise), with
its `[….hours]`, `[….sla]`, `[….staff]`, `[….calendar]`, `[….imap]` / `[….smtp]` and the
optional `[….complaint_mailbox]` (a mailbox of its own for complaints); and `[closing]`
(when an answered ticket is closed), which an office's own `[offices.CODE.closing]` overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from zoneinfo import ZoneInfo

from mailer.settings.levels import Province
from mailer.settings.reader import EMAIL, TableReader
from mailer.settings.sections import remind_share
from mailer.settings.servers import ImapSettings, SmtpSettings, read_imap, read_second_imap, read_smtp
from mailer.settings.working_time import ZONE_LABELS, CalendarSettings, OfficeHours, read_calendar, read_hours


@dataclass(frozen=True)
class StaffSettings:
    """Who answers the public for an office, and whether their mail must prove it."""

    addresses: frozenset[str] = frozenset()  # officers' own addresses
    domains: tuple[str, ...] = ()  # every address at these domains (and their subdomains)
    require_authentication: bool = False  # count staff mail only if Authentication-Results pass
    authserv_ids: tuple[str, ...] = ()  # the office's receiving server(s), as named in that header
    confirm_commands: bool = False  # tell the officer each command carried out (refusals always)

    def knows(self, address: str) -> bool:
        """Whether an address belongs to the office's staff by the settings (not yet verified)."""
        domain = address.rpartition("@")[2]
        return address in self.addresses or any(domain == d or domain.endswith("." + d) for d in self.domains)


class AfterWait(StrEnum):
    """What the SLA clock does when the requester answers a ticket the office put to waiting
    (#tunggu): `[offices.CODE.sla] after_wait`."""

    PAUSE = "pause"  # it runs on: the deadline moves by the office time spent waiting
    RESTART = "restart"  # a full new period from the clarification ("setelah permintaan jelas")


@dataclass(frozen=True)
class Promise:
    """How an office counts and words its promise (`[offices.CODE.sla]`)."""

    after_wait: AfterWait = AfterWait.PAUSE
    # The promise as the acknowledgement states it, by language ("id", "en"): the standard's
    # own words, e.g. "3 (tiga) hari kerja setelah permintaan jelas dan …"; none: the templates'
    # "N hari kerja setelah email diterima".
    words: tuple[tuple[str, str], ...] = ()

    def worded(self, lang: str) -> str:
        """The promise's words in `lang`, "" when the office sets none."""
        return dict(self.words).get(lang, "")


@dataclass(frozen=True)
class ComplaintMailbox:
    """An office's own mailbox for complaints (e.g. Kediri's ipds3571@bps.go.id), watched like its
    main one: every mail found in it is a complaint. Its address is one of the office's own."""

    email: str
    imap: ImapSettings

    @property
    def key(self) -> str:
        """How its mail and cursor are filed (the main mailbox's are by folder name alone):
        `ipds3571@bps.go.id/INBOX`."""
        return f"{self.email}/{self.imap.folder}"


@dataclass(frozen=True)
class Office:
    code: str
    name: str
    email: str
    province_code: str
    time_zone: str  # IANA name, e.g. Asia/Jakarta
    time_zone_label: str  # WIB / WITA / WIT
    address: str
    phone: str
    whatsapp: str
    website: str
    sk_number: str
    sla_working_days: int
    hours: OfficeHours
    complaint_channels: tuple[tuple[str, str], ...]  # (label, value) in published order
    imap: ImapSettings
    smtp: SmtpSettings
    staff: StaffSettings = field(default_factory=StaffSettings)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    head: str = ""  # the head of office: escalation level 1, digests, complaints, the monthly report
    remind_at_share: float | None = None  # this office's own escalation.remind_at_share
    closing_after_days: float = 7.0  # an answered ticket quiet this long is closed
    complaint_addresses: tuple[str, ...] = ()  # mail to these is a complaint (e.g. ipds3571@)
    complaint_sla_working_days: int = 2  # the working deadline of a complaint (internal unless published)
    complaint_days_published: bool = False  # the office configured a complaint promise: acks state it
    hours_published: bool = False  # its standard publishes the hours: acks print them as its hours
    asks_identity_and_purpose: bool = False  # its standard asks the requester to state both
    free_of_charge: bool = False  # its standard says the service is free
    head_title: str = ""  # how the head is addressed ("Kepala BPS Kabupaten Pasuruan")
    desk_name: str = ""  # the desk's one name as a sender and signature ("PST BPS Kabupaten Pasuruan")
    promise: Promise = field(default_factory=Promise)  # [….sla]: after a wait, and its words
    complaint_mailbox: ComplaintMailbox | None = None  # its address is in complaint_addresses too

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]


def read_offices(r: TableReader, provinces: dict[str, Province], env: dict[str, str]) -> tuple[Office, ...]:
    """Every [offices.CODE] in the file's order (at least one)."""
    offices = tuple(_office(r.table(code), code, provinces, env) for code in r.data)
    if not offices:
        raise r.fail_table("no office is configured")
    return offices


def _office(r: TableReader, code: str, provinces: dict[str, Province], env: dict[str, str]) -> Office:
    if not re.fullmatch(r"\d{4}", code):
        raise r.fail_table("office code must be 4 digits (BPS region code)")
    email = r.text("email").lower()
    if not EMAIL.match(email):
        raise r.fail("email", f"not an email address: {email!r}")
    province = r.text("province")
    if province not in provinces:
        raise r.fail("province", f"no [provinces.{province}] table")
    time_zone = r.known_zone("time_zone", r.text("time_zone"))
    office = Office(
        code=code,
        name=r.text("name"),
        email=email,
        province_code=province,
        time_zone=time_zone,
        time_zone_label=r.choice("time_zone_label", ZONE_LABELS),
        address=r.text("address", ""),
        phone=r.text("phone", ""),
        whatsapp=r.text("whatsapp", ""),
        website=r.text("website", ""),
        sk_number=r.text("sk_number", ""),
        sla_working_days=r.integer("sla_working_days", 2, minimum=1),
        hours=read_hours(r.table("hours")),
        complaint_channels=_channels(r),
        imap=read_imap(r.table("imap"), env),
        smtp=read_smtp(r.table("smtp"), env),
        staff=_staff(r.table("staff", required=False)),
        calendar=read_calendar(r.table("calendar", required=False)),
        head=r.address("head"),
        remind_at_share=remind_share(r, None),
        complaint_addresses=r.addresses("complaint_addresses"),
    )
    published = "complaint_sla_working_days" in r.data
    complaint_days = r.integer("complaint_sla_working_days", office.sla_working_days, minimum=1)
    head_title = r.text("head_title", "")
    if office.head and not head_title:
        raise r.fail("head_title", 'missing (how notices to the head address them, e.g. "Kepala BPS Kota X")')
    office = replace(
        office,
        complaint_sla_working_days=complaint_days,
        complaint_days_published=published,
        hours_published=r.flag("hours_published", False),
        asks_identity_and_purpose=r.flag("asks_identity_and_purpose", False),
        free_of_charge=r.flag("free_of_charge", False),
        head_title=head_title,
        desk_name=r.text("desk_name", "") or f"PST {office.name}",
    )
    mailbox = _complaint_mailbox(r.table("complaint_mailbox", required=False), office, env)
    if mailbox is not None:
        addresses = tuple(dict.fromkeys((*office.complaint_addresses, mailbox.email)))
        office = replace(office, complaint_mailbox=mailbox, complaint_addresses=addresses)
    r.seen.update(("closing", "sla"))  # [….closing]: read_closing's; [….sla]: once these keys are good
    r.done()
    promise = _promise(r.table("sla", required=False), office.sla_working_days)
    return replace(office, promise=promise)


# The labels a complaint channel may have, with their English: the English acknowledgement
# names each channel in English (the value, as published, stays as it is).
CHANNEL_LABELS = {
    "Langsung": "In person",
    "Telepon": "Phone",
    "WhatsApp": "WhatsApp",
    "Email": "Email",
    "Website": "Website",
    "Facebook": "Facebook",
    "Instagram": "Instagram",
    "LAPOR!": "LAPOR!",
}


def _channels(r: TableReader) -> tuple[tuple[str, str], ...]:
    r.seen.add("complaint_channels")
    value = r.data.get("complaint_channels")
    if not isinstance(value, list) or not value:
        raise r.fail("complaint_channels", "must be a non-empty list of [label, value] pairs")
    pairs = []
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise r.fail(f"complaint_channels[{i}]", "must be a [label, value] pair of strings")
        if item[0] not in CHANNEL_LABELS:
            known = ", ".join(CHANNEL_LABELS)
            raise r.fail(f"complaint_channels[{i}]", f"unknown label {item[0]!r} (one of: {known})")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def _complaint_mailbox(r: TableReader, office: Office, env: dict[str, str]) -> ComplaintMailbox | None:
    """[offices.CODE.complaint_mailbox], or None when the office has no such table."""
    if not r.data:
        return None
    email = r.address("email", required=True)
    if email == office.email:
        raise r.fail("email", f"{email} is the office's main address (offices.{office.code}.email)")
    imap = read_second_imap(r, env, office.imap, email)
    r.done()
    return ComplaintMailbox(email, imap)


def _promise(r: TableReader, days: int) -> Promise:
    """[offices.CODE.sla]: after_wait, and the promise's words in both languages or in none.
    Words that name another number of days than `sla_working_days` are refused: the public
    would read one promise and the desk count another."""
    after_wait = AfterWait(r.choice("after_wait", tuple(AfterWait), AfterWait.PAUSE))
    words = {lang: r.text(f"promise_{lang}", "") for lang in ("id", "en")}
    if bool(words["id"]) != bool(words["en"]):
        missing = "promise_en" if words["id"] else "promise_id"
        raise r.fail(missing, "the promise needs its words in both languages (promise_id and promise_en)")
    for lang, text in words.items():
        found = re.match(r"(\d+)\b", text)
        if text and (found is None or int(found.group(1)) != days):
            reason = f"must start with the office's sla_working_days ({days}), got {text[:40]!r}"
            raise r.fail(f"promise_{lang}", reason)
    r.done()
    return Promise(after_wait, tuple((lang, text) for lang, text in words.items() if text))


def _staff(r: TableReader) -> StaffSettings:
    addresses = r.addresses("addresses")
    domains = [d.lower().lstrip("@") for d in r.strings("domains")]
    for i, domain in enumerate(domains):
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
            raise r.fail(f"domains[{i}]", f"not a domain name: {domain!r}")
    required = r.flag("require_authentication", True)  # safe unless the file says otherwise
    ids = tuple(x.lower() for x in r.strings("authserv_ids"))
    confirm = r.flag("confirm_commands", False)
    if required and not ids:
        raise r.fail(
            "authserv_ids",
            "require_authentication needs the authserv-id of the office's receiving server "
            "(only its Authentication-Results are trusted)",
        )
    r.done()
    return StaffSettings(frozenset(addresses), tuple(domains), required, ids, confirm)


def read_closing(
    r: TableReader, offices_table: TableReader, offices: tuple[Office, ...]
) -> tuple[Office, ...]:
    """[closing] after_days for every office, [offices.X.closing] after_days for one."""
    default = r.number("after_days", 7.0)
    r.done()
    out = []
    for office in offices:
        table = offices_table.table(office.code).table("closing", required=False)
        out.append(replace(office, closing_after_days=table.number("after_days", default)))
        table.done()
    return tuple(out)


def check_unique(r: TableReader, offices: tuple[Office, ...]) -> None:
    """No two offices share an address or an IMAP login, a complaint mailbox's included
    ([offices] is `r`)."""
    seen: dict[str, str] = {}
    for office in offices:
        found = [("email", "address", office.email), ("imap.username", "login", office.imap.username)]
        if office.complaint_mailbox is not None:
            box = office.complaint_mailbox
            found += [
                ("complaint_mailbox.email", "address", box.email),
                ("complaint_mailbox.username", "login", box.imap.username),
            ]
        for key, kind, value in found:
            marker = f"{kind}={value}"
            if marker in seen and seen[marker] != office.code:
                raise r.fail(f"{office.code}.{key}", f"{value} is also used by office {seen[marker]}")
            seen[marker] = office.code
