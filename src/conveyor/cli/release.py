"""`conveyor release-ga`: the GA of a branched release, resumable, with its timeline.

Exit codes: 0 the release repository is published; 1 a step failed (a build, a closure
refusal, a failed CI job); 2 bad input; 3 another release-ga holds the builder; 4 waiting
for the CI's votes on the testing tag. Run it again to resume.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import (
    ConfigOption,
    JsonOption,
    complete_package,
    config_or_exit,
    fail,
    open_builder,
    tag_errors,
    user_errors,
)

EXIT_FAILED, EXIT_BUSY, EXIT_WAITING = 1, 3, 4


def _time(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _say(line: str) -> None:
    common.console.print(line, highlight=False, markup=False, soft_wrap=True)


def _show_timeline(config_file: Path | None, series: str, as_json: bool) -> None:
    from conveyor.assembly.timeline import timeline_of
    from conveyor.store.database import Database

    config = config_or_exit(config_file)
    if config.metadata.release != series:
        fail(
            ValueError(
                f"this builder builds {config.metadata.release or 'master'!r}, not {series!r}: "
                f"give the {series} builder's conveyor.toml"
            )
        )
    db = Database(config.database_url)
    try:
        records = timeline_of(db, series)
    finally:
        db.close()
    if as_json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return
    if not records:
        print(f"no release-ga run of {series} yet")
        return
    for r in records:
        took = f"{r.seconds:>5} s" if r.seconds is not None else "    - s"
        first = r.detail.splitlines()[0] if r.detail else ""
        common.out.print(
            f"run {r.run:<3} {_time(r.started)} {took}  {r.step:9} {r.state:11} {first}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def release_ga(
    series: Annotated[str, typer.Option("--series", help="the release, e.g. flamingo")],
    releases: Annotated[
        Path | None,
        typer.Option("--releases", help="an openstack/releases checkout (its deliverables)"),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", help="the tag family, e.g. cloud9s-openstack-flamingo"),
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="seconds to wait for the CI's votes")
    ] = 0.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the status, pins and builds to do; do nothing")
    ] = False,
    sync_requirements: Annotated[
        bool,
        typer.Option(
            "--sync-requirements",
            help="sync each spec's Requires with the release's requirements.txt (reqcheck -a): "
            "a commit pushed to the distgit branch before the build",
        ),
    ] = False,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="show the recorded runs and steps, do nothing")
    ] = False,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run what remains until the release repository is published: late final builds into
    candidate, candidate → testing, the CI's votes on testing (the release criteria),
    testing → release, each move through the closure gate. Resumable: run it again after a
    stop. Exit 0 published, 1 a step failed, 2 bad input, 3 busy, 4 waiting for votes."""
    if timeline:
        _show_timeline(config_file, series, as_json)
        return
    if releases is None:
        fail(ValueError("--releases is required (an openstack/releases checkout)"))
    from conveyor.assembly.ga import GaBusy, GaError, GaRequest, run_ga
    from conveyor.store.database import Database
    from conveyor.tags.service import TagsError

    config = config_or_exit(config_file)
    request = GaRequest(
        series, releases, family, wait, dry_run=dry_run, sync_requirements=sync_requirements
    )
    try:
        db = Database(config.database_url)
    except user_errors() as exc:
        fail(exc)
    try:
        result = run_ga(config, db, request, (lambda _line: None) if as_json else _say)
    except GaBusy as exc:
        common.console.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(EXIT_BUSY) from None
    except (GaError, TagsError) as exc:
        fail(exc)
    finally:
        db.close()
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.state == "done" and result.repo_file is not None:
        _say(f"\n{series} is released: {result.repo_file}")
        _say(
            "install from it: dnf --setopt=reposdir=DIR install PACKAGE, with "
            f"{result.repo_file.name} (and the dependencies' .repo) in DIR"
        )
    elif dry_run:
        _say("\ndry run: nothing was changed")
    elif result.state == "failed":
        _say(
            f"\nstopped at {result.steps[-1][0]} (run {result.run}): fix what it says, then run "
            "release-ga again to resume"
        )
    elif result.state == "waiting":
        _say(
            f"\nwaiting at {result.steps[-1][0]} (run {result.run}): run release-ga again once "
            "the CI voted (or wait for it with --wait SECONDS)"
        )
    if result.state == "failed":
        raise typer.Exit(EXIT_FAILED)
    if result.state == "waiting":
        raise typer.Exit(EXIT_WAITING)


def release_build(
    packages: Annotated[
        list[str], typer.Argument(help="packages to build", autocompletion=complete_package)
    ],
    into: Annotated[str, typer.Option("--into", help="the -candidate tag to tag the builds into")],
    version: Annotated[
        str | None, typer.Option("--version", help="the upstream release (its git tag)")
    ] = None,
    series: Annotated[
        str | None,
        typer.Option("--series", help="take each package's newest release of this series"),
    ] = None,
    releases: Annotated[
        Path | None, typer.Option("--releases", help="openstack/releases checkout (--series)")
    ] = None,
    sync_requirements: Annotated[
        bool,
        typer.Option(
            "--sync-requirements",
            help="sync the spec's Requires with the release's requirements.txt (reqcheck -a): "
            "a commit pushed to the distgit branch before the build",
        ),
    ] = False,
    config_file: ConfigOption = None,
) -> None:
    """Build packages from an upstream release (Release 1, 0.N.0rcN for a release
    candidate; the builder's driver) and tag them into a -candidate tag (rdoinfo edited, the
    tag applied through the gate, once for all). A release whose NVR the tag store holds is
    not built again. Exit 1 if a build fails: the others are tagged all the same."""
    from conveyor.assembly.releases import (
        ReleaseBuildError,
        build_release,
        check_candidate,
        check_not_older,
        prepare_release,
        release_targets,
        tag_builds,
    )
    from conveyor.tags.service import TagsError

    if (version is None) == (series is None):
        fail(TagsError("give one of --version or --series (with --releases)"))
    config, db = open_builder(config_file)
    failed = False
    try:
        # Everything checked before the first build: a typo must not leave half a release.
        check_candidate(config, into)
        targets = release_targets(config)
        prepared = [
            prepare_release(config, package, version, series, releases, targets=targets)
            for package in packages
        ]
        for one in prepared:
            check_not_older(config, one, into)
        done = []
        for one in prepared:
            build = build_release(config, db, one, sync_requirements)
            line = f"{build.state:8} {build.nvr} ({build.package} {build.version})"
            print(f"{line}: {build.notes}" if build.state == "skipped" else line)
            if build.notes and build.state != "skipped":
                common.console.print(build.notes, highlight=False, markup=False)
            failed = failed or build.state == "failed"
            if build.state != "failed":
                done.append((one.job.target.project, build.nvr))
        tag_builds(config, db, done, into, f"release builds of {', '.join(packages)}")
    except ReleaseBuildError as exc:
        fail(exc)
    except tag_errors() as exc:
        fail(exc)
    finally:
        db.close()
    if failed:
        raise typer.Exit(1)


def release_branch(
    series: Annotated[str, typer.Argument(help="the rdoinfo release, e.g. gazpacho")],
    out: Annotated[
        Path | None, typer.Option("--out", help="the new builder's folder [default: ./SERIES]")
    ] = None,
    create_branches: Annotated[
        bool,
        typer.Option("--create-branches", help="push the distgit branches where possible"),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print, write nothing")] = False,
    releases: Annotated[
        Path | None,
        typer.Option(
            "--releases",
            help="an openstack/releases checkout, for the new builder's dashboard (/releases)",
        ),
    ] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Prepare a stable builder for a new rdoinfo release: its conveyor.toml and the
    master's promotion criteria in a new folder, its buildsys tags declared in rdoinfo, its
    distgit branches listed (and created with --create-branches), for one review."""
    from conveyor.assembly.branching import (
        BranchError,
        branch_release,
        look_up_branches,
        plan_branch,
    )

    config = config_or_exit(config_file)
    folder = out or Path(series)
    kept = False
    try:
        plan = plan_branch(config, series, folder, releases)
        if dry_run:
            look_up_branches(config, plan)
        else:
            kept = branch_release(config, plan, folder, create_branches)
    except BranchError as exc:
        fail(exc)
    except tag_errors() as exc:
        fail(exc)
    if as_json:
        print(json.dumps(plan.to_json(), indent=2))
        return
    print(f"{series}: source branch {plan.source_branch}, distgit branch {plan.distro_branch}")
    print(f"buildsys tags: {', '.join(plan.tags)}")
    verb = "to declare" if dry_run else "declared"
    for tag in plan.tags_to_declare:
        print(f"  {verb} in rdoinfo: buildsys-tags/{tag}.yml")
    for d in plan.distgits:
        detail = f" ({d.detail})" if d.detail else ""
        print(f"  distgit {d.package}: {d.branch} from {d.source}: {d.state}{detail}")
    print(f"builder folder: {folder} (its data in {folder}/data)")
    if kept:
        common.console.print(
            f"{folder}/conveyor.toml exists: kept as it is", highlight=False, markup=False
        )
    elif not dry_run:
        rdoinfo = " and the rdoinfo changes" if plan.tags_to_declare else ""
        common.console.print(
            f"wrote {folder}/conveyor.toml: review it (its baseurl above all){rdoinfo}",
            highlight=False,
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add `release-branch`, `release-build` and `release-ga` to `app`."""
    app.command("release-branch")(release_branch)
    app.command("release-build")(release_build)
    app.command("release-ga")(release_ga)
