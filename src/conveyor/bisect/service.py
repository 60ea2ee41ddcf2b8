"""Bisections: started from a good and a bad repository, advanced by CI's votes on their
step repositories, concluded with the culprit build (or with why there is none).

Each step is a repository under `repos/bisect/<h[0:2]>/<h[2:4]>/<h>/`, laid out as a trunk
repository (links to the builds' RPMs, repodata from the cached XML, `delorean.repo`,
`versions.csv`) plus `delorean.repo.md5` holding `h`, as an aggregate's folder does: CI
jobs vote on it with DLRN's `report_result --agg-hash h`, unchanged. `h` is derived from the
bisection's id and the builds it holds: the same content in one bisection is the same
repository, and a later bisection never counts the votes of an earlier one.
`repos/bisect/current-<id>` points at the step waiting for its vote.

Advancing is idempotent and runs under the publish lock: after a vote (the API), and on
`conveyor bisect status` for votes that arrived while nothing advanced it. The verdict of a
step is the first vote of the bisection's job on its hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.bisect.plan import Bisectable, BisectError, BuildInfo, plan_bisection
from conveyor.config import Config
from conveyor.domain.bisect import (
    CONCLUDED,
    RESET,
    RUNNING,
    Conclusion,
    Content,
    Outcome,
    Progress,
    content_key,
    decide,
    step_bound,
)
from conveyor.domain.forge import commit_url
from conveyor.domain.names import InvalidName, check_label
from conveyor.domain.paths import pointer_relpath, step_relpath
from conveyor.publish import formats
from conveyor.publish.locks import publish_lock
from conveyor.publish.repostore import LinkedBuild, PublishError, RepoStore
from conveyor.reports.diff import Change as DiffChange
from conveyor.reports.diff import PackageVersion, upstream_commits
from conveyor.store.database import Database
from conveyor.store.models import Bisection, BisectStep, CIVoteAggregate

__all__ = [
    "BisectError",
    "BisectionRunning",
    "BisectionView",
    "StepView",
    "UnknownBisection",
    "advance_after_vote",
    "bisection_status",
    "list_bisections",
    "reset_bisection",
    "start_bisection",
]

HASH_LENGTH = 32  # as DLRN's aggregate hashes: tools that expect an MD5's length take it
_LIST_LIMIT = 100


class UnknownBisection(BisectError):
    status = 404


class BisectionRunning(BisectError):
    status = 409


def check_job(job: str) -> str:
    """A CI job's name, as it names its votes (letters, digits, `.`, `_`, `-`)."""
    try:
        return check_label(job)
    except InvalidName:
        raise BisectError(
            f"invalid job name {job[:300]!r}: use letters, digits, '.', '_' and '-'"
        ) from None


def step_hash(bisection_id: int, content: Content) -> str:
    text = "\n".join([str(bisection_id), *sorted(f"{p} {b}" for p, b in content)])
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class StepView:
    number: int
    kind: str
    position: int
    hash: str
    url: str
    builds: dict[str, str]
    created: int
    verdict: bool | None
    voted: int | None
    vote_url: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "position": self.position,
            "hash": self.hash,
            "url": self.url,
            "repo_file": f"{self.url}/delorean.repo",
            "packages": len(self.builds),
            "created": self.created,
            "verdict": self.verdict,
            "voted": self.voted,
            "vote_url": self.vote_url,
        }


@dataclass(frozen=True)
class BisectionView:
    id: int
    job_id: str
    good_ref: str
    good_path: str
    bad_ref: str
    bad_path: str
    state: str
    created: int
    updated: int
    user: str | None
    changes: list[dict[str, Any]]
    phase: str
    suspects: int
    bound: int
    conclusion: dict[str, Any] | None
    steps: list[StepView] = field(default_factory=list)

    @property
    def pending(self) -> StepView | None:
        """The step waiting for CI's vote, while the bisection runs."""
        if self.state != RUNNING or not self.steps or self.steps[-1].verdict is not None:
            return None
        return self.steps[-1]

    def as_json(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "id": self.id,
            "job_id": self.job_id,
            "good": {"ref": self.good_ref, "path": self.good_path},
            "bad": {"ref": self.bad_ref, "path": self.bad_path},
            "state": self.state,
            "created": self.created,
            "updated": self.updated,
            "user": self.user,
            "phase": self.phase,
            "suspects": self.suspects,
            "step_bound": self.bound,
            "changes": self.changes,
            "steps": [s.as_json() for s in self.steps],
            "pending": pending.as_json() if pending else None,
            "conclusion": self.conclusion,
        }


# -- reading ---------------------------------------------------------------------------------


def _load(row: Bisection) -> Bisectable:
    return Bisectable.from_json(json.loads(row.plan))


def _steps(session: Session, bisection_id: int) -> list[BisectStep]:
    query = select(BisectStep).where(BisectStep.bisection_id == bisection_id)
    return list(session.scalars(query.order_by(BisectStep.number)))


def _content(step: BisectStep) -> Content:
    return content_key(json.loads(step.builds))


def _verdicts(steps: Sequence[BisectStep]) -> dict[Content, bool]:
    return {_content(s): s.verdict for s in steps if s.verdict is not None}


def _changes(bisectable: Bisectable) -> list[dict[str, Any]]:
    def nvr(key: str | None) -> str | None:
        return bisectable.builds[key].nvr if key else None

    return [
        {
            "package": c.package,
            "good": nvr(c.good),
            "bad": nvr(c.bad),
            "builds_between": len(c.between),
        }
        for c in bisectable.plan.changes
    ]


def _bound(bisectable: Bisectable) -> int:
    most = max(len(c.between) + 1 for c in bisectable.plan.changes)
    return step_bound(len(bisectable.plan.changes), most)


def _view(config: Config, row: Bisection, steps: Sequence[BisectStep]) -> BisectionView:
    bisectable = _load(row)
    progress = decide(bisectable.plan, _verdicts(steps))
    return BisectionView(
        id=row.id,
        job_id=row.job_id,
        good_ref=row.good_ref,
        good_path=row.good_path,
        bad_ref=row.bad_ref,
        bad_path=row.bad_path,
        state=row.state,
        created=row.created,
        updated=row.updated,
        user=row.user,
        changes=_changes(bisectable),
        phase=progress.phase.value,
        suspects=progress.suspects if row.state == RUNNING else 0,
        bound=_bound(bisectable),
        conclusion=json.loads(row.conclusion) if row.conclusion else None,
        steps=[
            StepView(
                number=s.number,
                kind=s.kind,
                position=s.position,
                hash=s.hash,
                url=config.url_of(step_relpath(s.hash)),
                builds=json.loads(s.builds),
                created=s.created,
                verdict=s.verdict,
                voted=s.voted,
                vote_url=s.vote_url,
            )
            for s in steps
        ],
    )


def _row(session: Session, bisection_id: int | None) -> Bisection:
    """The bisection `bisection_id`, or the newest one; UnknownBisection when there is none."""
    query = select(Bisection)
    if bisection_id is None:
        query = query.order_by(Bisection.id.desc()).limit(1)
    else:
        query = query.where(Bisection.id == bisection_id)
    row = session.scalars(query).first()
    if row is None:
        raise UnknownBisection(
            "no bisection yet" if bisection_id is None else f"no bisection {bisection_id}"
        )
    return row


def list_bisections(config: Config, db: Database) -> list[BisectionView]:
    """The newest bisections first, with their steps (two queries, not one per bisection)."""
    with db.reader() as session:
        query = select(Bisection).order_by(Bisection.id.desc()).limit(_LIST_LIMIT)
        rows = list(session.scalars(query))
        steps: dict[int, list[BisectStep]] = {row.id: [] for row in rows}
        found = select(BisectStep).where(BisectStep.bisection_id.in_(list(steps)))
        for step in session.scalars(found.order_by(BisectStep.number)):
            steps[step.bisection_id].append(step)
        return [_view(config, row, steps[row.id]) for row in rows]


# -- advancing -------------------------------------------------------------------------------


def _record_verdicts(session: Session, job_id: str, steps: Sequence[BisectStep]) -> None:
    """A waiting step's verdict is the first finished vote of the job on its hash."""
    waiting = {s.hash: s for s in steps if s.verdict is None}
    if not waiting:
        return
    votes = session.scalars(
        select(CIVoteAggregate)
        .where(
            CIVoteAggregate.ref_hash.in_(list(waiting)),
            CIVoteAggregate.ci_name == job_id,
            CIVoteAggregate.ci_in_progress.is_not(True),
        )
        .order_by(CIVoteAggregate.id)
    )
    for vote in votes:
        step = waiting.get(vote.ref_hash)
        if step is not None and step.verdict is None:
            step.verdict = bool(vote.ci_vote)
            step.voted = vote.timestamp
            step.vote_url = vote.ci_url


def _versions(bisectable: Bisectable, content: dict[str, str]) -> str:
    rows = []
    for package in sorted(content):
        info = bisectable.builds[content[package]]
        rows.append(
            formats.VersionsRow(
                project=package,
                source_repo=info.source_repo or "",
                source_sha=info.commit_hash,
                dist_repo=info.dist_repo or "",
                dist_sha=info.distro_hash,
                status="SUCCESS",
                last_success=info.dt_build,
                component=info.component,
                extended_sha=info.extended_hash,
                nvr=info.nvr,
            )
        )
    return formats.versions_csv(rows)


def publish_step(
    config: Config,
    store: RepoStore,
    bisectable: Bisectable,
    row: Bisection,
    content: dict[str, str],
    hash_: str,
) -> None:
    relpath = step_relpath(hash_)
    builds = [bisectable.builds[key] for _, key in sorted(content.items())]
    reponame = config.reponame
    files = {
        f"{reponame}.repo": formats.repo_file(
            reponame, f"bisect-{row.id}", hash_, config.url_of(relpath), None
        ),
        f"{reponame}.repo.md5": hash_,
        "versions.csv": _versions(bisectable, content),
    }
    store.compose(relpath, [LinkedBuild(PurePosixPath(b.path), b.files) for b in builds], files)
    pointer = pointer_relpath(row.id)
    store.move_label(pointer.name, relpath, pointer.parent)


def _drop_pointer(config: Config, bisection_id: int) -> None:
    (config.repos_dir / pointer_relpath(bisection_id)).unlink(missing_ok=True)


def _build_json(config: Config, info: BuildInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return info.as_json() | {
        "repo_url": config.url_of(info.path),
        "log_url": config.url_of(f"{info.path}/rpmbuild.log"),
        "commit_url": commit_url(info.source_repo, info.commit_hash),
    }


def _version(info: BuildInfo) -> PackageVersion:
    return PackageVersion(
        package=info.package,
        nvr=info.nvr,
        commit_hash=info.commit_hash,
        distro_hash=info.distro_hash,
        extended_hash=info.extended_hash,
        status="SUCCESS",
        component=info.component,
        source_repo=info.source_repo,
        last_success=info.dt_build,
        dist_repo=info.dist_repo,
    )


def _conclusion_json(
    config: Config, bisectable: Bisectable, conclusion: Conclusion
) -> dict[str, Any]:
    found: dict[str, Any] = {"outcome": conclusion.outcome.value, "reason": conclusion.reason}
    if conclusion.outcome is not Outcome.FOUND or conclusion.change is None:
        return found
    change = bisectable.plan.changes[conclusion.change]
    good = bisectable.builds.get(conclusion.last_good or "")
    bad = bisectable.builds.get(conclusion.culprit or "")
    commits: list[dict[str, Any]] = []
    state = "none"
    if good is not None and bad is not None:
        between = DiffChange(change.package, _version(good), _version(bad))
        if between.old.commit_hash == between.new.commit_hash:
            between.commits_state = "same-source"
        upstream_commits(config.datadir, [between])
        commits, state = [c.as_json() for c in between.commits], between.commits_state
    shown = (bad.nvr or bad.commit_hash) if bad else "its removal"
    before = (good.nvr or good.commit_hash) if good else "its absence"
    reason = f"{change.package}: {shown} fails where {before} passes"
    if good is not None and bad is not None and good.distro_hash != bad.distro_hash:
        # The packaging changed too; with the same upstream commit it is the only change,
        # and a trial's reader saw two identical commits and no culprit.
        same = "the same upstream commit, " if good.commit_hash == bad.commit_hash else ""
        old, new = (good.distro_hash or "-")[:12], (bad.distro_hash or "-")[:12]
        reason += f" ({same}distgit {old} -> {new})"
    return found | {
        "reason": reason,
        "package": change.package,
        "last_good": _build_json(config, good),
        "culprit": _build_json(config, bad),
        "commits": commits,
        "commits_state": state,
    }


def _conclude(config: Config, row: Bisection, bisectable: Bisectable, found: Conclusion) -> None:
    row.state = CONCLUDED
    row.conclusion = json.dumps(_conclusion_json(config, bisectable, found))
    _drop_pointer(config, row.id)


def _advance(config: Config, store: RepoStore, session: Session, row: Bisection) -> None:
    """Record the votes that arrived, then publish the next step or conclude. Idempotent:
    a step already published and waiting is left waiting."""
    if row.state != RUNNING:
        return
    steps = _steps(session, row.id)
    _record_verdicts(session, row.job_id, steps)
    bisectable = _load(row)
    progress: Progress = decide(bisectable.plan, _verdicts(steps))
    row.updated = int(time.time())
    if progress.conclusion is not None:
        _conclude(config, row, bisectable, progress.conclusion)
        return
    step = progress.step
    assert step is not None  # decide answers one or the other
    if any(s.verdict is None and _content(s) == step.key for s in steps):
        return  # published, waiting for its vote
    hash_ = step_hash(row.id, step.key)
    content = dict(step.content)
    try:
        publish_step(config, store, bisectable, row, content, hash_)
    except (OSError, PublishError, InvalidName) as exc:
        unavailable = Conclusion(
            Outcome.UNAVAILABLE, f"cannot compose the repository of the next step: {exc}"
        )
        _conclude(config, row, bisectable, unavailable)
        return
    session.add(
        BisectStep(
            bisection_id=row.id,
            number=len(steps) + 1,
            hash=hash_,
            kind=step.kind.value,
            position=step.position,
            builds=json.dumps(content, sort_keys=True),
            created=row.updated,
        )
    )


def _advanced(config: Config, db: Database, bisection_id: int | None) -> BisectionView:
    store = RepoStore.of(config)
    with publish_lock(config), db.transaction() as session:
        row = _row(session, bisection_id)
        _advance(config, store, session, row)
        session.flush()
        return _view(config, row, _steps(session, row.id))


# -- the operations --------------------------------------------------------------------------


def start_bisection(
    config: Config, db: Database, good: str, bad: str, job_id: str, user: str | None
) -> BisectionView:
    """Plan the bisection of `job_id` from `good` to `bad` and publish its first step.
    BisectError (nothing written) for bad input, BisectionRunning while one of that job runs."""
    job_id = check_job(job_id)
    store = RepoStore.of(config)
    with publish_lock(config), db.transaction() as session:
        running = session.scalars(
            select(Bisection).where(Bisection.job_id == job_id, Bisection.state == RUNNING)
        ).first()
        if running is not None:
            raise BisectionRunning(
                f"bisection {running.id} of job {job_id} is running "
                f"({running.good_ref} → {running.bad_ref}); `conveyor bisect reset "
                f"{running.id}` ends it"
            )
        bisectable, good_path, bad_path = plan_bisection(
            session, config.repos_dir, store.xml_cache, good, bad
        )
        now = int(time.time())
        row = Bisection(
            job_id=job_id,
            good_ref=good,
            good_path=good_path,
            bad_ref=bad,
            bad_path=bad_path,
            state=RUNNING,
            plan=json.dumps(bisectable.as_json(), sort_keys=True),
            created=now,
            updated=now,
            user=user,
        )
        session.add(row)
        session.flush()  # the id the step hashes start from
        _advance(config, store, session, row)
        session.flush()
        return _view(config, row, _steps(session, row.id))


def bisection_status(
    config: Config, db: Database, bisection_id: int | None = None, advance: bool = True
) -> BisectionView:
    """The bisection (the newest without an id); with `advance`, votes that arrived while
    nothing advanced it count first."""
    if advance:
        with db.reader() as session:
            row = _row(session, bisection_id)
            running, found_id = row.state == RUNNING, row.id
        if running:
            return _advanced(config, db, found_id)
    with db.reader() as session:
        row = _row(session, bisection_id)
        return _view(config, row, _steps(session, row.id))


def reset_bisection(config: Config, db: Database, bisection_id: int | None) -> BisectionView:
    """End a bisection without a conclusion. Its step repositories stay: they are immutable
    and its votes name them (retention removes them with the rest of the tree's past)."""
    with publish_lock(config), db.transaction() as session:
        row = _row(session, bisection_id)
        if row.state == RUNNING:
            row.state = RESET
            row.updated = int(time.time())
            row.conclusion = json.dumps({"outcome": RESET, "reason": "reset before a conclusion"})
            _drop_pointer(config, row.id)
        session.flush()
        return _view(config, row, _steps(session, row.id))


def advance_after_vote(config: Config, db: Database, aggregate_hash: str) -> None:
    """After a vote on `aggregate_hash`: the running bisection it is a step of advances.
    A vote on anything else costs one indexed query."""
    with db.reader() as session:
        found = session.scalar(
            select(Bisection.id)
            .join(BisectStep, BisectStep.bisection_id == Bisection.id)
            .where(BisectStep.hash == aggregate_hash, Bisection.state == RUNNING)
            .limit(1)
        )
    if found is not None:
        _advanced(config, db, found)
