"""`conveyor tags ...`: buildsys tags (candidate → testing → release) declared in rdoinfo's
buildsys-tags files, applied to conveyor's tag store through the closure gate.

The services (SQLAlchemy, libsolv) are imported when a command runs.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import (
    ConfigOption,
    JsonOption,
    fail,
    open_builder,
    tag_errors,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from conveyor.config import Config
    from conveyor.store.database import Database
    from conveyor.tags.service import Plan

TagsOption = Annotated[list[str] | None, typer.Option("--tag", help="only this tag (repeatable)")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="apply although the closure gate refuses (needs --reason)")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="why: recorded with the version")]
AuthorOption = Annotated[
    str | None, typer.Option("--author", help="who: recorded with the version [default: you]")
]


@contextmanager
def _session(config_file: Path | None) -> Iterator[tuple[Config, Database, Session]]:
    config, db = open_builder(config_file)
    try:
        with db.transaction() as session:
            yield config, db, session
    finally:
        db.close()


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def list_tags(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every applied tag: its newest version, builds, when and by whom."""
    from conveyor.tags.state import newest_versions

    with _session(config_file) as (_config, _db, session):
        applied = newest_versions(session)
    rows = [a.summary() for a in sorted(applied.values(), key=lambda a: a.tag)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        common.console.print("no tag applied yet (`conveyor tags apply`)", highlight=False)
    for row in rows:
        print(
            f"{row['tag']}  version {row['version']}  {row['builds']} builds  "
            f"{_when(int(str(row['created'])))}  {row['author']}"
        )


def show(
    tag: Annotated[str, typer.Argument(help="buildsys tag")],
    version: Annotated[int | None, typer.Option(help="a past version [default: newest]")] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A tag's builds (one NVR per package name), now or at a past version."""
    from conveyor.tags.state import history, version_of

    with _session(config_file) as (_config, _db, session):
        if version is not None:
            found = version_of(session, tag, version)
        else:
            versions = history(session, tag)
            found = versions[-1] if versions else None
    if found is None:
        fail(LookupError(f"{tag}: no such tag" + (f" version {version}" if version else "")))
    if as_json:
        print(json.dumps(found.to_json(), indent=2))
        return
    print(f"{found.tag} version {found.version}: {_when(found.created)}, {found.author}")
    print(f"  {found.reason}" + ("  [FORCED past the closure gate]" if found.forced else ""))
    for nvr in sorted(found.content.values()):
        print(f"  {nvr}")


def history_command(
    tag: Annotated[str, typer.Argument(help="buildsys tag")],
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every version of a tag: who, when, why, what changed."""
    from conveyor.tags.state import history

    with _session(config_file) as (_config, _db, session):
        versions = history(session, tag)
    if not versions:
        fail(LookupError(f"{tag}: no such tag"))
    if as_json:
        print(json.dumps([v.to_json() for v in versions], indent=2))
        return
    for v in versions:
        forced = "  [FORCED]" if v.forced else ""
        print(f"version {v.version}  {_when(v.created)}  {v.author}: {v.reason}{forced}")
        for action in v.actions:
            print(f"    {action}")


def votes(
    tag: Annotated[str, typer.Argument(help="buildsys tag")],
    version: Annotated[int | None, typer.Option(help="a past version [default: newest]")] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """CI votes on a tag version's repository (`POST /api/tags/TAG/report_result`), in the
    order they came."""
    from conveyor.tags.votes import TagVoteError, resolve_version, tag_vote_records

    try:
        with _session(config_file) as (_config, _db, session):
            number = resolve_version(session, tag, version)
            records = tag_vote_records(session, tag, number)
    except TagVoteError as exc:
        fail(exc)
    if as_json:
        listed = [r.to_json() for r in records]
        print(json.dumps({"tag": tag, "version": number, "votes": listed}, indent=2))
        return
    print(f"{tag} version {number}: {len(records)} votes")
    for r in records:
        result = "SUCCESS" if r.success else "FAILURE"
        notes = f"  {r.notes}" if r.notes else ""
        print(f"  {result:7}  {r.job_id}  {_when(r.timestamp)}  {r.user}  {r.url}{notes}")


def _print_plan(plan: Plan) -> None:
    if not plan.actions:
        common.console.print("nothing to do: the applied state is the declared one")
        return
    for action in plan.actions:
        print(action)
    for tag, verdict in sorted(plan.verdicts.items()):
        for u in verdict.broken:
            print(f"BREAKS {tag}: {u.package} needs {', '.join(u.missing)}")
        for u in verdict.already:
            print(f"already broken in {tag}: {u.package} needs {', '.join(u.missing)}")
        for package, problem in verdict.uninstallable:
            print(f"not installable from {tag}: {package}: {problem}")
        if verdict.closed:
            print(f"closure of {tag}: ok")


def _plan(config: Config, db: Database, tags: list[str] | None) -> Plan:
    from conveyor.tags.service import plan_declared, store_of

    with db.transaction() as session:
        return plan_declared(config, session, store_of(config), tags)


def diff(
    config_file: ConfigOption = None, tags: TagsOption = None, as_json: JsonOption = False
) -> None:
    """The declared state (rdoinfo) against the applied one: the actions (register, tag,
    untag, move) and the closure gate's verdict on the result. Exit 1 if the gate refuses."""
    config, db = open_builder(config_file)
    try:
        plan = _plan(config, db, tags)
    except tag_errors() as exc:
        fail(exc)
    finally:
        db.close()
    if as_json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        _print_plan(plan)
    if not plan.closed:
        raise typer.Exit(1)


@contextmanager
def _writing(
    config_file: Path | None, force: bool, reason: str
) -> Iterator[tuple[Config, Database]]:
    """The tag store held for this command alone (after repairs an interrupted writer
    needed, which are said); a forced change without a reason is refused first."""
    from conveyor.tags.service import TagsError, exclusive

    if force and not reason.strip():
        fail(TagsError("--force needs --reason: a forced change is recorded with its reason"))
    config, db = open_builder(config_file)
    try:
        with exclusive(config, db) as repaired:
            for line in repaired:
                common.console.print(f"repaired: {line}", highlight=False, markup=False)
            yield config, db
    except tag_errors() as exc:
        fail(exc)
    finally:
        db.close()


def _apply(
    config: Config, db: Database, plan: Plan, author: str | None, reason: str, force: bool
) -> None:
    from conveyor.tags.service import ClosureRefused, apply_plan, store_of

    _print_plan(plan)
    try:
        versions = apply_plan(
            config, db, store_of(config), plan, author or getpass.getuser(), reason, force
        )
    except ClosureRefused as exc:
        fail(exc, code=1)
    for v in versions:
        if config.tags.backend == "koji":
            print(f"{v.tag}: version {v.version}, applied on Koji ({config.tags.koji_command})")
        else:
            print(f"{v.tag}: version {v.version} ({config.tags_baseurl}/{v.tag}/{v.tag}.repo)")


def apply(
    config_file: ConfigOption = None,
    tags: TagsOption = None,
    force: ForceOption = False,
    reason: ReasonOption = "",
    author: AuthorOption = None,
) -> None:
    """Make the applied state the declared one: a new version of each changed tag,
    published as a repository, refused (exit 1) when it breaks dependency closure."""
    with _writing(config_file, force, reason) as (config, db):
        _apply(config, db, _plan(config, db, tags), author, reason, force)


def restore(
    tag: Annotated[str, typer.Argument(help="buildsys tag")],
    version: Annotated[int, typer.Argument(help="the version whose content to bring back")],
    config_file: ConfigOption = None,
    force: ForceOption = False,
    reason: ReasonOption = "",
    author: AuthorOption = None,
) -> None:
    """Bring a tag back to a past version's content, as a new version (through the gate).
    The declarations are not edited: until buildsys-tags/<tag>.yml says the same, the next
    `tags apply` brings the declared content back."""
    from conveyor.tags.service import plan_restore, store_of

    with _writing(config_file, force, reason) as (config, db):
        with db.transaction() as session:
            plan = plan_restore(config, session, store_of(config), tag, version)
        _apply(config, db, plan, author, reason or f"restore version {version}", force)
        common.console.print(
            f"note: buildsys-tags/{tag}.yml still declares its own content; edit it to keep "
            "this one, or the next `tags apply` brings that back",
            highlight=False,
            markup=False,
        )


def import_rpms(
    folder: Annotated[Path, typer.Argument(help="folder of RPMs (binary and source)")],
    config_file: ConfigOption = None,
) -> None:
    """Add builds to the tag store from RPM files, grouped by their source RPM."""
    from conveyor.tags.service import import_builds, store_of

    with _writing(config_file, False, "") as (config, db):
        report = import_builds(db, store_of(config), folder)
    for nvr in report.imported:
        print(f"imported {nvr}")
    for nvr in report.known:
        print(f"already in the store: {nvr}")


def propose(
    to: Annotated[str, typer.Option("--to", help="testing or release")],
    family: Annotated[
        str | None,
        typer.Option("--family", help="only <family>-<stage> tags, e.g. cloud9s-openstack-epoxy"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print, do not edit")] = False,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Propose the next promotion as edits of the buildsys-tags files (minimal diffs,
    comments kept), for review: candidate → testing, or testing → release with the
    missing dependencies pulled in."""
    from conveyor.edit import EditError, MetadataEditor
    from conveyor.tags.service import load_desired, propose_promotion, rdoinfo_folder, store_of

    config, db = open_builder(config_file)
    try:
        desired = load_desired(config)
        with db.transaction() as session:
            result = propose_promotion(config, session, store_of(config), desired, to, family)
        if not dry_run:
            editor = MetadataEditor(rdoinfo_folder(config))
            for p in result.proposals:
                editor.set_buildsys_tag(p.project, p.tag, p.nvr)
    except tag_errors() as exc:
        fail(exc)
    except EditError as exc:
        fail(exc)
    finally:
        db.close()
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    for p in result.proposals:
        old = f" (was {p.old})" if p.old else " (new)"
        print(f"{p.tag}: {p.nvr}{old}: {p.why}")
    for tag, nvr, why in result.held_back:
        print(f"held back from {tag}: {nvr}: {why}")
    for warning in result.warnings:
        common.console.print(f"warning: {warning}", highlight=False, markup=False)
    if not result.proposals:
        common.console.print(f"nothing to propose for {to}", highlight=False)
    elif not dry_run:
        common.console.print("edited the buildsys-tags files: review them with `git diff`")


def register(app: typer.Typer) -> None:
    """Add the `tags` group to `app`."""
    tags = typer.Typer(help="Buildsys tags: candidate → testing → release, closure-gated.")
    tags.command("list")(list_tags)
    tags.command("show")(show)
    tags.command("history")(history_command)
    tags.command("votes")(votes)
    tags.command("diff")(diff)
    tags.command("apply")(apply)
    tags.command("restore")(restore)
    tags.command("import-rpms")(import_rpms)
    tags.command("propose")(propose)
    app.add_typer(tags, name="tags")
