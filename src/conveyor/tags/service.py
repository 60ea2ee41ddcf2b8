"""`conveyor tags`: the desired state (rdoinfo's buildsys-tags) against the applied one
(versions in the database, repositories in the tag store), the closure gate, and the apply.

An apply is all or nothing: every changed tag's new version is written (its repository
published, not yet pointed at) before the database records them in one transaction; only
then do the tag names move to the new versions. A failure before the commit leaves the
applied state as it was (an unreferenced version folder is removed by the next apply).
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from conveyor.closure.errors import ClosureError
from conveyor.closure.loader import default_cache
from conveyor.config import Config, TagBackend
from conveyor.domain.nvr import Nvr
from conveyor.domain.tags import ActionKind, TagAction, apply_actions, diff_tags
from conveyor.metadata.buildsys import DesiredTags, load_desired_tags
from conveyor.metadata.errors import MetadataError
from conveyor.publish.locks import file_lock
from conveyor.publish.tagstore import TagStore, TagStoreError
from conveyor.store.database import Database
from conveyor.tags.builds import (
    ImportReport,
    TagBuildError,
    import_rpms,
    pool_builds,
    refresh_pool,
    resolve_builds,
)
from conveyor.tags.gate import TagChange, Verdict, closure_gate, load_view, providers_in
from conveyor.tags.koji import KojiClient, KojiError, run_koji
from conveyor.tags.state import AppliedTag, newest_versions, record_version, version_of

__all__ = [
    "ClosureRefused",
    "Plan",
    "PromotionProposal",
    "TagsError",
    "apply_plan",
    "declared_diff",
    "exclusive",
    "import_builds",
    "load_desired",
    "plan_changes",
    "plan_declared",
    "plan_restore",
    "rdoinfo_folder",
    "repo_file",
    "store_of",
]


class TagsError(Exception):
    """Bad input or state; the message says what. Nothing was applied."""


class ClosureRefused(TagsError):
    """The change breaks dependency closure and was not forced."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        lines = [
            f"{u.package} in {tag}: nothing provides {', '.join(u.missing)}"
            for tag, verdict in sorted(plan.verdicts.items())
            for u in verdict.broken
        ]
        super().__init__(
            "refused: the change breaks dependency closure (apply with --force --reason to "
            "override):\n  " + "\n  ".join(lines)
        )


def store_of(config: Config) -> TagStore:
    return TagStore(config.tags_dir)


@contextmanager
def exclusive(config: Config, db: Database, wait: float = 600.0) -> Iterator[list[str]]:
    """The tag store for one writer (`apply`, `restore`, `import-rpms`), waiting up to `wait`
    seconds for another. On entry, what an interrupted writer left is cleaned up: staging
    folders are removed, and a tag whose pointer is behind the newest recorded version (a
    kill between the commit and the rename) points at it again. Yields what was repaired."""
    store = store_of(config)
    with file_lock(config.tags_dir / ".lock", wait) as (_fd, locked):
        if not locked:
            raise TagsError(
                f"another conveyor holds the tag store ({config.tags_dir}) for over {wait:.0f} s"
            )
        repaired = [f"removed {p.relative_to(store.root)}" for p in store.sweep()]
        if config.tags.backend is TagBackend.STORE:
            with db.reader() as session:
                newest = newest_versions(session)
            for tag, applied in sorted(newest.items()):
                if (
                    store.pointed_version(tag) != applied.version
                    and store.version_dir(tag, applied.version).is_dir()
                ):
                    store.point(tag, applied.version)
                    repaired.append(f"{tag} points at version {applied.version} again")
        yield repaired


def rdoinfo_folder(config: Config) -> Path:
    path = config.metadata.path
    return path if path.is_dir() else path.parent


def load_desired(config: Config) -> DesiredTags:
    try:
        return load_desired_tags(rdoinfo_folder(config))
    except MetadataError as exc:
        raise TagsError(str(exc)) from None


def repo_file(config: Config, tag: str, version: int) -> str:
    """The `.repo` file of one tag version: it names the immutable version, as a trunk
    repository's delorean.repo names its hash directory."""
    return (
        f"[{tag}]\n"
        f"name={tag} (version {version})\n"
        f"baseurl={config.tags_baseurl}/versions/{tag}/{version}\n"
        "enabled=1\n"
        "gpgcheck=0\n"
    )


@dataclass(frozen=True)
class Plan:
    actions: tuple[TagAction, ...]
    changes: Mapping[str, TagChange]  # changed tags
    registered: Mapping[str, frozenset[str]]  # changed tags' package lists after
    builds: Mapping[str, list[str]]  # NVR -> file names, of every build the changes hold
    verdicts: Mapping[str, Verdict]

    @property
    def closed(self) -> bool:
        return all(v.closed for v in self.verdicts.values())

    def to_json(self) -> dict[str, object]:
        return {
            "actions": [a.to_json() for a in self.actions],
            "closure": {
                tag: {
                    "closed": verdict.closed,
                    "broken": [u.as_json() for u in verdict.broken],
                    "already_broken": [u.as_json() for u in verdict.already],
                    "uninstallable": [
                        {"package": package, "problem": problem}
                        for package, problem in verdict.uninstallable
                    ],
                }
                for tag, verdict in sorted(self.verdicts.items())
            },
        }


def declared_diff(
    desired: DesiredTags, session: Session, only: Collection[str] | None = None
) -> list[TagAction]:
    """The actions from the applied state to the declared one, without the gate and
    without touching the pool (a read: `tags diff`, the API)."""
    applied = newest_versions(session)
    wanted = {t: desired.content(t) for t in desired.tags if only is None or t in only}
    return diff_tags(
        wanted,
        {tag: a.content for tag, a in applied.items()},
        {tag: a.registered for tag, a in applied.items()},
    )


def _gate(config: Config, store: TagStore, changes: Mapping[str, TagChange]) -> dict[str, Verdict]:
    for folder in config.tags.lookaside:
        if not (folder / "repodata" / "repomd.xml").is_file():
            state = (
                "not a repository (no repodata/repomd.xml)" if folder.exists() else "does not exist"
            )
            raise TagsError(f"[tags] lookaside {folder}: {state}")
    try:
        return closure_gate(store, changes, config.tags.lookaside, default_cache())
    except ClosureError as exc:
        raise TagsError(f"closure gate: {exc}") from None


def plan_changes(
    config: Config,
    session: Session,
    store: TagStore,
    desired: Mapping[str, Mapping[str, str]],
    only: Collection[str] | None = None,
) -> Plan:
    """What applying `desired` ({tag: {name: NVR}}) would do, with the gate's verdicts.
    Trunk builds that the new content names are added to the tag store's pool."""
    chosen = {t: c for t, c in desired.items() if only is None or t in only}
    if only is not None and (unknown := set(only) - set(desired)):
        raise TagsError(f"no such tag declared: {', '.join(sorted(unknown))}")
    applied = newest_versions(session)
    current = {tag: dict(a.content) for tag, a in applied.items()}
    known = {tag: a.registered for tag, a in applied.items()}
    actions = diff_tags(chosen, current, known)
    changed = sorted({a.tag for a in actions} | {a.source for a in actions if a.source})
    after = apply_actions({t: current.get(t, {}) for t in changed}, actions)
    changes = {t: TagChange(current.get(t, {}), after[t]) for t in changed}
    nvrs = {nvr for change in changes.values() for nvr in change.after.values()}
    pool = pool_builds(session)
    try:
        builds = resolve_builds(session, store, config.datadir, nvrs)
        if set(builds) - set(pool) or not store.index_holds(pool):
            refresh_pool(session, store)
    except (TagBuildError, TagStoreError) as exc:
        raise TagsError(str(exc)) from None
    registered = {
        tag: frozenset(known.get(tag, frozenset()))
        | {a.name for a in actions if a.tag == tag and a.kind is ActionKind.REGISTER}
        for tag in changed
    }
    return Plan(tuple(actions), changes, registered, builds, _gate(config, store, changes))


def plan_declared(
    config: Config, session: Session, store: TagStore, only: Collection[str] | None = None
) -> Plan:
    """`plan_changes` toward the declared state (rdoinfo's buildsys-tags files)."""
    desired = load_desired(config)
    content = {tag: desired.content(tag) for tag in desired.tags}
    return plan_changes(config, session, store, content, only)


def import_builds(db: Database, store: TagStore, folder: Path) -> ImportReport:
    """`tags import-rpms`: the folder's builds into the pool, its metadata refreshed."""
    try:
        with db.transaction() as session:
            report = import_rpms(session, store, folder)
            refresh_pool(session, store)
    except (TagBuildError, TagStoreError) as exc:
        raise TagsError(str(exc)) from None
    return report


def plan_restore(config: Config, session: Session, store: TagStore, tag: str, version: int) -> Plan:
    """What bringing `tag` back to its content of `version` would do."""
    old = version_of(session, tag, version)
    if old is None:
        raise TagsError(f"{tag} has no version {version}")
    return plan_changes(config, session, store, {tag: old.content})


def apply_plan(
    config: Config,
    db: Database,
    store: TagStore,
    plan: Plan,
    author: str,
    reason: str,
    force: bool = False,
) -> list[AppliedTag]:
    """Executes `plan`: one new version per changed tag. ClosureRefused when the gate said
    no and `force` is not given; `force` needs a `reason`, recorded with the version."""
    if force and not reason.strip():
        raise TagsError("--force needs --reason: a forced change is recorded with its reason")
    if not plan.closed and not force:
        raise ClosureRefused(plan)
    if not plan.changes:
        return []
    if config.tags.backend is TagBackend.KOJI:
        return _apply_koji(config, db, plan, author, reason, force)
    published: list[Path] = []
    try:
        with db.transaction() as session:
            versions = _record(session, plan, author, reason, force)
            for version in versions:
                tag, change = version.tag, plan.changes[version.tag]
                final = store.version_dir(tag, version.version)
                if final.exists():  # left by an apply that failed before its commit
                    shutil.rmtree(final)
                builds = {nvr: plan.builds[nvr] for nvr in change.after.values()}
                published.append(
                    store.publish_version(
                        tag, version.version, builds, repo_file(config, tag, version.version)
                    )
                )
    except TagStoreError as exc:
        for folder in published:
            shutil.rmtree(folder, ignore_errors=True)
        raise TagsError(str(exc)) from None
    for version in versions:
        store.point(version.tag, version.version)
    return versions


def _record(
    session: Session, plan: Plan, author: str, reason: str, force: bool
) -> list[AppliedTag]:
    versions = []
    for tag, change in sorted(plan.changes.items()):
        versions.append(
            record_version(
                session,
                tag,
                change.after,
                plan.registered.get(tag, frozenset()),
                [a for a in plan.actions if tag in (a.tag, a.source)],
                author,
                reason or "apply the declared state",
                force and not plan.verdicts[tag].closed,
            )
        )
    return versions


def _apply_koji(
    config: Config, db: Database, plan: Plan, author: str, reason: str, force: bool
) -> list[AppliedTag]:
    """The actions on the Koji hub; the versions recorded only once Koji took them all (a
    failure midway is finished by the next apply, see `koji.run_koji`)."""
    client = KojiClient(config.tags.koji_command, config.tags.koji_owner, config.tags.koji_timeout)
    try:
        with db.transaction() as session:
            versions = _record(session, plan, author, reason, force)
            run_koji(client, plan.actions)
    except KojiError as exc:
        raise TagsError(f"koji: {exc}") from None
    return versions


# What each promotion stage takes its builds from, as RDO's bots do.
PROMOTION_SOURCE = {"testing": "candidate", "release": "testing"}


@dataclass(frozen=True)
class Proposal:
    """One edit of a buildsys-tags file: `project`'s NVR in `tag`."""

    project: str
    tag: str
    nvr: str
    old: str  # empty when the project is new in the tag
    why: str

    def to_json(self) -> dict[str, str]:
        return {
            "project": self.project,
            "tag": self.tag,
            "nvr": self.nvr,
            "old": self.old,
            "why": self.why,
        }


def promotion_pairs(desired: DesiredTags, to: str, family: str | None) -> list[tuple[str, str]]:
    """(source, destination) tag pairs of a promotion `to` testing or release: every declared
    `<family>-<to>` tag whose `<family>-<source>` is declared too."""
    if to not in PROMOTION_SOURCE:
        raise TagsError(f"--to must be one of {', '.join(PROMOTION_SOURCE)}, not {to!r}")
    pairs = []
    for tag in sorted(desired.tags):
        if not tag.endswith(f"-{to}"):
            continue
        prefix = tag[: -len(to) - 1]
        source = f"{prefix}-{PROMOTION_SOURCE[to]}"
        if (family is None or prefix == family) and source in desired.tags:
            pairs.append((source, tag))
    if family is not None and not pairs:
        raise TagsError(f"no declared {family}-{PROMOTION_SOURCE[to]} and {family}-{to} pair")
    return pairs


@dataclass(frozen=True)
class PromotionProposal:
    proposals: list[Proposal]
    # Builds of the source stage left out: (destination tag, NVR, why), for a person.
    held_back: list[tuple[str, str, str]]
    warnings: list[str]  # families whose closure could not be checked, and why

    def to_json(self) -> dict[str, object]:
        return {
            "proposals": [p.to_json() for p in self.proposals],
            "held_back": [{"tag": t, "nvr": n, "why": w} for t, n, w in self.held_back],
            "warnings": self.warnings,
        }


def is_older(nvr: str, than: str) -> bool:
    """Whether build `nvr` is older than `than` (rpm's order of epoch, version, release)."""
    import rpm

    new, old = Nvr.parse(nvr), Nvr.parse(than)
    return bool(
        rpm.labelCompare(
            (new.epoch, new.version, new.release), (old.epoch, old.version, old.release)
        )
        < 0
    )


def propose_promotion(
    config: Config,
    session: Session,
    store: TagStore,
    desired: DesiredTags,
    to: str,
    family: str | None = None,
    review_new: bool = True,
) -> PromotionProposal:
    """The edits that bring every `-<to>` tag up to its source stage (the source's applied
    content where it has one, else its declared one), as RDO's bots propose them: a package
    the destination holds gets the source's build where that one is newer, unless rdoinfo
    marks the project version-locked for that tag. A package new to the destination needs a
    person's review (it is listed as held back), except, for `release`, the builds that the
    proposed content needs for closure: those the bot pulls in itself. A family whose builds
    are not all in the store gets its updates without that check, and a warning. Without
    `review_new` (the GA, which its operator reviews as a whole), packages new to the
    destination are proposed too."""
    applied = newest_versions(session)
    result = PromotionProposal([], [], [])
    for source, destination in promotion_pairs(desired, to, family):
        offered = dict(applied[source].content) if source in applied else desired.content(source)
        current = desired.content(destination)
        chosen: dict[str, Proposal] = {}
        for name, nvr in sorted(offered.items()):
            project = desired.project_of(source, name) or desired.project_of(destination, name)
            project = project or name
            if name not in current and review_new:
                result.held_back.append((destination, nvr, f"new to {destination}: for review"))
            elif name not in current:
                chosen[name] = Proposal(project, destination, nvr, "", f"in {source}")
            elif current[name] == nvr or desired.is_locked(project, destination):
                continue
            elif is_older(nvr, current[name]):
                why = f"older than {current[name]}: not a promotion"
                result.held_back.append((destination, nvr, why))
            else:
                chosen[name] = Proposal(project, destination, nvr, current[name], f"in {source}")
        if to == "release" and chosen:
            try:
                _pull_dependencies(
                    config, session, store, desired, source, offered, current, chosen
                )
            except TagsError as exc:
                result.warnings.append(f"closure of {destination} not checked: {exc}")
        pulled = {p.nvr for p in chosen.values()}
        result.held_back[:] = [h for h in result.held_back if h[1] not in pulled]
        result.proposals.extend(chosen.values())
    return result


def _pull_dependencies(
    config: Config,
    session: Session,
    store: TagStore,
    desired: DesiredTags,
    source: str,
    offered: Mapping[str, str],
    current: Mapping[str, str],
    chosen: dict[str, Proposal],
) -> None:
    """Adds to `chosen` the builds of `source` that provide what the proposed destination
    content lacks, until nothing more can be pulled in."""
    destination = next(iter(chosen.values())).tag if chosen else ""
    if not destination:
        return
    try:
        resolve_builds(session, store, config.datadir, set(offered.values()))
        refresh_pool(session, store)
        view = load_view(store, config.tags.lookaside, default_cache())
    except (TagBuildError, TagStoreError) as exc:
        raise TagsError(str(exc)) from None
    except ClosureError as exc:
        raise TagsError(f"closure: {exc}") from None
    for _ in range(len(offered) + 1):
        after = {**current, **{name: p.nvr for name, p in chosen.items()}}
        providers = providers_in(view, after, offered)
        new = {name: nvr for name, nvr in providers.items() if name not in chosen}
        if not new:
            return
        for name, (nvr, needed_by) in sorted(new.items()):
            project = desired.project_of(source, name) or name
            chosen[name] = Proposal(
                project, destination, nvr, current.get(name, ""), f"needed by {needed_by}"
            )
