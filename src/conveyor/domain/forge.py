"""Where a commit can be seen on its forge: reports and notifications link every hash to it.

DLRN knows github.com, opendev.org and the old git.openstack.org cgit, and for any other host
glues the hash to the clone URL, which gives a dead link. conveyor also knows GitLab and gives
no link at all where it cannot build a real one (file://, unknown hosts): the bare hash is
still unambiguous.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# `git@github.com:org/repo.git`: scp-like syntax, which urlsplit does not understand.
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\s][^\s]*)$")
_FORGE_SCHEMES = frozenset({"http", "https", "git", "ssh", "git+ssh"})
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# At least `org/repo`: a forge has no commit page for anything shorter.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)+$")


def _host_and_path(upstream: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(upstream)
    except ValueError:
        return None
    if parts.scheme:
        if parts.scheme.lower() not in _FORGE_SCHEMES or not parts.hostname:
            return None
        return parts.hostname.lower().removeprefix("www."), parts.path
    scp = _SCP_LIKE.match(upstream)
    if scp is None:
        return None
    return scp["host"].lower().removeprefix("www."), "/" + scp["path"]


def commit_url(upstream: str | None, commit_hash: str | None) -> str | None:
    """The forge's page of `commit_hash` in `upstream`, or None when there is none to link."""
    if not upstream or not commit_hash or not _SHA.match(commit_hash):
        return None
    located = _host_and_path(upstream.strip())
    if located is None:
        return None
    host, raw_path = located
    repo = raw_path.strip("/").removesuffix(".git")
    # Anything odd in the path means no link rather than a link that goes somewhere else.
    if not _SAFE_PATH.match(repo) or ".." in repo.split("/"):
        return None
    path = "/" + repo
    if host in ("github.com", "opendev.org"):
        return f"https://{host}{path}/commit/{commit_hash}"
    if host == "gitlab.com" or host.startswith("gitlab."):
        return f"https://{host}{path}/-/commit/{commit_hash}"
    if host == "git.openstack.org":
        # Retired, but old metadata still names it; DLRN links its cgit this way.
        return f"http://{host}/cgit{path}/commit/?id={commit_hash}"
    return None
