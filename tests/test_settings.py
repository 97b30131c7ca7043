"""Settings: the shipped settings.toml, and a table of wrong settings that must stop the start
with a ConfigError naming the file, the dotted key and the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailer.errors import ConfigError
from mailer.settings import Secret, Settings, load_settings
from tests.conftest import OFFICE_CODES, ROOT, SHARED, office_env

SHIPPED = ROOT / "settings.toml"
SEEDS = SHARED / "seeds"
PYTHON = ROOT / ".venv" / "bin" / "python"
PASSWORD = "s3cr3t-Pa55word"
SEED_FILES = {
    "3571": "000_e0eccb354ab38758.txt",
    "3576": "001_b5e961370db05087.txt",
    "3514": "002_5a78e8dbf3691280.txt",
    "8205": "003_e3f5f7d2cdddd59f.txt",
    "1808": "004_0e3b2f113904483c.txt",
}


@pytest.fixture(scope="module")
def shipped() -> Settings:
    return load_settings(SHIPPED, environ=office_env(PASSWORD))


def write_settings(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The shipped settings.toml with each (old, new) replaced, written into tmp_path."""
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"settings.toml no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped file ---------------------------------------------------------------------------


def test_shipped_settings_list_the_five_offices_in_order(shipped: Settings) -> None:
    """settings.toml configures exactly Kediri, Mojokerto, Pasuruan, Halmahera Utara, Tulang Bawang."""
    assert tuple(o.code for o in shipped.offices) == OFFICE_CODES


@pytest.mark.parametrize(
    ("code", "name", "email", "province", "time_zone", "label", "sla_days"),
    [
        ("3571", "BPS Kota Kediri", "bps3571@bps.go.id", "3500", "Asia/Jakarta", "WIB", 2),
        ("3576", "BPS Kota Mojokerto", "bps3576@bps.go.id", "3500", "Asia/Jakarta", "WIB", 2),
        ("3514", "BPS Kabupaten Pasuruan", "bps3514@bps.go.id", "3500", "Asia/Jakarta", "WIB", 2),
        ("8205", "BPS Kabupaten Halmahera Utara", "bps8205@bps.go.id", "8200", "Asia/Jayapura", "WIT", 3),
        ("1808", "BPS Kabupaten Tulang Bawang", "bps1808@bps.go.id", "1800", "Asia/Jakarta", "WIB", 3),
    ],
)
def test_shipped_office_identity(
    shipped: Settings,
    code: str,
    name: str,
    email: str,
    province: str,
    time_zone: str,
    label: str,
    sla_days: int,
) -> None:
    """Each office has its name, bps<code>@ mailbox, province, time zone and SLA in working days."""
    office = shipped.office(code)
    assert (office.name, office.email, office.province_code) == (name, email, province)
    assert (office.time_zone, office.time_zone_label, office.tz.key) == (time_zone, label, time_zone)
    assert office.sla_working_days == sla_days
    assert office.domain == "bps.go.id"


def test_shipped_provinces(shipped: Settings) -> None:
    """The three province offices above the five offices are defined with their names."""
    assert {code: p.name for code, p in shipped.provinces.items()} == {
        "3500": "BPS Provinsi Jawa Timur",
        "8200": "BPS Provinsi Maluku Utara",
        "1800": "BPS Provinsi Lampung",
    }


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_shipped_hours_are_weekdays_only(shipped: Settings, code: str) -> None:
    """Every office opens Mon to Thu 08:00 to 15:30, Fri 08:00 to 16:00, and is closed at the weekend."""
    assert shipped.office(code).hours.by_day == {
        "mon": ("08:00", "15:30"),
        "tue": ("08:00", "15:30"),
        "wed": ("08:00", "15:30"),
        "thu": ("08:00", "15:30"),
        "fri": ("08:00", "16:00"),
    }


@pytest.mark.parametrize("code", OFFICE_CODES)
def test_shipped_passwords_come_from_the_environment(shipped: Settings, code: str) -> None:
    """IMAP reads the password from PST_MAIL_PASSWORD_<code>; unauthenticated loopback SMTP has none."""
    office = shipped.office(code)
    assert office.imap.password.value == PASSWORD
    assert office.imap.username == office.email
    assert (office.smtp.username, office.smtp.password) == (None, None)


def _fact(settings: Settings, code: str, field: str) -> str:
    office = settings.office(code)
    if field.startswith("channel:"):
        return dict(office.complaint_channels)[field.removeprefix("channel:")]
    return str(getattr(office, field))


def _seed_text(code: str) -> str:
    return " ".join((SEEDS / SEED_FILES[code]).read_text(encoding="utf-8").split())


SEED_FACTS = [
    ("3571", "whatsapp", "0811-350-3571", "Whatsapp : 0811-350-3571"),
    ("3571", "phone", "(0354) 773238", "0354773238"),
    ("3571", "channel:Email", "ipds3571@bps.go.id", "Email : ipds3571@bps.go.id"),
    ("3571", "channel:Telepon", "(0354) 773 238 (pada jam kerja)", "Telp. : (0354) 773 238 (pada jam kerja)"),
    ("3571", "website", "https://kedirikota.bps.go.id", "kedirikota.bps.go.id"),
    ("3576", "phone", "(0321) 324261", "0321324261"),
    ("3576", "channel:Email", "bps3576@bps.go.id", "Email: bps3576@bps.go.id"),
    ("3576", "channel:WhatsApp", "0813 9999 3576 (hanya menerima pesan)", "WA : 0813 9999 3576 (hanya"),
    ("3514", "whatsapp", "0812-9090-3514", "Whatsapp: 0812-9090-3514"),
    ("3514", "phone", "(0343) 423420", "Telepon : (0343) 423420"),
    ("3514", "website", "https://pasuruankab.bps.go.id", "<https://pasuruankab.bps.go.id>"),
    ("3514", "channel:Langsung", "Kotak saran & pengaduan di resepsionis", "pengaduan di resepsionis"),
    ("8205", "phone", "0821-9000-1533", "Telepon : 0821-9000-1533"),
    ("8205", "channel:Email", "bps8205@bps.go.id", "Email : bps8205@bps.go.id"),
    ("8205", "channel:Instagram", "@bps.halut", "IG : @bps.halut"),
    (
        "8205",
        "address",
        "Jl. Kawasan Perkantoran Pemda Halut, MKCM, Tobelo, Halmahera Utara",
        "Jl. Kawasan Perkantoran Pemda Halut, MKCM, Tobelo, Halmahera Utara",
    ),
    ("1808", "whatsapp", "0813-8600-1808", "whatsapp official 0813-8600-1808"),
    ("1808", "website", "https://tulangbawangkab.bps.go.id", "Website tulangbawangkab.bps.go.id"),
    ("1808", "email", "bps1808@bps.go.id", "melalui email bps1808@bps.go.id"),
]


@pytest.mark.shared
@pytest.mark.skipif(not SEEDS.is_dir(), reason="no ../shared/seeds in this clone")
@pytest.mark.parametrize(
    ("code", "field", "expected", "in_seed"), SEED_FACTS, ids=[f"{c}-{f}" for c, f, *_ in SEED_FACTS]
)
def test_shipped_fact_matches_its_seed(
    shipped: Settings, code: str, field: str, expected: str, in_seed: str
) -> None:
    """A contact fact in settings.toml is the one the office's published service standard gives."""
    assert _fact(shipped, code, field) == expected
    assert in_seed in _seed_text(code)


@pytest.mark.parametrize(("code", "empty"), [("8205", {"whatsapp"}), ("1808", {"address", "phone"})])
def test_shipped_unpublished_facts_are_empty(shipped: Settings, code: str, empty: set[str]) -> None:
    """Facts a seed does not publish are left empty, never invented; the others are filled in."""
    office = shipped.office(code)
    facts = {f: getattr(office, f) for f in ("address", "phone", "whatsapp", "website", "sk_number")}
    assert {f for f, v in facts.items() if not v} == empty


def test_secret_repr_never_shows_the_password(shipped: Settings) -> None:
    """repr/str/format of a Secret, and of the whole Settings, never contain the password."""
    secret = Secret(PASSWORD)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(shipped)):
        assert PASSWORD not in shown
    assert repr(secret) == "Secret('***')"
    assert secret.value == PASSWORD


# -- wrong settings -----------------------------------------------------------------------------

_HOURS_3514 = '[offices.3514.hours]\nmon = "08:00-15:30"'
_COMPLAINT_BOX_3571 = (
    "[offices.3571.complaint_mailbox]\n"
    "# The complaint address (also a complaint address in the sense of complaint_addresses).\n"
    'email = "ipds3571@bps.go.id"'
)

BAD_SETTINGS = [
    pytest.param(
        (),
        "PST_MAIL_PASSWORD_8205",
        "offices.8205.imap.password_env",
        "environment variable PST_MAIL_PASSWORD_8205 is not set",
        id="missing-password-env-var",
    ),
    pytest.param(
        (
            (
                'password_env = "PST_MAIL_PASSWORD_3514"',
                'password = "geheim-3514"\npassword_env = "PST_MAIL_PASSWORD_3514"',
            ),
        ),
        None,
        "offices.3514.imap.password",
        "passwords never go in the settings file",
        id="literal-imap-password",
    ),
    pytest.param(
        (("[offices.1808.smtp]\n", '[offices.1808.smtp]\npassword = "geheim-1808"\n'),),
        None,
        "offices.1808.smtp.password",
        "passwords never go in the settings file",
        id="literal-smtp-password",
    ),
    pytest.param(
        (('[offices.3576.imap]\nhost = "127.0.0.1"', '[offices.3576.imap]\nhost = "imap.bps.go.id"'),),
        None,
        "offices.3576.imap.tls",
        "plain (unencrypted) is only allowed for a loopback host, not 'imap.bps.go.id'",
        id="plain-imap-to-remote-host",
    ),
    pytest.param(
        (('[offices.3571.smtp]\nhost = "127.0.0.1"', '[offices.3571.smtp]\nhost = "10.0.0.25"'),),
        None,
        "offices.3571.smtp.tls",
        "only allowed for a loopback host, not '10.0.0.25'",
        id="plain-smtp-to-remote-ip",
    ),
    pytest.param(
        (
            (
                '[offices.3576.smtp]\nhost = "127.0.0.1"\nport = 2525\ntls = "plain"',
                '[offices.3576.smtp]\nhost = "127.0.0.1"\nport = 2525\ntls = "ssl"',
            ),
        ),
        None,
        "offices.3576.smtp.tls",
        "must be one of smtps, starttls, plain, got 'ssl'",
        id="unknown-smtp-tls-mode",
    ),
    pytest.param(
        (
            (
                '[offices.3514.imap]\nhost = "127.0.0.1"\nport = 10143\ntls = "plain"',
                '[offices.3514.imap]\nhost = "127.0.0.1"\nport = 10143\ntls = "smtps"',
            ),
        ),
        None,
        "offices.3514.imap.tls",
        "must be one of imaps, starttls, plain, got 'smtps'",
        id="smtp-tls-mode-on-imap",
    ),
    pytest.param(
        (('time_zone = "Asia/Jayapura"', 'time_zone = "Asia/Papua"'),),
        None,
        "offices.8205.time_zone",
        "unknown IANA time zone 'Asia/Papua'",
        id="unknown-time-zone",
    ),
    pytest.param(
        (('time_zone_label = "WIT"', 'time_zone_label = "JST"'),),
        None,
        "offices.8205.time_zone_label",
        "must be one of WIB, WITA, WIT, got 'JST'",
        id="unknown-time-zone-label",
    ),
    pytest.param(
        ((_HOURS_3514, '[offices.3514.hours]\nmon = "08.00-15.30"'),),
        None,
        "offices.3514.hours.mon",
        'must look like "08:00-15:30"',
        id="hours-with-dots",
    ),
    pytest.param(
        ((_HOURS_3514, '[offices.3514.hours]\nmon = "08:00-25:00"'),),
        None,
        "offices.3514.hours.mon",
        'must look like "08:00-15:30"',
        id="hours-hour-25",
    ),
    pytest.param(
        ((_HOURS_3514, '[offices.3514.hours]\nmon = "15:30-08:00"'),),
        None,
        "offices.3514.hours.mon",
        "closing time must be after opening time",
        id="closing-before-opening",
    ),
    pytest.param(
        ((_HOURS_3514, '[offices.3514.hours]\nmon = "08:00-08:00"'),),
        None,
        "offices.3514.hours.mon",
        "closing time must be after opening time",
        id="closing-at-opening",
    ),
    pytest.param(
        ((_HOURS_3514, '[offices.3514.hours]\nsenin = "08:00-15:30"\nmon = "08:00-15:30"'),),
        None,
        "offices.3514.hours.senin",
        "not a weekday; use mon, tue, wed, thu, fri, sat, sun",
        id="unknown-weekday",
    ),
    pytest.param(
        (("offices.1808", "offices.18080"),),
        None,
        "offices.18080",
        "office code must be 4 digits (BPS region code)",
        id="office-code-5-digits",
    ),
    pytest.param(
        (("offices.3571", "offices.kediri"),),
        None,
        "offices.kediri",
        "office code must be 4 digits (BPS region code)",
        id="office-code-a-name",
    ),
    pytest.param(
        (('province = "1800"', 'province = "1899"'),),
        None,
        "offices.1808.province",
        "no [provinces.1899] table",
        id="province-not-defined",
    ),
    pytest.param(
        (
            (
                '[offices.3571.imap]\nhost = "127.0.0.1"\nport = 10143',
                '[offices.3571.imap]\nhost = "127.0.0.1"\nport = "10143"',
            ),
        ),
        None,
        "offices.3571.imap.port",
        "must be an integer, got str",
        id="port-a-string",
    ),
    pytest.param(
        (
            (
                '[offices.3571.smtp]\nhost = "127.0.0.1"\nport = 2525',
                '[offices.3571.smtp]\nhost = "127.0.0.1"\nport = 2525.0',
            ),
        ),
        None,
        "offices.3571.smtp.port",
        "must be an integer, got float",
        id="port-a-float",
    ),
    pytest.param(
        (
            (
                '[offices.3571.smtp]\nhost = "127.0.0.1"\nport = 2525',
                '[offices.3571.smtp]\nhost = "127.0.0.1"\nport = 0',
            ),
        ),
        None,
        "offices.3571.smtp.port",
        "must be at least 1, got 0",
        id="port-zero",
    ),
    pytest.param(
        (('email = "bps3576@bps.go.id"', 'email = "BPS3571@bps.go.id"'),),
        None,
        "offices.3576.email",
        "bps3571@bps.go.id is also used by office 3571",
        id="duplicate-office-email",
    ),
    pytest.param(
        (("[offices.3514.smtp]\n", '[offices.3514.smtp]\nca_file = "certs/private-ca.pem"\n'),),
        None,
        "offices.3514.smtp.ca_file",
        "no such file: {dir}/certs/private-ca.pem",
        id="ca-file-does-not-exist",
    ),
    pytest.param(
        (("[daemon]\n", "[daemon\n"),),
        None,
        "-",
        "not valid TOML: ",
        id="invalid-toml",
    ),
    pytest.param(
        (("idle_timeout_s = 600", "idle_timeout_s = 1740"),),
        None,
        "daemon.idle_timeout_s",
        "must stay under 29 minutes (RFC 2177)",
        id="idle-timeout-29-min",
    ),
    pytest.param(
        (("idle_timeout_s = 600", "idle_timeout_s = 3600"),),
        None,
        "daemon.idle_timeout_s",
        "must stay under 29 minutes (RFC 2177)",
        id="idle-timeout-an-hour",
    ),
    pytest.param(
        (('domains = ["bps.go.id"]', 'domains = ["bps go id"]'),),
        None,
        "offices.3571.staff.domains[0]",
        "not a domain name: 'bps go id'",
        id="staff-domain-with-spaces",
    ),
    pytest.param(
        (("addresses = []", 'addresses = ["dewi"]'),),
        None,
        "offices.3571.staff.addresses[0]",
        "not an email address: 'dewi'",
        id="staff-address-not-an-address",
    ),
    pytest.param(
        (("addresses = []", 'addresses = "dewi@bps.go.id"'),),
        None,
        "offices.3571.staff.addresses",
        "must be list, got str",
        id="staff-addresses-not-a-list",
    ),
    pytest.param(
        (('authserv_ids = ["mx.bps.go.id"]', "authserv_ids = []"),),
        None,
        "offices.3571.staff.authserv_ids",
        "require_authentication needs the authserv-id",
        id="staff-authentication-without-server",
    ),
    pytest.param(
        (('sent_folder = "auto"', 'sent_folder = "INBOX"'),),
        None,
        "offices.3571.imap.sent_folder",
        "must differ from folder ('INBOX')",
        id="sent-folder-is-the-inbox",
    ),
    pytest.param(
        (("max_per_sender_per_hour = 3", "max_per_sender_per_hour = 0"),),
        None,
        "acknowledgement.max_per_sender_per_hour",
        "must be at least 1, got 0",
        id="ack-limit-zero",
    ),
    pytest.param(
        (("max_per_sender_per_hour = 3", 'max_per_sender_per_hour = "3"'),),
        None,
        "acknowledgement.max_per_sender_per_hour",
        "must be an integer, got str",
        id="ack-limit-a-string",
    ),
    pytest.param(
        (("max_per_sender_per_hour = 3", "max_per_sender_in_an_hour = 3"),),
        None,
        "acknowledgement.max_per_sender_in_an_hour",
        "unknown key (misspelt?)",
        id="ack-limit-misspelt",
    ),
    pytest.param(
        (("pending_late_after_s = 1800", "pending_late_after_s = 0"),),
        None,
        "status.pending_late_after_s",
        "must be greater than 0.0, got 0.0",
        id="status-pending-late-zero",
    ),
    pytest.param(
        (("failed_within_h = 24", 'failed_within_h = "a day"'),),
        None,
        "status.failed_within_h",
        "must be an integer or a number, got str",
        id="status-failed-window-a-string",
    ),
    pytest.param(
        (('quiet_hours = "21:00-06:00"', 'quiet_hours = "21.00-06.00"'),),
        None,
        "acknowledgement.quiet_hours",
        'must look like "21:00-06:00"',
        id="quiet-hours-with-dots",
    ),
    pytest.param(
        (('quiet_hours = "21:00-06:00"', 'quiet_hours = "25:00-06:00"'),),
        None,
        "acknowledgement.quiet_hours",
        'must look like "21:00-06:00"',
        id="quiet-hours-hour-25",
    ),
    pytest.param(
        (('quiet_hours = "21:00-06:00"', 'quiet_hours = "06:00-06:00"'),),
        None,
        "acknowledgement.quiet_hours",
        "from and until are the same",
        id="quiet-hours-empty-span",
    ),
    pytest.param(
        (("fetch_batch_bytes = 20000000", "fetch_batch_bytes = 4096"),),
        None,
        "daemon.fetch_batch_bytes",
        "must be at least 1000000, got 4096",
        id="fetch-batch-bytes-too-small",
    ),
    pytest.param(
        (("max_parse_bytes = 15000000", 'max_parse_bytes = "15 MB"'),),
        None,
        "daemon.max_parse_bytes",
        "must be an integer, got str",
        id="max-parse-bytes-a-string",
    ),
    pytest.param(
        (("max_parse_bytes = 15000000", "max_parse_bytes = 0"),),
        None,
        "daemon.max_parse_bytes",
        "must be at least 1000000, got 0",
        id="max-parse-bytes-zero",
    ),
    pytest.param(
        (("immediate_within_minutes = 60", "immediate_within_minutes = 0"),),
        None,
        "acknowledgement.immediate_within_minutes",
        "must be greater than 0",
        id="immediate-within-zero",
    ),
    pytest.param(
        (),
        "PST_MAIL_PASSWORD_3571_PENGADUAN",
        "offices.3571.complaint_mailbox.password_env",
        "environment variable PST_MAIL_PASSWORD_3571_PENGADUAN is not set",
        id="complaint-mailbox-password-env-var",
    ),
    pytest.param(
        ((_COMPLAINT_BOX_3571, '[offices.3571.complaint_mailbox]\nemail = "bps3571@bps.go.id"'),),
        None,
        "offices.3571.complaint_mailbox.email",
        "is the office's main address",
        id="complaint-mailbox-is-the-main-address",
    ),
    pytest.param(
        ((_COMPLAINT_BOX_3571, '[offices.3571.complaint_mailbox]\nemail = "bps3576@bps.go.id"'),),
        None,
        "offices.3576.email",
        "bps3576@bps.go.id is also used by office 3571",
        id="complaint-mailbox-is-another-office",
    ),
    pytest.param(
        ((_COMPLAINT_BOX_3571, '[offices.3571.complaint_mailbox]\nemail = "ipds3571"'),),
        None,
        "offices.3571.complaint_mailbox.email",
        "not an email address",
        id="complaint-mailbox-not-an-address",
    ),
    pytest.param(
        (
            (
                _COMPLAINT_BOX_3571,
                '[offices.3571.complaint_mailbox]\nfolder_name = "Pengaduan"\nemail = "ipds3571@bps.go.id"',
            ),
        ),
        None,
        "offices.3571.complaint_mailbox.folder_name",
        "unknown key",
        id="complaint-mailbox-unknown-key",
    ),
    pytest.param(
        (
            (_COMPLAINT_BOX_3571, '[offices.3571.complaint_mailbox]\nemail = "ipds3571@bps.go.id"'),
            ('username = "ipds3571@bps.go.id"\n', 'username = "bps3571@bps.go.id"\n'),
        ),
        None,
        "offices.3571.complaint_mailbox.username",
        "is the office's main mailbox",
        id="complaint-mailbox-is-the-main-mailbox",
    ),
]


@pytest.mark.parametrize(("edits", "unset_env", "key", "reason"), BAD_SETTINGS)
def test_wrong_setting_raises_config_error_with_file_key_reason(
    tmp_path: Path, edits: tuple[tuple[str, str], ...], unset_env: str | None, key: str, reason: str
) -> None:
    """A wrong setting raises ConfigError naming this file, the dotted key and why."""
    path = write_settings(tmp_path, *edits)
    env = office_env(PASSWORD)
    if unset_env:
        del env[unset_env]
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=env)
    err = caught.value
    assert err.file == str(path.resolve())
    assert err.key == key
    assert reason.format(dir=path.resolve().parent) in err.reason
    assert str(err) == f"{err.file}: {err.key}: {err.reason}"
    assert "geheim" not in str(err)


def test_missing_settings_file(tmp_path: Path) -> None:
    """A settings path that does not exist is a ConfigError for that file, not a crash."""
    path = tmp_path / "nowhere" / "settings.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env(PASSWORD))
    assert (caught.value.file, caught.value.key, caught.value.reason) == (
        str(path.resolve()),
        "-",
        "file not found",
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "::1"])
def test_plain_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    """Plain (unencrypted) IMAP is accepted for any loopback host, IPv4 or IPv6."""
    path = write_settings(
        tmp_path, ('[offices.3576.imap]\nhost = "127.0.0.1"', f'[offices.3576.imap]\nhost = "{host}"')
    )
    assert load_settings(path, environ=office_env(PASSWORD)).office("3576").imap.host == host


def test_idle_timeout_just_under_29_minutes_is_accepted(tmp_path: Path) -> None:
    """idle_timeout_s of 1739 (one second under the RFC 2177 limit) loads."""
    path = write_settings(tmp_path, ("idle_timeout_s = 600", "idle_timeout_s = 1739"))
    assert load_settings(path, environ=office_env(PASSWORD)).daemon.idle_timeout_s == 1739


def test_existing_ca_file_is_resolved_next_to_the_settings(tmp_path: Path) -> None:
    """A relative ca_file that exists is accepted and resolved against the settings file's folder."""
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "private-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    path = write_settings(
        tmp_path, ("[offices.3514.smtp]\n", '[offices.3514.smtp]\nca_file = "certs/private-ca.pem"\n')
    )
    office = load_settings(path, environ=office_env(PASSWORD)).office("3514")
    assert office.smtp.ca_file == path.resolve().parent / "certs" / "private-ca.pem"


def test_hours_with_minute_60_or_more_is_rejected(tmp_path: Path) -> None:
    """Opening hours with a minute of 60 or more ("08:00-15:75") are a ConfigError, not a later crash."""
    path = write_settings(tmp_path, (_HOURS_3514, '[offices.3514.hours]\nmon = "08:00-15:75"'))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env(PASSWORD))
    assert caught.value.key == "offices.3514.hours.mon"


def test_port_above_65535_is_rejected(tmp_path: Path) -> None:
    """A TCP port above 65535 is a ConfigError at start."""
    path = write_settings(
        tmp_path,
        (
            '[offices.3571.imap]\nhost = "127.0.0.1"\nport = 10143',
            '[offices.3571.imap]\nhost = "127.0.0.1"\nport = 70000',
        ),
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env(PASSWORD))
    assert caught.value.key == "offices.3571.imap.port"


def test_misspelt_key_is_rejected(tmp_path: Path) -> None:
    """A misspelt key (sla_working_day for sla_working_days) is a ConfigError, not a silent default."""
    path = write_settings(tmp_path, ("sla_working_days = 3", "sla_working_day = 3"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env(PASSWORD))
    assert caught.value.key == "offices.8205.sla_working_day"


# -- mailer check-config ------------------------------------------------------------------------


def _check_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PST_")}
    return subprocess.run(
        [
            str(PYTHON if PYTHON.exists() else sys.executable),
            "-m",
            "mailer",
            "--settings",
            str(path),
            "check-config",
        ],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_with_wrong_settings_exits_2_naming_file_key_reason(tmp_path: Path) -> None:
    """`mailer check-config` on a wrong file exits 2 and prints file, key and reason to stderr."""
    path = write_settings(tmp_path, ('time_zone = "Asia/Jayapura"', 'time_zone = "Asia/Papua"'))
    done = _check_config(path, office_env(PASSWORD))
    assert done.returncode == 2
    assert str(path.resolve()) in done.stderr
    assert "offices.8205.time_zone" in done.stderr
    assert "unknown IANA time zone 'Asia/Papua'" in done.stderr
    assert "OK" not in done.stdout


def test_check_config_without_password_variable_exits_2(tmp_path: Path) -> None:
    """`mailer check-config` without the PST_MAIL_PASSWORD_<code> variables exits 2 naming the key."""
    done = _check_config(SHIPPED, {})
    assert done.returncode == 2
    assert (
        f"{SHIPPED}: offices.3571.imap.password_env: environment variable PST_MAIL_PASSWORD_3571"
        in done.stderr
    )


def test_check_config_with_shipped_settings_exits_0() -> None:
    """`mailer check-config` on the shipped file with the password variables set exits 0, listing offices."""
    done = _check_config(SHIPPED, office_env(PASSWORD))
    assert done.returncode == 0, done.stderr
    assert f"{SHIPPED}: OK" in done.stdout
    for code in OFFICE_CODES:
        assert f"  {code} BPS " in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


def test_shipped_acknowledgement_limit(shipped: Settings) -> None:
    """As shipped, one address gets at most 3 acknowledgements an hour from an office."""
    assert shipped.acknowledgement.max_per_sender_per_hour == 3


def test_quiet_hours_as_shipped_and_none(tmp_path: Path, shipped: Settings) -> None:
    """The shipped quiet hours are 21:00-06:00 and acks are immediate within 60 minutes; "" is
    no quiet hours (an empty span)."""
    ack = shipped.acknowledgement
    assert (ack.quiet_hours, ack.immediate_within_minutes) == (("21:00", "06:00"), 60.0)
    path = write_settings(tmp_path, ('quiet_hours = "21:00-06:00"', 'quiet_hours = ""'))
    assert load_settings(path, environ=office_env(PASSWORD)).acknowledgement.quiet_hours == ("00:00", "00:00")


# -- [offices.X.sla]: the clock after a wait, and the promise's words ----------------------------

_WORDS = 'promise_id = "3 (tiga) hari kerja setelah permintaan jelas dan persyaratan pelayanan lengkap"'
_WORDS_EN = (
    'promise_en = "3 working days after the request is clear and the service requirements are complete"'
)


def test_shipped_sla_policy_per_office(shipped: Settings) -> None:
    """Halmahera Utara and Tulang Bawang restart the clock after a wait and quote their standard;
    the other offices keep the pause and the templates' own words."""
    found = {o.code: (o.promise.after_wait, bool(o.promise.worded("id"))) for o in shipped.offices}
    assert found == {
        "3571": ("pause", False),
        "3576": ("pause", False),
        "3514": ("pause", False),
        "8205": ("restart", True),
        "1808": ("restart", True),
    }


@pytest.mark.parametrize(
    ("edits", "key", "reason"),
    [
        (
            ('after_wait = "restart"', 'after_wait = "restrat"'),
            "offices.8205.sla.after_wait",
            "must be one of pause, restart",
        ),
        ((_WORDS_EN, ""), "offices.8205.sla.promise_en", "both languages"),
        ((_WORDS, _WORDS.replace('"3 (tiga)', '"2 (dua)')), "offices.8205.sla.promise_id",
         "must start with the office's sla_working_days (3)"),
        ((_WORDS_EN, _WORDS_EN + '\npromise_fr = "3 jours"'), "offices.8205.sla.promise_fr",
         "unknown key"),
    ],
)  # fmt: skip
def test_wrong_sla_setting_names_file_key_and_reason(
    tmp_path: Path, edits: tuple[str, str], key: str, reason: str
) -> None:
    """A wrong [offices.X.sla] value stops the start with the file, the dotted key and the reason."""
    path = write_settings(tmp_path, edits)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env(PASSWORD))
    assert (caught.value.file, caught.value.key) == (str(path.resolve()), key)
    assert reason in caught.value.reason
