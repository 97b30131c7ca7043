"""The monthly report's HTML page opened in headless Chromium: it renders its tables and its
inline SVG charts with no external assets; a screenshot is kept as the test's artifact
(`report.png` in the test's tmp dir). Chromium is installed by scripts/setup.sh."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailer.operator import cli
from mailer.settings import Settings
from tests.test_monthly import november  # noqa: F401  (the hand-computed month, a fixture)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)"
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.usefixtures("november")
def test_report_page_renders_tables_and_charts_in_chromium(settings: Settings, tmp_path: Path) -> None:
    """Chromium's DOM of `mailer report --html` has the summary table with one row per office
    and, per office, the figures table and two SVG charts with their bars (November at Pasuruan:
    5 days with tickets, 3 rating scores used); the screenshot is a real picture."""
    page = tmp_path / "report.html"
    argv = ["report", "--month", "2026-11", "--province", "3500", "--html", str(page)]
    assert cli.main(argv, settings=settings) == 0
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<tr data-office=") == 3
    pasuruan = dom[dom.index('<section class="office" id="office-3514">') :]
    pasuruan = pasuruan[: pasuruan.index("</section>")]
    assert "3 (60%)" in pasuruan and "6,5 jam kerja" in pasuruan and "66,67 (mutu C)" in pasuruan
    assert len(re.findall(r'<rect class="bar (request|complaint)"', pasuruan)) == 5
    assert len(re.findall(r'<rect class="bar score\d"', pasuruan)) == 4
    assert '<rect class="bar complaint"' in pasuruan  # 6 Nov: the complaint, in red
    shot = tmp_path / "report.png"
    done = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1000,3000", "--hide-scrollbars", page.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 3000)
    assert len(data) > 20_000  # tables, text and charts, not a blank page
