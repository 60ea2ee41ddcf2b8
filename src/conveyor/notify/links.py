"""Web links to a commit on the forge that hosts a repository, for people reading a message.

Only forges whose commit page path is known get a link; for anything else (file://, a private
git server) the message shows the bare hash, which is still unambiguous.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scp-like git addresses: git@github.com:org/repo.git
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\s][^\s]*)$")
_WEB_SCHEMES = {"http", "https", "git", "ssh", "git+ssh"}
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._~/-]+$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def _host_and_path(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if parts.scheme:
        if parts.scheme.lower() not in _WEB_SCHEMES or not parts.hostname:
            return None
        return parts.hostname.lower(), parts.path
    match = _SCP_LIKE.match(url)
    if match is None:
        return None
    return match["host"].lower(), "/" + match["path"]


def _commit_path(host: str) -> str | None:
    if host in {"github.com", "www.github.com", "opendev.org"}:
        return "commit"
    if host == "gitlab.com" or host.startswith("gitlab."):
        return "-/commit"
    return None


def commit_url(repository: str, sha: str) -> str | None:
    """The forge's page of commit `sha` in `repository` (any git URL form), or None."""
    found = _host_and_path(repository.strip())
    if found is None or not _SHA.match(sha):
        return None
    host, path = found
    section = _commit_path(host)
    path = path.strip("/").removesuffix(".git")
    # The path goes into a link in a mail: anything odd means we'd rather show the hash.
    if section is None or path.count("/") < 1 or not _SAFE_PATH.match(path) or ".." in path:
        return None
    return f"https://{host}/{path}/{section}/{sha}"
