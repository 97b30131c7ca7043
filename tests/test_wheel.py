"""The wheel: built from the sources, installed into a fresh virtualenv and run from outside the
source tree, it holds every template and the migrations, renders an acknowledgement and migrates
a scratch SQLite database through the installed `mailer` command.

No network: the wheel is built with the build backend of this .venv (--no-build-isolation), and
the fresh virtualenv takes the dependencies from this .venv's site-packages through a .pth line.
A path line in a .pth file only adds the folder to sys.path; the .pth files inside it are not
run, so the editable install's finder (which would import the checkout) stays out.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from storage.db import MIGRATIONS
from tests.conftest import ROOT, office_env

# What the wheel is built from: a copy of these, so that the build leaves nothing in the checkout.
SOURCES = ("pyproject.toml", "README.md", "mailer", "storage", "templates")
REF = "PST-3514-2026-00001"
# Run by the fresh virtualenv's python, in a folder outside the source tree.
RENDER = """
import json, sys
from datetime import UTC, datetime
import mailer, storage
from mailer.decide.sla import due_at
from mailer.delivery.render import Renderer
from mailer.intake.parse import parse
from mailer.settings import load_settings

settings = load_settings(sys.argv[1])
office = settings.office("3514")
mail = parse(
    b"From: Rina <rina@example.com>\\r\\nTo: " + office.email.encode() + b"\\r\\n"
    b"Subject: Permohonan data kemiskinan\\r\\nMessage-ID: <q1@example.com>\\r\\n"
    b"Date: Mon, 23 Nov 2026 09:00:00 +0700\\r\\n\\r\\nMohon data kemiskinan 2024.\\r\\n"
)
received = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
renderer = Renderer()
for name in renderer.env.list_templates():
    renderer.env.get_template(name)  # every template found and compiled
out = renderer.acknowledgement(
    office, sys.argv[2], mail, "rina@example.com", "id", due_at(office, received), received, received
)
print(json.dumps({
    "modules": [mailer.__file__, storage.__file__],
    "templates": renderer.env.list_templates(),
    "subject": out.subject,
    "text": out.text,
}))
"""


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """stdout of a command that must succeed (its output in the failure otherwise)."""
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A virtualenv with only `wheel` installed, seeing this .venv's packages (not the checkout)."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    run(*pip, "install", "--no-index", "--no-deps", wheel, cwd=tmp_path)
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path)
    (Path(site.strip()) / "dependencies_from_the_test_venv.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    return venv


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the sources, checked to hold every module of mailer and storage."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-w", tmp_path / "dist", source, cwd=tmp_path)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("pst_mailer-*.whl")
    with zipfile.ZipFile(wheel) as z:
        packed = set(z.namelist())
    modules = {
        p.relative_to(source).as_posix()
        for top in ("mailer", "storage")
        for p in (source / top).rglob("*.py")
    }
    assert modules - packed == set()  # a sub-package left out of pyproject.toml's list shows here
    return wheel


def test_installed_wheel_renders_every_template_and_migrates(tmp_path: Path) -> None:
    """`pip wheel .` gives a wheel whose `mailer`, installed elsewhere, finds every template of
    templates/, renders an acknowledgement and migrates a new database to the newest revision."""
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = elsewhere / "pst.sqlite3"
    settings = elsewhere / "settings.toml"
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    settings.write_text(text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{database}"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PST_"))}
    env.update(office_env("pw"))

    found = json.loads(run(venv / "bin" / "python", "-c", RENDER, settings, REF, cwd=elsewhere, env=env))
    assert all(Path(m).is_relative_to(venv) for m in found["modules"]), found["modules"]
    shipped = sorted(p.relative_to(ROOT / "templates").as_posix() for p in (ROOT / "templates").rglob("*.j2"))
    assert sorted(found["templates"]) == shipped
    assert REF in found["subject"] and REF in found["text"]

    listed = run(venv / "bin" / "mailer", "--settings", settings, "tickets", cwd=elsewhere, env=env)
    assert "(0 tickets)" in listed
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with sqlite3.connect(database) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == ScriptDirectory.from_config(config).get_current_head()
