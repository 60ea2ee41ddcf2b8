"""DLRN 0.26.1 in its own virtual environment, and a `projects.ini` for a benchmark farm.

The venv is ``bench/.work/dlrn-venv``, made with a Python 3.11 (DLRN 0.26.1 uses
``distutils.util.strtobool``, gone in 3.12) and ``pip install dlrn==0.26.1``. Nothing else is
pinned: pip resolves SQLAlchemy 2.1, which the builder path of 0.26.1 works with (only an API
page, not used here, needs SQLAlchemy<2).

DLRN is run as ``dlrn --config-file projects.ini --info-repo FARM/metadata``: the rdoinfo driver
then reads ``rdo.yml`` from that folder with distroinfo's local fetcher and keeps the packages
tagged ``master``. Its builds fail at once because ``/usr/bin/mock`` does not exist, which is what
the benchmark wants (see bench/gitfarm.py).

The API benchmark (bench/api.py) uses a second venv, ``bench/.work/dlrn-api-venv``: the same
``dlrn==0.26.1`` with ``SQLAlchemy<2`` (``API_PINS``), because under SQLAlchemy 2.1 the page
``/api/civotes.html`` fails with 500 (``Query.from_self`` was removed in 2.0).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.gitfarm import WORK, Farm

DLRN_VERSION = "0.26.1"
VENV = WORK / "dlrn-venv"
# Pins added on top of `dlrn==0.26.1`; none were needed (kept here so a report can show them).
PINS: tuple[str, ...] = ()
API_VENV = WORK / "dlrn-api-venv"
# DLRN's API pages still use SQLAlchemy 1.x's Query.from_self.
API_PINS: tuple[str, ...] = ("SQLAlchemy<2",)

_PYTHON_CANDIDATES = ("/usr/bin/python3.11", "/usr/bin/python3", "python3.11")


@dataclass(frozen=True)
class DlrnSetup:
    root: Path
    config: Path
    datadir: Path
    info_repo: Path

    def command(self, *extra: str) -> list[str]:
        return [
            str(VENV / "bin" / "dlrn"),
            "--config-file",
            str(self.config),
            "--info-repo",
            str(self.info_repo),
            *extra,
        ]


def _python() -> str:
    for candidate in _PYTHON_CANDIDATES:
        exe = shutil.which(candidate)
        if exe is None:
            continue
        probe = subprocess.run(
            [exe, "-c", "import sys, distutils; print(sys.version_info[:2] <= (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return exe
    raise RuntimeError("no Python <= 3.11 with distutils found for DLRN 0.26.1")


def ensure_venv(quiet: bool = False, venv: Path = VENV, pins: tuple[str, ...] = PINS) -> Path:
    """Create the DLRN venv if `dlrn --version` does not already answer there."""
    dlrn = venv / "bin" / "dlrn"
    if dlrn.exists():
        check = subprocess.run([str(dlrn), "--version"], capture_output=True, check=False)
        if check.returncode == 0:
            return venv
        shutil.rmtree(venv)
    if not quiet:
        print(f"creating {venv} with dlrn=={DLRN_VERSION} {' '.join(pins)}".rstrip())
    subprocess.run([_python(), "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"dlrn=={DLRN_VERSION}", *pins],
        check=True,
    )
    return venv


def ensure_api_venv(quiet: bool = False) -> Path:
    """The venv DLRN's API is served from (see the module's docstring)."""
    return ensure_venv(quiet, API_VENV, API_PINS)


def package_version(package: str = "dlrn", venv: Path = VENV) -> str:
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "show", package], capture_output=True, text=True, check=True
    )
    for line in result.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def dlrn_version() -> str:
    return package_version()


PROJECTS_INI = """\
[DEFAULT]
datadir={datadir}
scriptsdir={scriptsdir}
baseurl=http://localhost:8080/repos
deps_url=file://{deps}
distro=rpm-master
source=master
target=centos9
smtpserver=
reponame=delorean
project_name=RDO
maxretries=3
pkginfo_driver=dlrn.drivers.rdoinfo.RdoInfoDriver
build_driver=dlrn.drivers.mockdriver.MockBuildDriver
tags=master
rsyncdest=
rsyncport=22
workers=1
gerrit_topic=rdo-FTBFS
database_connection=sqlite:///{database}
fallback_to_master=1
release_numbering=0.date.hash
custom_preprocess=
include_srpm_in_repo=true

[rdoinfo_driver]
repo={info_repo}
info_files=rdo.yml

[mockbuild_driver]
install_after_build=1
"""


def write_setup(farm: Farm, root: Path) -> DlrnSetup:
    """Write `root/projects.ini` for `farm`; `root/data` is DLRN's datadir (made empty)."""
    datadir = root / "data"
    if datadir.exists():
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True)
    database = root / "commits.sqlite"
    database.unlink(missing_ok=True)
    deps = root / "delorean-deps.repo"  # empty: no fetch of <baseurl>/delorean-deps.repo
    deps.write_text("")
    config = root / "projects.ini"
    config.write_text(
        PROJECTS_INI.format(
            datadir=datadir,
            scriptsdir=VENV / "share" / "dlrn" / "scripts",
            database=database,
            deps=deps,
            info_repo=farm.metadata_dir,
        )
    )
    return DlrnSetup(root=root, config=config, datadir=datadir, info_repo=farm.metadata_dir)


if __name__ == "__main__":
    ensure_venv()
    print(f"dlrn {dlrn_version()} in {VENV}")
