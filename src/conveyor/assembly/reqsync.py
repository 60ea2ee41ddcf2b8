"""Requirements of a release build: the spec's Requires against the upstream release's
requirements.txt (`reqcheck`), checked before the build, and with `sync` made to follow it
as `rdopkg reqcheck -a` does: the spec edited, committed to the release's distgit branch
and pushed, and the build made from that commit, so the built SRPM is a distgit commit.

A distgit that refuses the push stops that build with the reason (the sync is a change to
review, never a local-only edit); without `sync`, a difference is reported with the build.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from conveyor.builders.spec import SpecError, choose_spec
from conveyor.config import Config
from conveyor.domain.builds import BuildJob
from conveyor.sources import git
from conveyor.uc.errors import UCError
from conveyor.uc.reqcheck import (
    CheckResult,
    check_requirements,
    git_requirements,
    load_reqcheck_inputs,
)
from conveyor.uc.specsync import autosync

__all__ = ["RequirementsCheck", "check_requirements_of"]

# Who signs the sync commit (a person reviews it in the distgit's history).
_IDENTITY = ["-c", "user.name=conveyor", "-c", "user.email=conveyor@localhost"]


class RequirementsSyncError(Exception):
    """The requirements differ and could not be synced; the message says why."""


@dataclass(frozen=True)
class RequirementsCheck:
    state: str  # in-sync, differs (reported), synced (committed and pushed), skipped
    detail: str
    job: BuildJob  # the job to build: from the sync commit when there is one


def _summary(result: CheckResult) -> str:
    parts = []
    for label, entries in (
        ("missing", result.missing),
        ("mismatch", result.mismatch),
        ("removed", result.removed),
    ):
        if entries:
            names = ", ".join(
                f"{e.name} {e.vers}".strip() if label != "removed" else e.name for e in entries
            )
            parts.append(f"{label}: {names}")
    return "; ".join(parts)


def check_requirements_of(
    config: Config, job: BuildJob, version: str, sync: bool
) -> RequirementsCheck:
    """The spec at the job's distgit commit against requirements.txt at its upstream tag."""
    upstream, distgit = job.mirrors.upstream, job.mirrors.distgit
    try:
        git_requirements(upstream, job.commit_hash)
    except UCError:
        return RequirementsCheck("skipped", f"no requirements.txt in {version}", job)
    work = Path(tempfile.mkdtemp(prefix="conveyor-reqsync-"))
    try:
        checkout = work / "distgit"
        timeout = config.git_timeout
        git.run_git(["clone", "-q", "--shared", "--no-checkout", str(distgit), str(checkout)])
        git.run_git(["-C", str(checkout), "checkout", "-q", job.distro_hash], timeout=timeout)
        try:
            name = choose_spec(job.target.name, (p.name for p in checkout.iterdir()))
        except SpecError as exc:
            return RequirementsCheck("skipped", str(exc), job)
        if not name.endswith(".spec"):
            return RequirementsCheck("skipped", f"{name} is a template: not synced", job)
        spec = checkout / name
        inputs = load_reqcheck_inputs(
            spec=spec, ref=job.commit_hash, upstream=upstream, requirements=None
        )
        result = check_requirements(*inputs)
        differences = _summary(result)
        if not differences:
            return RequirementsCheck("in-sync", f"Requires follow {version}'s", job)
        if not sync:
            return RequirementsCheck("differs", differences, job)
        changes = autosync(spec, result)
        message = f"Sync requirements with {version}\n\n" + "".join(f"{c}\n" for c in changes)
        git.run_git(["-C", str(checkout), *_IDENTITY, "commit", "-q", "-am", message])
        commit = git.run_git(["-C", str(checkout), "rev-parse", "HEAD"]).strip()
        when = int(git.run_git(["-C", str(checkout), "log", "-1", "--format=%ct"]).strip())
        branch = job.target.distro_branch
        try:
            git.run_git(
                [
                    "-C",
                    str(checkout),
                    "push",
                    "-q",
                    job.target.distgit,
                    f"HEAD:refs/heads/{branch}",
                ],
                timeout=timeout,
            )
        except git.GitError as exc:
            last = str(exc).strip().splitlines()[-1:] or ["push refused"]
            raise RequirementsSyncError(
                f"{job.target.name}: requirements differ from {version}'s ({differences}); "
                f"the sync commit could not be pushed to {branch}: {last[0]}"
            ) from None
        # The mirror learns the new commit, as the next fetch would.
        git.run_git(["fetch", "-q", str(checkout), f"HEAD:refs/remotes/origin/{branch}"], distgit)
        synced = replace(job, distro_hash=commit, dt_distro=when)
        return RequirementsCheck("synced", f"{differences} (commit {commit[:8]})", synced)
    except (UCError, git.GitError) as exc:
        raise RequirementsSyncError(f"{job.target.name}: requirements: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
