"""Upper-constraints drift: `conveyor uc-report` as a page, per release of `[dashboard]
constraints` (release -> upper-constraints.txt, a path or an http(s) URL). Each pin against
the newest package that provides it: `equal`, `lower` (the package is older than the pin),
`greater`, `missing`.

The providers of a release, read as uc-report reads them (conveyor.uc):
- the release's buildsys-tags files in rdoinfo (`buildsys-tags/*-<release>-*.yml`, as
  `--nvr-list`): what CBS holds or will hold;
- for the builder's own release (`[metadata] release`), its `consistent` repository (as
  `--repo trunk,<repos>/consistent`): what trunk builds now;
- `[dashboard] constraint_repos` of the release (as `--repo`).

Reading them takes from a tenth of a second to seconds (repository metadata, YAML): a report
is kept while its local inputs stay as they were, and for an hour when an input is a URL.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from conveyor.api.context import app_context
from conveyor.config import Config
from conveyor.metadata.errors import MetadataError
from conveyor.reports.filecache import StampedCache, stamps_of
from conveyor.tags.service import rdoinfo_folder
from conveyor.uc import (
    ProviderIndex,
    Row,
    UCError,
    add_nvr_list,
    add_repository,
    add_source,
    build_report,
    parse_constraints,
    source_counts,
    summary,
)
from conveyor.uc.inputs import read_bounded
from conveyor.uc.releases import read_data
from conveyor.uc.repofile import distro_versions, is_repo_file, repo_variables
from conveyor.uc.report import STATUSES
from conveyor.web.render import not_found, page

router = APIRouter(include_in_schema=False)

RECHECK_SECONDS = 2.0
REMOTE_TTL = 3600.0  # a report with an input from a URL is read again after an hour
MAX_UC_BYTES = 2_000_000
URL_TIMEOUT = 30.0
TRUNK_SOURCE = "trunk"
_ROW_CLASSES = {"lower": "missing", "missing": "failed"}


@dataclass(frozen=True)
class Drift:
    """One release's report, or why it could not be made."""

    release: str
    location: str  # of its upper-constraints.txt
    rows: list[Row] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)  # rows per source
    where: dict[str, str] = field(default_factory=dict)  # each source's location
    error: str | None = None


def row_class(row: Row) -> str:
    return _ROW_CLASSES.get(row.status, "")


def _is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def _local(location: str) -> Path:
    if location.lower().startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(location).path))
    return Path(location)


def _read_constraints(location: str) -> tuple[str, str]:
    """The text of an upper-constraints.txt and how errors name it."""
    if not _is_url(location):
        path = _local(location)
        data = read_bounded(path, MAX_UC_BYTES, "upper-constraints")
        return data.decode("utf-8", "replace"), str(path)
    try:
        with urllib.request.urlopen(location, timeout=URL_TIMEOUT) as answer:  # noqa: S310
            data = answer.read(MAX_UC_BYTES + 1)
    except OSError as exc:
        raise UCError(f"{location}: cannot download: {exc}") from None
    if len(data) > MAX_UC_BYTES:
        raise UCError(f"{location}: larger than {MAX_UC_BYTES} bytes; refused")
    return data.decode("utf-8", "replace"), location


def _tag_files(config: Config, release: str) -> list[Path]:
    folder = rdoinfo_folder(config) / "buildsys-tags"
    return sorted(folder.glob(f"*-{release}-*.yml"))


def _trunk_repo(config: Config, release: str) -> Path | None:
    """The builder's `consistent` repository, for its own release, when published."""
    repo = config.repos_dir / "consistent"
    if release != config.metadata.release or not (repo / "repodata" / "repomd.xml").is_file():
        return None
    return repo


def _source_location(source: str) -> str:
    """Where a `--repo` argument reads from (its `ID,` dropped)."""
    ident, comma, rest = source.partition(",")
    return rest if comma and ident and "/" not in ident and not is_repo_file(ident) else source


def _remote(config: Config, release: str) -> bool:
    locations = [config.dashboard.constraints[release]]
    locations += [_source_location(s) for s in config.dashboard.constraint_repos.get(release, ())]
    return any(_is_url(location) for location in locations)


def _inputs_key(config: Config, release: str) -> Hashable:
    """The stamps of the report's local inputs (a URL's content is kept for REMOTE_TTL)."""
    files = []
    uc = config.dashboard.constraints[release]
    if not _is_url(uc):
        files.append(_local(uc))
    folder = rdoinfo_folder(config) / "buildsys-tags"
    files += [folder, *_tag_files(config, release)]
    files.append(config.repos_dir / "consistent" / "repodata" / "repomd.xml")
    for source in config.dashboard.constraint_repos.get(release, ()):
        location = _source_location(source)
        if _is_url(location):
            continue
        path = _local(location)
        files.append(path if is_repo_file(location) else path / "repodata" / "repomd.xml")
    return stamps_of(files)


def make_report(config: Config, release: str) -> Drift:
    """uc-report for `release`, as `conveyor uc-report` makes it from the same inputs."""
    location = config.dashboard.constraints[release]
    try:
        _releasever, python = distro_versions(config.dashboard.distro)
        text, name = _read_constraints(location)
        pins = parse_constraints(text, name, python)
        index = ProviderIndex()
        for path in _tag_files(config, release):
            data = read_data(path)  # a tag declared with no package yet holds `packages:`
            if isinstance(data, dict) and data.get("packages"):
                add_nvr_list(index, path)
        trunk = _trunk_repo(config, release)
        if trunk is not None:
            add_repository(index, f"{TRUNK_SOURCE},{trunk}")
        variables = repo_variables(config.dashboard.distro)
        for source in config.dashboard.constraint_repos.get(release, ()):
            add_source(index, source, variables)
    except (UCError, MetadataError) as exc:
        return Drift(release, location, error=str(exc))
    if not index.sources:
        return Drift(
            release,
            location,
            error=f"nothing provides packages for {release}: no buildsys-tags file "
            f"*-{release}-*.yml in rdoinfo, and no [dashboard] constraint_repos.{release}",
        )
    rows = build_report(release, pins, index)
    return Drift(
        release,
        location,
        rows,
        summary(rows),
        source_counts(rows, index.sources),
        dict(index.locations),
    )


_local_reports: StampedCache[Drift] = StampedCache(size=32, recheck=RECHECK_SECONDS)
_remote_reports: StampedCache[Drift] = StampedCache(
    size=32, ttl=REMOTE_TTL, recheck=RECHECK_SECONDS
)


def drift(config: Config, release: str) -> Drift:
    """The report of `release`, kept while its inputs stay as they were."""
    cache = _remote_reports if _remote(config, release) else _local_reports
    name = (
        release,
        config.dashboard.constraints[release],
        config.dashboard.constraint_repos.get(release, ()),
        config.dashboard.distro,
        str(config.metadata.path),
        str(config.repos_dir),
        config.metadata.release,
    )
    return cache.get(
        name, lambda: _inputs_key(config, release), lambda: make_report(config, release)
    )


@router.get("/constraints", response_class=HTMLResponse)
def constraints_page(request: Request) -> HTMLResponse:
    config = app_context(request).config
    reports = [drift(config, release) for release in config.dashboard.constraints]
    return page(
        request,
        "constraints.html",
        "constraints",
        "Upper-constraints drift",
        reports=reports,
        statuses=STATUSES,
    )


@router.get("/constraints/{release}", response_class=HTMLResponse)
def release_page(request: Request, release: str) -> HTMLResponse:
    config = app_context(request).config
    if release not in config.dashboard.constraints:
        return not_found(
            request,
            "constraints",
            f"No upper-constraints configured for {release} ([dashboard] constraints).",
            "/constraints",
            "All releases",
        )
    report = drift(config, release)
    status = request.query_params.get("status", "")
    wanted = status if status in STATUSES else None
    rows = [r for r in report.rows if wanted is None or r.status == wanted]
    return page(
        request,
        "constraints_release.html",
        "constraints",
        f"Upper-constraints drift of {release}",
        report=report,
        rows=rows,
        shown_status=wanted,
        statuses=STATUSES,
        row_class=row_class,
    )
