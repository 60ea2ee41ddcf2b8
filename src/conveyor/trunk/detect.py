"""Following upstream: refresh every mirror, then list the commits that need a build."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.config import Config
from conveyor.domain.branches import BranchNotFound, resolve_distgit_ref, resolve_source_ref
from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.sources import git
from conveyor.store.database import Database
from conveyor.store.models import Commit
from conveyor.store.queries import already_built, last_processed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    target: BuildTarget
    reason: str


async def _refs(
    mirrors: Mirrors, target: BuildTarget, timeout: float, refresh: bool
) -> tuple[git.RemoteRefs, git.RemoteRefs]:
    if not refresh:
        for mirror in (mirrors.upstream, mirrors.distgit):
            if not (mirror / "HEAD").exists():
                raise git.GitError(f"{mirror} has not been fetched yet")
        up, dist = await asyncio.gather(
            git.mirror_refs(mirrors.upstream, timeout), git.mirror_refs(mirrors.distgit, timeout)
        )
        return up, dist
    (up_refs, _), (dist_refs, _) = await asyncio.gather(
        git.refresh_mirror(mirrors.upstream, target.upstream, timeout),
        git.refresh_mirror(mirrors.distgit, target.distgit, timeout),
    )
    return up_refs, dist_refs


async def _candidates(
    config: Config,
    db: Database,
    target: BuildTarget,
    last: Commit | None,
    head_only: bool,
    refresh: bool,
) -> list[BuildJob]:
    mirrors = Mirrors.under(config.datadir, target.name)
    timeout = config.git_timeout
    up_refs, dist_refs = await _refs(mirrors, target, timeout, refresh)
    nonfallback = config.nonfallback_branches
    source = resolve_source_ref(
        target.source_branch, up_refs.heads, up_refs.tags, config.fallback_to_master, nonfallback
    )
    distro = resolve_distgit_ref(
        target.distro_branch, dist_refs.heads, nonfallback, config.fallback_to_master
    )
    if source.fallback:
        log.warning(
            "%s: branch %s missing, using %s", target.name, target.source_branch, source.name
        )
    if last is not None and (last.commit_hash, last.distro_hash) == (source.sha, distro.sha):
        return []  # the common case: nothing new, decided without running git again
    distro_commit = await git.commit_info(mirrors.distgit, distro.sha, timeout)
    head = await git.commit_info(mirrors.upstream, source.sha, timeout)
    commits = [head]
    continues = (
        not head_only
        and last is not None
        and last.commit_branch == source.name
        and await git.is_ancestor(mirrors.upstream, last.commit_hash, head.commit_hash, timeout)
    )
    if continues and last is not None:
        since = await git.first_parent_since(
            mirrors.upstream, last.commit_hash, head.commit_hash, timeout
        )
        # The last built commit stays a candidate: a distgit change rebuilds it.
        previous = await git.commit_info(mirrors.upstream, last.commit_hash, timeout)
        commits = [previous, *since]
    # Otherwise (first build, branch switch, rewritten history): the new head only.
    jobs = []
    with db.reader() as session:
        for commit in commits:
            if already_built(
                session, target.name, commit.commit_hash, distro_commit.commit_hash, None
            ):
                continue
            jobs.append(
                BuildJob(
                    target=target,
                    mirrors=mirrors,
                    commit_hash=commit.commit_hash,
                    dt_commit=commit.commit_time,
                    commit_branch=source.name,
                    distro_hash=distro_commit.commit_hash,
                    dt_distro=distro_commit.commit_time,
                )
            )
    return jobs


async def detect_changes(
    config: Config,
    db: Database,
    targets: Sequence[BuildTarget],
    head_only: bool,
    refresh: bool = True,
) -> tuple[list[BuildJob], list[Skipped]]:
    """Jobs to build (per package oldest first) and packages skipped this cycle.

    A repository that cannot be reached or lacks its branch is skipped, not failed: it is
    tried again next cycle. Without `refresh` nothing is fetched: the mirrors' refs as last
    fetched stand for the remotes' (a dry run beside a running builder), and a package whose
    mirrors were never fetched is skipped.
    """
    limit = asyncio.Semaphore(config.git_jobs)
    with db.reader() as session:
        last = last_processed(session, [t.name for t in targets])

    async def one(target: BuildTarget) -> list[BuildJob] | Skipped:
        async with limit:
            try:
                return await _candidates(
                    config, db, target, last.get(target.name), head_only, refresh
                )
            except (git.GitError, BranchNotFound) as exc:
                log.warning("%s: skipped this cycle: %s", target.name, exc)
                return Skipped(target, str(exc))

    jobs: list[BuildJob] = []
    skipped: list[Skipped] = []
    for outcome in await asyncio.gather(*(one(t) for t in targets)):
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
        else:
            jobs.extend(outcome)
    return jobs, skipped
