"""The git adapter: every git call conveyor makes goes through here.

Checkouts are bare mirrors: builds read trees with `git archive`, so there is no work tree to
reset or clean, and a local edit can never leak into a build. Fetching is by URL with forced
refspecs, so a changed remote URL or rewritten upstream history needs no manual cleanup.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Git must not read the caller's config (hooks, url rewrites, credential helpers) nor prompt.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ASKPASS": "/bin/true",
    "LC_ALL": "C",
}
_STATE_FILE = "conveyor-source.json"
_FETCH_REFSPECS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")


class GitError(Exception):
    """A git command failed; the message names the repository and git's own words."""


@functools.cache
def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_GIT_ENV)
    return env


# Options before git's command that take a value (`git -C DIR push ...`).
_VALUED_OPTIONS = frozenset({"-C", "-c", "--git-dir", "--work-tree"})


def _command(args: list[str]) -> tuple[str, str | None]:
    """git's command in `args` (past the options before it), and the -C folder if any."""
    index, folder = 0, None
    while index < len(args) and args[index].startswith("-"):
        if args[index] == "-C" and index + 1 < len(args):
            folder = args[index + 1]
        index += 2 if args[index] in _VALUED_OPTIONS else 1
    return (args[index] if index < len(args) else "command"), folder


def _failure(args: list[str], where: str | None, output: str) -> GitError:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    # The server's own reason (a hook's message, a rejected ref) comes before git's summary.
    reasons = [line for line in lines[:-1] if line.startswith("remote:") or "rejected" in line]
    detail = "; ".join([*reasons[-3:], lines[-1]]) if lines else "no output"
    command, folder = _command(args)
    return GitError(f"git {command} failed for {where or folder or args[-1]}: {detail}")


def _run_git_bytes(
    args: list[str], git_dir: Path | None, timeout: float, stdin: bytes = b""
) -> bytes:
    cmd = ["git", *(["--git-dir", str(git_dir)] if git_dir else []), *args]
    try:
        done = subprocess.run(
            cmd, input=stdin, capture_output=True, env=_environment(), timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f} s for {git_dir}") from None
    if done.returncode != 0:
        where = str(git_dir) if git_dir else None
        raise _failure(args, where, done.stderr.decode(errors="replace"))
    return done.stdout


def run_git(args: list[str], git_dir: Path | None = None, timeout: float = 600.0) -> str:
    """Run git synchronously (used from build threads); returns stdout. Commit messages and
    file names are not always UTF-8: undecodable bytes are replaced, never an error."""
    return _run_git_bytes(args, git_dir, timeout).decode(errors="replace")


async def run_git_async(
    args: list[str], git_dir: Path | None = None, timeout: float = 600.0
) -> str:
    cmd = ["git", *(["--git-dir", str(git_dir)] if git_dir else []), *args]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_environment(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise GitError(f"git {args[0]} timed out after {timeout:.0f} s for {git_dir}") from None
    if proc.returncode != 0:
        raise _failure(args, str(git_dir or args[-1]), err.decode(errors="replace"))
    return out.decode(errors="replace")


@dataclass(frozen=True)
class RemoteRefs:
    """What `git ls-remote` says: branch and tag names to commit hashes (tags peeled)."""

    heads: dict[str, str]
    tags: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> RemoteRefs:
        heads: dict[str, str] = {}
        tags: dict[str, str] = {}
        for line in text.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                heads[ref[len("refs/heads/") :]] = sha
            elif ref.startswith("refs/tags/"):
                name = ref[len("refs/tags/") :]
                if name.endswith("^{}"):
                    tags[name[:-3]] = sha  # the peeled commit wins over the tag object
                else:
                    tags.setdefault(name, sha)
        return cls(heads, tags)


async def ls_remote(url: str, timeout: float) -> RemoteRefs:
    text = await run_git_async(["ls-remote", "--heads", "--tags", url], timeout=timeout)
    return RemoteRefs.parse(text)


@dataclass(frozen=True)
class MirrorState:
    """What was last fetched into a mirror, kept beside it to skip fetches with nothing new."""

    url: str
    refs_digest: str

    @classmethod
    def read(cls, git_dir: Path) -> MirrorState | None:
        try:
            data = json.loads((git_dir / _STATE_FILE).read_text(encoding="utf-8"))
            return cls(url=str(data["url"]), refs_digest=str(data["refs_digest"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, git_dir: Path) -> None:
        tmp = git_dir / (_STATE_FILE + ".tmp")
        tmp.write_text(json.dumps({"url": self.url, "refs_digest": self.refs_digest}))
        tmp.replace(git_dir / _STATE_FILE)


def refs_digest(refs: RemoteRefs) -> str:
    return json.dumps([sorted(refs.heads.items()), sorted(refs.tags.items())])


async def refresh_mirror(git_dir: Path, url: str, timeout: float) -> tuple[RemoteRefs, bool]:
    """Bring the mirror at `git_dir` up to date with `url`.

    Returns the remote refs and whether anything was fetched. One `ls-remote` decides: when the
    remote's refs equal those of the last fetch from the same URL, nothing is fetched.
    """
    refs = await ls_remote(url, timeout)
    digest = refs_digest(refs)
    state = MirrorState.read(git_dir)
    if state is not None and state.url == url and state.refs_digest == digest:
        return refs, False
    if not (git_dir / "HEAD").exists():
        git_dir.mkdir(parents=True, exist_ok=True)
        await run_git_async(["init", "--bare", "--quiet", str(git_dir)], timeout=timeout)
    await run_git_async(
        ["fetch", "--quiet", "--prune", "--force", "--no-write-fetch-head", url, *_FETCH_REFSPECS],
        git_dir=git_dir,
        timeout=timeout,
    )
    MirrorState(url, digest).write(git_dir)
    return refs, True


@dataclass(frozen=True)
class GitCommit:
    commit_hash: str
    commit_time: int
    subject: str


def _parse_log(text: str) -> list[GitCommit]:
    commits = []
    for line in text.splitlines():
        sha, ctime, subject = line.split("\x00", 2)
        commits.append(GitCommit(sha, int(ctime), subject))
    return commits


_LOG_FORMAT = "--format=%H%x00%ct%x00%s"


async def commit_info(git_dir: Path, rev: str, timeout: float) -> GitCommit:
    text = await run_git_async(["log", "-1", _LOG_FORMAT, rev, "--"], git_dir, timeout)
    return _parse_log(text)[0]


async def is_ancestor(git_dir: Path, ancestor: str, rev: str, timeout: float) -> bool:
    try:
        await run_git_async(["merge-base", "--is-ancestor", ancestor, rev], git_dir, timeout)
    except GitError:
        return False
    return True


async def first_parent_since(
    git_dir: Path, since: str, rev: str, timeout: float
) -> list[GitCommit]:
    """Commits after `since` up to `rev` on the first-parent line, oldest first."""
    text = await run_git_async(
        ["log", "--first-parent", "--reverse", _LOG_FORMAT, f"{since}..{rev}", "--"],
        git_dir,
        timeout,
    )
    return _parse_log(text)


# Tags that say nothing about the version (DLRN deletes them before describing).
_IGNORED_TAG_PATTERNS = ("private-*", "*-em", "*-eol", "*-eom")


def describe(git_dir: Path, rev: str, timeout: float) -> tuple[str | None, int]:
    """The nearest tag reachable from `rev` (`git describe --tags`, DLRN's ignored tags
    excluded) and the number of commits since it."""
    excludes = [f"--exclude={p}" for p in _IGNORED_TAG_PATTERNS]
    try:
        text = run_git(["describe", "--tags", "--long", *excludes, rev], git_dir, timeout)
    except GitError as exc:
        if "No names found" not in str(exc) and "No tags can describe" not in str(exc):
            raise
        count = run_git(["rev-list", "--count", "--first-parent", rev], git_dir, timeout)
        return None, int(count.strip())
    tag, distance, _sha = text.strip().rsplit("-", 2)
    return tag, int(distance)


_TAG_DECORATION = "tag: refs/tags/"


@dataclass(frozen=True)
class LogTags:
    """The tags `git log <rev>` shows, in its own order (commit dates, not topology).

    `tagged` holds (position, tag names) for each listed commit that carries tags, position 0
    being `rev` itself; `commits` is how many commits the log lists."""

    commits: int
    tagged: tuple[tuple[int, tuple[str, ...]], ...]


def log_tags(git_dir: Path, rev: str, timeout: float) -> LogTags:
    """The walk pbr makes (`git log --decorate=full`), reduced to tag decorations."""
    text = run_git(
        ["log", "--decorate=full", "--decorate-refs=refs/tags/", "--format=%H%x00%D", rev, "--"],
        git_dir,
        timeout,
    )
    tagged = []
    lines = text.splitlines()
    for position, line in enumerate(lines):
        _sha, _, decorations = line.partition("\x00")
        names = tuple(
            entry[len(_TAG_DECORATION) :]
            for entry in decorations.split(", ")
            if entry.startswith(_TAG_DECORATION)
        )
        if names:
            tagged.append((position, names))
    return LogTags(len(lines), tuple(tagged))


def messages(git_dir: Path, rev: str, since_tag: str | None, timeout: float) -> str:
    """The raw messages of the commits `git log` lists from `rev`, excluding those reachable
    from tag `since_tag` when it is given (pbr reads `Sem-Ver:` footers there)."""
    spec = f"refs/tags/{since_tag}..{rev}" if since_tag is not None else rev
    return run_git(["log", "--format=%B", spec, "--"], git_dir, timeout)


def read_files(
    git_dir: Path, rev: str, paths: Sequence[str], timeout: float
) -> dict[str, bytes | None]:
    """The contents of `paths` (relative to the top of the tree) at `rev`, in one git call;
    None for a path that is absent or not a file. Symbolic links inside the tree are
    followed, as a reader of a checkout would follow them."""
    request = "".join(f"{rev}:{path}\n" for path in paths).encode()
    out = _run_git_bytes(["cat-file", "--batch", "--follow-symlinks"], git_dir, timeout, request)
    found: dict[str, bytes | None] = {}
    at = 0
    for path in paths:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if header[-1] in (b"missing", b"ambiguous"):
            found[path] = None
            continue
        # "<oid> <type> <size>", or "symlink|dangling|loop|notdir <size>" for a link that
        # leaves the tree; either way <size> bytes and a newline follow.
        size = int(header[-1] if len(header) == 3 else header[1])
        body = out[at : at + size]
        at += size + 1
        found[path] = body if len(header) == 3 and header[1] == b"blob" else None
    return found


def short_hash(git_dir: Path, rev: str, timeout: float) -> str:
    return run_git(["rev-parse", "--short=7", rev], git_dir, timeout).strip()


def archive(
    git_dir: Path,
    rev: str,
    prefix: str,
    output: Path,
    timeout: float,
    extra_files: Mapping[str, str] | None = None,
) -> None:
    """A tar.gz of the tree at `rev`, every path under `prefix`, with `extra_files` (name:
    text) added under `prefix` too, as an sdist adds its PKG-INFO."""
    # Given before --prefix, each extra file's path is the whole path in every git version:
    # git 2.39 does not apply --prefix to --add-virtual-file, later versions apply the last
    # --prefix given before it.
    extras = [
        f"--add-virtual-file={prefix}{name}:{text}" for name, text in (extra_files or {}).items()
    ]
    run_git(
        ["archive", "--format=tar.gz", *extras, f"--prefix={prefix}", "-o", str(output), rev],
        git_dir,
        timeout,
    )


def archive_tree(git_dir: Path, treeish: str, output: Path, timeout: float) -> None:
    """A plain tar of `treeish` (a commit, or `commit:subdir`)."""
    run_git(["archive", "--format=tar", "-o", str(output), treeish], git_dir, timeout)


async def mirror_refs(git_dir: Path, timeout: float) -> RemoteRefs:
    """The refs of a mirror as last fetched, in `ls-remote`'s terms (branches by name, tags
    peeled), for planning without fetching."""
    text = await run_git_async(
        [
            "for-each-ref",
            "--format=%(objectname)%09%(refname)%09%(*objectname)",
            "refs/remotes/origin/",
            "refs/tags/",
        ],
        git_dir,
        timeout,
    )
    lines = []
    for line in text.splitlines():
        sha, ref, peeled = line.split("\t")
        if ref.startswith("refs/remotes/origin/"):
            lines.append(f"{sha}\trefs/heads/{ref[len('refs/remotes/origin/') :]}")
        else:
            lines.append(f"{peeled or sha}\t{ref}")
    return RemoteRefs.parse("\n".join(lines))
