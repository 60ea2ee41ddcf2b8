"""The files DLRN writes into every hash directory (dlrn.md section 9), byte-compatible where
tools read them: `<reponame>.repo`, `versions.csv`, `commit.yaml`, `installed`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

VERSIONS_CSV_HEADER = (
    "Project",
    "Source Repo",
    "Source Sha",
    "Dist Repo",
    "Dist Sha",
    "Status",
    "Last Success Timestamp",
    "Component",
    "Extended Sha",
    "Pkg NVR",
)


def repo_file(
    reponame: str, project: str, commit_hash: str, url: str, component: str | None
) -> str:
    section = f"{reponame}-component-{component}" if component else reponame
    return (
        f"[{section}]\n"
        f"name={reponame}-{project}-{commit_hash}\n"
        f"baseurl={url}\n"
        "enabled=1\n"
        "gpgcheck=0\n"
        "priority=1\n"
    )


@dataclass(frozen=True)
class VersionsRow:
    project: str
    source_repo: str
    source_sha: str
    dist_repo: str
    dist_sha: str | None
    status: str
    last_success: int | None
    component: str | None
    extended_sha: str | None
    nvr: str | None


def _cell(value: object) -> str:
    # DLRN writes Python's None literally; readers of versions.csv expect it.
    return "None" if value is None else str(value)


def versions_csv(rows: Iterable[VersionsRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VERSIONS_CSV_HEADER)
    for r in rows:
        writer.writerow(
            [
                _cell(v)
                for v in (
                    r.project,
                    r.source_repo,
                    r.source_sha,
                    r.dist_repo,
                    r.dist_sha,
                    r.status,
                    r.last_success,
                    r.component,
                    r.extended_sha,
                    r.nvr,
                )
            ]
        )
    return out.getvalue()


def commit_yaml(columns: Mapping[str, object]) -> str:
    """`commits:` with one mapping of every column as a string, the form dlrn-remote imports."""
    row = {key: _cell(value) for key, value in columns.items()}
    return yaml.safe_dump({"commits": [row]}, default_flow_style=False, sort_keys=True)


def installed_marker(project: str, commit_hash: str, distro_hash: str | None) -> str:
    return f"{project} {commit_hash} {distro_hash}"
