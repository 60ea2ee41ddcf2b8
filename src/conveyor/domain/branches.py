"""Which ref to build when the configured branch is missing (dlrn.md section 6)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class BranchNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ResolvedRef:
    name: str  # the branch, tag or hash actually used (commits.commit_branch)
    sha: str
    fallback: bool  # True when `name` is not what was asked for


def _source_chain(wanted: str, fallback_to_master: bool, nonfallback: Sequence[str]) -> list[str]:
    chain = [wanted]
    if any(re.search(pattern, wanted) for pattern in nonfallback):
        # An upstream that renamed its default branch is not a missing branch.
        if wanted == "master":
            chain.append("main")
        return chain
    short = wanted.removeprefix("stable/")
    chain += [f"unmaintained/{short}", f"{short}-eol"]
    if fallback_to_master:
        chain += ["master", "main"]
    return chain


def _lookup(
    chain: Sequence[str], heads: Mapping[str, str], tags: Mapping[str, str]
) -> ResolvedRef | None:
    for index, name in enumerate(chain):
        sha = heads.get(name) or tags.get(name)
        if sha:
            return ResolvedRef(name, sha, fallback=index > 0)
    return None


def resolve_source_ref(
    wanted: str,
    heads: Mapping[str, str],
    tags: Mapping[str, str],
    fallback_to_master: bool,
    nonfallback: Sequence[str],
) -> ResolvedRef:
    """A branch, then a tag of that name; a full commit hash pins exactly that commit."""
    if _FULL_SHA.fullmatch(wanted):
        return ResolvedRef(wanted, wanted, fallback=False)
    found = _lookup(_source_chain(wanted, fallback_to_master, nonfallback), heads, tags)
    if found is None:
        raise BranchNotFound(f"source branch {wanted!r} not found (nor any fallback)")
    return found


def resolve_distgit_ref(
    wanted: str,
    heads: Mapping[str, str],
    nonfallback: Sequence[str],
    fallback_to_master: bool = True,
) -> ResolvedRef:
    """The distgit branch to build: `wanted`, or for a `*-rdo` branch not there yet, DLRN's
    `rpm-master`, unless `fallback_to_master` is off (a stable builder must not package its
    release with the master's spec)."""
    chain = [wanted]
    if (
        fallback_to_master
        and wanted.endswith("-rdo")
        and not any(re.search(p, wanted) for p in nonfallback)
    ):
        chain.append("rpm-master")
    found = _lookup(chain, heads, {})
    if found is None:
        raise BranchNotFound(f"distgit branch {wanted!r} not found")
    return found
