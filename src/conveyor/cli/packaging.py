"""Packaging-metadata commands: `conveyor meta ...` edits, `uc-report`, `reqcheck`,
`release-status`.

The services are imported when a command runs, except the distributions `uc-report --help`
lists (`conveyor.domain.distros.DISTROS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import config_or_exit, fail
from conveyor.domain.distros import DISTROS

InfoOption = Annotated[Path, typer.Option("--info", "-l", help="rdoinfo checkout (default: .)")]


# The options release-status and release-pins share.
SeriesOption = Annotated[str, typer.Option("--series", help="OpenStack series, e.g. epoxy")]
ReleasesOption = Annotated[Path, typer.Option("--releases", help="openstack/releases checkout")]
InfoFileOption = Annotated[
    Path, typer.Option("--info", "-l", help="rdoinfo checkout or entry file")
]
ReleaseTagOption = Annotated[
    str | None, typer.Option("--tag", "-t", help="rdoinfo tag (default: SERIES)")
]


def _errors() -> tuple[type[Exception], ...]:
    """The errors of these commands a user can fix. An `except` clause evaluates this only
    while an exception is being handled."""
    from conveyor.edit import EditError
    from conveyor.metadata import MetadataError
    from conveyor.uc import UCError

    return (UCError, EditError, MetadataError)


def _report_edit(changed: list[Path]) -> None:
    for path in changed:
        common.out.print(f"edited {path}", highlight=False)


def uc_report(
    release: Annotated[str, typer.Option("--release", "-r", help="release name (1st column)")],
    uc: Annotated[Path, typer.Option("--uc", help="upper-constraints.txt")],
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo",
            help="repository [ID,]DIR|URL, or a dnf .repo file (path or URL) (repeatable)",
        ),
    ] = None,
    repos_dir: Annotated[
        Path | None,
        typer.Option("--repos-dir", "-R", help="directory of .repo files (all of them)"),
    ] = None,
    nvr_list: Annotated[
        list[Path] | None,
        typer.Option("--nvr-list", help="NVRs, one a line, or a buildsys-tags YAML (repeatable)"),
    ] = None,
    name_map: Annotated[
        Path | None,
        typer.Option(
            "--name-map",
            help="'module package' lines (or a YAML mapping) overriding the name mapping",
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="only rows with this status (repeatable)"),
    ] = None,
    distro: Annotated[
        str,
        typer.Option(
            "--distro", "-d", help=f"{', '.join(DISTROS)}: $releasever and Python version"
        ),
    ] = "centos9",
    python_version: Annotated[
        str | None,
        typer.Option("--python-version", help="for markers (default: the distro's, 3.9)"),
    ] = None,
    show_others: Annotated[
        bool,
        typer.Option(
            "--show-overridden-repos", "-S", help="8th column: other sources providing it"
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="rows per source, on stderr")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of CSV")] = False,
) -> None:
    """Each upper-constraints pin against the package providing it (report-uc.py CSV)."""
    from conveyor.uc import (
        UCError,
        build_report,
        filter_rows,
        index_sources,
        load_constraints,
        load_name_map,
        source_counts,
        summary,
        to_csv,
        to_json,
    )
    from conveyor.uc.repofile import distro_versions, repo_variables
    from conveyor.uc.report import STATUSES

    for s in status or ():
        if s not in STATUSES:
            fail(UCError(f"unknown status {s!r}; expected one of {', '.join(STATUSES)}"))
    if not repo and not nvr_list and repos_dir is None:
        fail(UCError("give at least one --repo, --repos-dir or --nvr-list"))
    try:
        variables = repo_variables(distro)
        overrides = load_name_map(name_map) if name_map is not None else None
        pins = load_constraints(uc, python_version or distro_versions(distro)[1])
        index = index_sources(repo or (), nvr_list or (), repos_dir, variables)
    except _errors() as exc:
        fail(exc)
    rows = build_report(release, pins, index, overrides)
    counts = summary(rows)
    shown = filter_rows(rows, status or ())
    per_source = source_counts(shown, index.sources)
    if as_json:
        print(to_json(shown, counts, per_source))
    else:
        print(to_csv(shown, show_others), end="")
        common.console.print(
            f"{len(rows)} pins: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
            highlight=False,
        )
    if verbose:
        for source, number in per_source.items():
            where = index.locations.get(source, "")
            common.console.print(f"{source}: {number} rows  {where}".rstrip(), highlight=False)


def set_pin(
    project: str,
    tag: str,
    source_branch: Annotated[str, typer.Argument(metavar="SOURCE-BRANCH")],
    info: InfoOption = Path(),
) -> None:
    """Pin PROJECT's source-branch for release TAG (tags/TAG.yml)."""
    from conveyor.edit import MetadataEditor

    try:
        _report_edit(MetadataEditor(info).set_pin(project, tag, source_branch))
    except _errors() as exc:
        fail(exc)


def set_buildsys_tag(
    project: str,
    tag: str,
    nvr: str,
    info: InfoOption = Path(),
) -> None:
    """Set PROJECT's NVR in CBS tag TAG (buildsys-tags/TAG.yml)."""
    from conveyor.edit import MetadataEditor

    try:
        _report_edit(MetadataEditor(info).set_buildsys_tag(project, tag, nvr))
    except _errors() as exc:
        fail(exc)


def add_package(
    project: Annotated[str, typer.Option("--project", "-p", help="project name")],
    conf: Annotated[str, typer.Option("--conf", help="package-configs template")],
    name: Annotated[str | None, typer.Option("--name", help="RPM source name")] = None,
    upstream: Annotated[str | None, typer.Option("--upstream", help="upstream URL")] = None,
    component: Annotated[str | None, typer.Option("--component")] = None,
    maintainer: Annotated[
        list[str] | None, typer.Option("--maintainer", "-m", help="e-mail (repeatable)")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="also tag for this release (repeatable)"),
    ] = None,
    file: Annotated[str, typer.Option("--file", help="database file to append to")] = "rdo.yml",
    info: InfoOption = Path(),
) -> None:
    """Append a package entry to rdo.yml (or --file) and tag it in tags/TAG.yml."""
    from conveyor.edit import MetadataEditor

    try:
        changed = MetadataEditor(info).add_package(
            project,
            conf,
            name=name,
            upstream=upstream,
            component=component,
            maintainers=maintainer or [],
            tags=tag or [],
            file=file,
        )
    except _errors() as exc:
        fail(exc)
    _report_edit(changed)


def reqcheck(
    ref: Annotated[
        str | None,
        typer.Option("--ref", "-R", help="upstream git ref (default: the spec's Version)"),
    ] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="spec file")] = None,
    upstream: Annotated[
        Path | None, typer.Option("--upstream", "-u", help="upstream git checkout")
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option("--requirements", help="a requirements.txt instead of git"),
    ] = None,
    previous_ref: Annotated[
        str | None,
        typer.Option("--previous-ref", help="earlier upstream ref, for REMOVED"),
    ] = None,
    built_rpm: Annotated[
        Path | None,
        typer.Option("--rpm", help="built RPM: its python3dist() requires, not the spec's"),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text, spec or json")] = "text",
    python_version: Annotated[
        str, typer.Option("--python-version", "-p", help="for markers")
    ] = "3.9",
    strict: Annotated[
        bool,
        typer.Option("--strict", "-S", help="exit 1 when anything is MISSING or MISMATCH"),
    ] = False,
    override: Annotated[
        Path | None,
        typer.Option("--override", "-O", help="YAML: per-package version overrides and ignores"),
    ] = None,
    autosync: Annotated[
        bool,
        typer.Option(
            "--autosync", "-a", help="edit the spec: fix MISMATCH, add MISSING, drop REMOVED"
        ),
    ] = False,
) -> None:
    """Spec Requires against upstream requirements.txt (rdopkg reqcheck categories)."""
    from conveyor.uc import UCError
    from conveyor.uc.reqcheck import (
        check_requirements,
        find_spec,
        format_reqcheck,
        load_reqcheck_inputs,
        strict_failures,
    )
    from conveyor.uc.reqoverride import load_overrides
    from conveyor.uc.specsync import autosync as sync_spec

    if output not in ("text", "spec", "json"):
        fail(UCError(f"unknown output {output!r}; expected text, spec or json"))
    if autosync and built_rpm is not None:
        fail(UCError("--autosync edits a spec; it cannot be used with --rpm"))
    changes = []
    try:
        overrides = load_overrides(override) if override is not None else None
        if built_rpm is None:
            spec = find_spec(spec)
        inputs = load_reqcheck_inputs(
            spec=spec,
            ref=ref,
            upstream=upstream,
            requirements=requirements,
            previous_ref=previous_ref,
            python_version=python_version,
            built_rpm=built_rpm,
            overrides=overrides,
        )
        result = check_requirements(*inputs)
        # Before printing: a spec that cannot be synced is an error with no report.
        if autosync and spec is not None:
            changes = sync_spec(spec, result)
    except _errors() as exc:
        fail(exc)
    print(format_reqcheck(result, output), end="")
    for change in changes:
        common.console.print(str(change), highlight=False)
    if changes:
        common.console.print(f"edited {spec}", highlight=False)
    # A successful --autosync left nothing MISSING or MISMATCH (rdopkg counts them MET).
    failed = [] if changes else strict_failures(result)
    if strict and failed:
        common.console.print(f"strict: {' and '.join(c.upper() for c in failed)}", highlight=False)
        raise typer.Exit(1)


def release_status_cmd(
    series: SeriesOption,
    releases: ReleasesOption = Path(),
    info: InfoFileOption = Path(),
    tag: ReleaseTagOption = None,
    package: Annotated[
        str | None,
        typer.Option("--package", "-p", help="only projects/packages matching this regex"),
    ] = None,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", "-s", help="only this state (repeatable)"),
    ] = None,
    needs_action: Annotated[
        bool,
        typer.Option("--needs-action", help="only to-build, pin-older and pin-newer"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="a builder's conveyor.toml: add its tag store's applied NVRs and the next "
            "step toward GA",
        ),
    ] = None,
) -> None:
    """Per package: newest upstream release vs pinned source-branch vs buildsys NVRs (and,
    with --config, the applied tags and what is still to do)."""
    import dataclasses
    import json

    from conveyor.uc.releases import (
        NEEDS_ACTION,
        check_states,
        compile_pattern,
        filter_status,
        series_release_status,
        state_counts,
    )

    states = [*(state or ()), *(NEEDS_ACTION if needs_action else ())]
    try:
        pattern = compile_pattern(package) if package is not None else None
        check_states(states)  # refused before any loading
        found = series_release_status(releases, info, series, tag)
        about, rows = found.about, found.rows
        if config_file is not None:
            from conveyor.assembly.releases import with_applied_tags

            rows = with_applied_tags(config_or_exit(config_file), series, found)
        shown = filter_status(rows, pattern, states)
    except _errors() as exc:
        fail(exc)
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in shown], indent=2))
        return
    counts = ", ".join(f"{k} {v}" for k, v in state_counts(rows).items())
    common.out.print(
        f"{series} ({about.get('release-id')}): {about.get('status')}, {len(rows)} packages"
        f" ({counts}); {len(shown)} shown",
        highlight=False,
        soft_wrap=True,
    )
    for r in shown:
        nvrs = " ".join(f"{t}={n}" for t, n in sorted(r.nvrs.items())) or "-"
        if config_file is not None:
            declared = _by_build(r.nvrs)
            applied = "as declared" if r.applied == r.nvrs else _by_build(r.applied)
            nvrs = f"{declared} applied: {applied} todo: {r.todo or '-'}"
        common.out.print(
            f"{r.state:12} {r.project:40} release={r.upstream_release or '-'} "
            f"pin={r.source_branch or '-'} {nvrs}",
            highlight=False,
            soft_wrap=True,  # one package a line, however many NVRs: greppable
        )
    if found.unpackaged and not states and pattern is None:
        common.out.print(
            f"{len(found.unpackaged)} repositories released in {series} that no package of "
            f"the release builds: {', '.join(found.unpackaged)}",
            highlight=False,
            soft_wrap=True,
        )


def _by_build(held: Mapping[str, str]) -> str:
    """`nvr (family: stage,stage)` per build: a build in three stages of one family is one
    item, not three full tag names."""
    if not held:
        return "-"
    tags_of: dict[str, list[str]] = {}
    from conveyor.domain.tags import stage_order

    for tag, nvr in sorted(held.items(), key=lambda item: stage_order(item[0])):
        tags_of.setdefault(nvr, []).append(tag)
    items = []
    for nvr, tags in tags_of.items():
        families = {t.rsplit("-", 1)[0] for t in tags}
        if len(families) == 1 and all("-" in t for t in tags):
            where = f"{families.pop()}: {','.join(t.rsplit('-', 1)[1] for t in tags)}"
        else:
            where = ",".join(tags)
        items.append(f"{nvr} ({where})")
    return " ".join(items)


def release_pins_cmd(
    series: SeriesOption,
    releases: ReleasesOption = Path(),
    info: InfoFileOption = Path(),
    tag: ReleaseTagOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print, do not edit")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pin branchless projects (deliverables with no stable branch) to the series' final
    release: edits of tags/<series>.yml (minimal diffs), for review. A pin newer than the
    final release is refused (exit 1) and nothing is edited."""
    import dataclasses
    import json

    from conveyor.edit import MetadataEditor
    from conveyor.metadata.yamlfiles import entry_file
    from conveyor.uc.pins import refused_pins, series_pins

    try:
        pins = series_pins(releases, info, series, tag)
    except _errors() as exc:
        fail(exc)
    if as_json:
        print(json.dumps([dataclasses.asdict(p) for p in pins], indent=2))
    else:
        for p in pins:
            common.out.print(
                f"{p.state:6} {p.project:40} final={p.release} pin={p.current or '-'}",
                highlight=False,
                soft_wrap=True,
            )
    refused = refused_pins(pins, series)
    if refused:
        common.console.print(refused, highlight=False, markup=False)
        raise typer.Exit(1)
    if dry_run:
        return
    try:
        editor = MetadataEditor(entry_file(info).parent)
        to_write = [(p.project, p.release) for p in pins if p.to_write]
        written = editor.set_pins(tag or series, to_write) if to_write else 0
    except _errors() as exc:
        fail(exc)
    if written:
        common.console.print(
            f"pinned {written} projects in tags/{tag or series}.yml: review with `git diff`",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add `uc-report`, the `meta` group with its commands, `reqcheck`, `release-status` and
    `release-pins` to `app`."""
    app.command("uc-report")(uc_report)
    meta = typer.Typer(help="Edit rdoinfo metadata with minimal diffs.", no_args_is_help=True)
    meta.command("set-pin")(set_pin)
    meta.command("set-buildsys-tag")(set_buildsys_tag)
    meta.command("add-package")(add_package)
    app.add_typer(meta, name="meta")
    app.command("reqcheck")(reqcheck)
    app.command("release-status")(release_status_cmd)
    app.command("release-pins")(release_pins_cmd)
