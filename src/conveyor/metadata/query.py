"""Queries over a loaded database with rdopkg's (distroinfo.query's) semantics and output.

* :func:`parse_filters` / :func:`filter_packages`: ``ATTR:REGEX`` filters (a bare word filters
  ``name``), ANDed, the same attribute twice keeping the last, ``~`` negating, ``re.search``
  matching, list and dict values matching when any element (or key) matches, and a package
  lacking the attribute never matching.
* :func:`find_package`: exact name, then project or upstream URL, then best effort.
* :func:`format_package`, :func:`format_summary`, :func:`format_release`: the text ``rdopkg
  info``, ``findpkg`` and ``release`` print (without terminal bold).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.metadata.model import RdoInfoDatabase
from conveyor.metadata.resolve import resolve_mapping, resolve_package


class FilterError(ValueError):
    """A filter that cannot be used (e.g. an invalid regular expression)."""


@dataclass(frozen=True)
class PackageFilter:
    attr: str
    pattern: re.Pattern[str]
    negate: bool = False

    def matches(self, package: Mapping[str, Any]) -> bool:
        value = package.get(self.attr)
        if value is None:
            return False
        if isinstance(value, str):
            found = self.pattern.search(value) is not None
        elif isinstance(value, Iterable):
            found = any(self.pattern.search(_text(item)) for item in value)
        else:
            found = self.pattern.search(_text(value)) is not None
        return found != self.negate


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def parse_filters(arguments: Sequence[str]) -> list[PackageFilter]:
    """``ATTR:REGEX`` arguments (a bare ``REGEX`` means ``name:REGEX``) as filters."""
    by_attr: dict[str, PackageFilter] = {}
    for argument in arguments:
        attr, sep, regex = argument.partition(":")
        if not sep:
            attr, regex = "name", argument
        if not attr:
            raise FilterError(f"filter {argument!r}: missing attribute before ':'")
        negate = regex.startswith("~")
        if negate:
            regex = regex[1:]
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise FilterError(f"filter {argument!r}: invalid regular expression: {exc}") from None
        by_attr[attr] = PackageFilter(attr, pattern, negate)  # the same attr twice: last wins
    return list(by_attr.values())


def filter_packages(
    packages: Iterable[Mapping[str, Any]], filters: Sequence[PackageFilter]
) -> list[Mapping[str, Any]]:
    return [package for package in packages if all(f.matches(package) for f in filters)]


def resolved_packages(db: RdoInfoDatabase, tag: str | None = None) -> list[Mapping[str, Any]]:
    """Every package as distroinfo's ``get_info(apply_tag=tag)`` gives it (all packages,
    the tag's overrides applied to those that carry it)."""
    return [resolve_package(db, project, tag).raw for project in db.packages]


def select_packages(
    db: RdoInfoDatabase, filters: Sequence[PackageFilter], tag: str | None = None
) -> list[Mapping[str, Any]]:
    """``filter_packages(resolved_packages(db, tag), filters)``, faster: filters are matched
    against uncopied mappings (layered and substituted, so broken templates still fail) and
    only the matching packages are copied and have their names and URLs checked (`conveyor
    lint` checks every package)."""
    selected = []
    for project in db.packages:
        mapping = resolve_mapping(db, project, tag)
        if all(f.matches(mapping) for f in filters):
            selected.append(resolve_package(db, project, tag).raw)
    return selected


def find_in_database(
    db: RdoInfoDatabase, query: str, strict: bool = False
) -> Mapping[str, Any] | None:
    """``find_package(resolved_packages(db), query, strict)``, resolving only the package found."""
    projects = list(db.packages)
    mappings = [resolve_mapping(db, project) for project in projects]
    found = find_package(mappings, query, strict)
    if found is None:
        return None
    index = next(i for i, mapping in enumerate(mappings) if mapping is found)
    return resolve_package(db, projects[index]).raw


def resolved_releases(db: RdoInfoDatabase) -> list[dict[str, Any]]:
    """Releases in file order, each repo's missing ``branch`` inherited from its release."""
    releases = []
    for release in db.releases.values():
        resolved = dict(release)
        repos = []
        for repo in release.get("repos") or ():
            repo = dict(repo) if isinstance(repo, dict) else repo
            if isinstance(repo, dict) and "branch" not in repo and release.get("branch"):
                repo["branch"] = release["branch"]
            repos.append(repo)
        if "repos" in release:
            resolved["repos"] = repos
        releases.append(resolved)
    return releases


def strip_project_url(url: str) -> str:
    """``proto://`` and ``openstack/`` prefixes and ``.git`` / ``-distgit`` suffixes removed."""
    url = re.sub(r"^[^:]+://", "", url, count=1)
    url = url.removesuffix(".git")
    url = url.removesuffix("-distgit")
    if url.startswith("openstack/"):
        url = url.partition("/")[2]
    return url


def find_package(
    packages: Sequence[Mapping[str, Any]], query: str, strict: bool = False
) -> Mapping[str, Any] | None:
    """The package a query names: its name; else its project or upstream; else (unless
    ``strict``) a project contained in a URL query or a name containing the query."""
    for package in packages:
        if package.get("name") == query:
            return package
    stripped = strip_project_url(query)
    for package in packages:
        project = package.get("project")
        if isinstance(project, str) and project.lower() == stripped:
            return package
        upstream = package.get("upstream")
        upstreams = upstream if isinstance(upstream, list) else [upstream]
        for url in upstreams:
            if isinstance(url, str) and strip_project_url(url) == stripped:
                return package
    if strict:
        return None
    lowered = stripped.lower()
    if re.search(r"\W", stripped):
        for package in packages:
            project = package.get("project")
            if isinstance(project, str) and project.lower() in lowered:
                return package
    for package in packages:
        if lowered in _text(package.get("name", "")).lower():
            return package
    return None


def _keyval(key: str, value: Any) -> str:
    if not isinstance(value, str) and isinstance(value, Iterable):
        text = "\n" + "\n".join(f"- {item}" for item in value)
    else:
        text = str(value)
    return f"{key}: {text}"


def _yaml_block(values: Mapping[str, Any]) -> str:
    import yaml  # only needed when printing packages

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~20x faster, same text
    dumped: str = yaml.dump(dict(values), Dumper=dumper, default_flow_style=False)
    return dumped.rstrip()


def format_dict(
    values: Mapping[str, Any], header: str, first: Sequence[str], last: Sequence[str]
) -> str:
    """rdopkg's DictPrinter: header, ``first`` keys, the rest as sorted YAML, ``last`` keys."""
    rest = dict(values)
    lines = [_keyval(header, rest.pop(header, ""))]
    for key in first:
        if key in rest:
            lines.append(_keyval(key, rest.pop(key)))
    tail = [(key, rest.pop(key)) for key in last if key in rest]
    if rest:
        lines.append(_yaml_block(rest))
    lines.extend(_keyval(key, value) for key, value in tail)
    return "\n".join(lines)


def format_package(package: Mapping[str, Any]) -> str:
    """One package as ``rdopkg info`` / ``findpkg`` print it."""
    return format_dict(
        package,
        header="name",
        first=("project", "conf", "upstream", "patches", "distgit"),
        last=("maintainers",),
    )


def format_packages(packages: Sequence[Mapping[str, Any]]) -> str:
    """``N packages found:`` and a block per package, as ``rdopkg info FILTER...``."""
    if not packages:
        return "No packages match your filter."
    blocks = [f"{len(packages)} packages found:"]
    for package in packages:
        blocks.append("")
        blocks.append(format_package(package))
    return "\n".join(blocks)


def format_summary(
    releases: Sequence[Mapping[str, Any]], packages: Sequence[Mapping[str, Any]]
) -> str:
    """The summary ``rdopkg info`` prints without filters (help text excluded)."""
    lines = ["releases & repos:"]
    for release in releases:
        if "status" in release:
            line = f"  {release['name']} in {release['status']} phase "
        else:
            line = f"  {release['name']}"
        if "fedora" in release:
            line += f"   (Fedora {release['fedora']})"
        lines.append(line)
        for repo in release.get("repos") or ():
            if "special" in repo:
                lines.append(f"    {repo['name']}: {repo['special']}")
            else:
                lines.append(
                    f"    {repo['name']} built in {repo.get('buildsys', '??')} "
                    f"from {repo.get('branch')} branch"
                )
    lines.append("")
    lines.append(f"{len(packages)} packages defined:")
    confs: dict[Any, int] = {}
    for package in packages:
        conf = package.get("conf")
        confs[conf] = confs.get(conf, 0) + 1
    for conf, count in confs.items():
        if conf:
            lines.append(f"  {count} using {conf} config")
    if confs.get(None):
        lines.append(f"  {confs[None]} configured ad-hoc")
    return "\n".join(lines)


def release_info(release: Mapping[str, Any]) -> dict[str, Any]:
    """The fields ``rdopkg release`` shows, ``source_branch`` derived as rdopkg does."""
    name = release["name"]
    info: dict[str, Any] = {
        "name": name,
        "status": release.get("status"),
        "branch": release.get("branch"),
    }
    if "identifier" in release:
        info["identifier"] = release["identifier"]
        info["source_branch"] = f"stable/{release['identifier']}"
    else:
        info["source_branch"] = f"stable/{name}"
    info["upstream_branch"] = release.get("upstream_branch", f"stable/{name}")
    info["repos"] = ", ".join(str(repo.get("name")) for repo in release.get("repos") or ())
    return info


def format_release(release: Mapping[str, Any]) -> str:
    return format_dict(
        release_info(release),
        header="name",
        first=("status", "branch", "identifier", "upstream_branch", "source_branch"),
        last=("repos",),
    )


def select_releases(
    releases: Sequence[Mapping[str, Any]],
    name: str | None = None,
    status: str | None = None,
    repo: str | None = None,
) -> list[Mapping[str, Any]]:
    """The releases ``rdopkg release`` would show for ``-r``, ``-s`` or ``-R``."""
    if name is not None:
        return [release for release in releases if release.get("name") == name][:1]
    if status is not None:
        return [release for release in releases if release.get("status") == status]
    return [
        release
        for release in releases
        if repo is None or repo in [r.get("name") for r in release.get("repos") or ()]
    ]
