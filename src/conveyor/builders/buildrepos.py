"""The repositories a build takes its BuildRequires from, as DLRN gives them to mock: the
builder's own `current` repository (a package built here may need another one built here),
then those of `deps_url` (RDO's delorean-deps.repo: what trunk does not build).

`deps_url` names a .repo file: a path, a file:/// URL or an http(s) URL. It is read once per
cycle, checked (every section has a baseurl, mirrorlist or metalink), and published beside
the repositories as `<reponame>-deps.repo`, since whoever installs from `delorean.repo`
needs it too. The drivers that install BuildRequires (`podman`, `mock`) see the same
repositories; local folders among them (`file:///...`) are mounted read-only into a
container under `/conveyor/repos/<n>`.
"""

from __future__ import annotations

import configparser
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from conveyor.domain.urls import is_http_url

__all__ = [
    "MAX_REPO_FILE_BYTES",
    "BuildRepos",
    "DepsError",
    "RepoSection",
    "deps_file_name",
    "load_build_repos",
    "parse_repo_file",
]

MAX_REPO_FILE_BYTES = 1 << 20
_LOCATIONS = ("baseurl", "mirrorlist", "metalink")
MOUNTS = PurePosixPath("/conveyor/repos")  # where a container sees the local repositories


class DepsError(Exception):
    """`deps_url` cannot be read or is not a .repo file; the message says which and why."""


@dataclass(frozen=True)
class RepoSection:
    """One repository of a .repo file: its id and its options in the file's order."""

    id: str
    options: tuple[tuple[str, str], ...]

    def option(self, name: str) -> str:
        return next((v for k, v in self.options if k == name), "")

    @property
    def local_folder(self) -> Path | None:
        """The folder of a `file:///` baseurl (the one location a container cannot reach)."""
        url = self.option("baseurl").split()[0] if self.option("baseurl").split() else ""
        if not url.lower().startswith("file:///"):
            return None
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def deps_file_name(reponame: str) -> str:
    """DLRN's consumers fetch `<baseurl>/delorean-deps.repo` beside `delorean.repo`."""
    return f"{reponame}-deps.repo"


def parse_repo_file(text: str, origin: str) -> tuple[RepoSection, ...]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=origin)
    except configparser.Error as exc:
        raise DepsError(f"{origin}: not a .repo file: {exc}") from None
    sections = []
    for name in parser.sections():
        options = tuple((k, v.strip()) for k, v in parser.items(name))
        section = RepoSection(name, options)
        if not any(section.option(k) for k in _LOCATIONS):
            raise DepsError(f"{origin}: repository [{name}] has no baseurl, mirrorlist or metalink")
        sections.append(section)
    if not sections:
        raise DepsError(f"{origin}: no repository in it")
    return tuple(sections)


def _read(url: str, timeout: float) -> str:
    if is_http_url(url):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
                data: bytes = response.read(MAX_REPO_FILE_BYTES + 1)
        except (OSError, ValueError) as exc:
            raise DepsError(f"deps_url {url}: cannot fetch: {exc}") from None
    else:
        path = Path(urllib.parse.unquote(url[len("file://") :])) if "://" in url else Path(url)
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_REPO_FILE_BYTES + 1)
        except OSError as exc:
            raise DepsError(f"deps_url {url}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_REPO_FILE_BYTES:
        raise DepsError(f"deps_url {url}: larger than {MAX_REPO_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DepsError(f"deps_url {url}: not UTF-8 text") from None


@dataclass(frozen=True)
class Current:
    """The builder's `current` repository: `relpath` below `repos_dir`."""

    repo_id: str
    repos_dir: Path
    relpath: str

    def section(self, repos_dir: Path) -> RepoSection:
        """Its .repo section, with repos/ seen at `repos_dir`."""
        url = "file://" + urllib.parse.quote(str(repos_dir / self.relpath))
        options = (
            ("name", self.repo_id),
            ("baseurl", url),
            ("enabled", "1"),
            ("gpgcheck", "0"),
            ("priority", "1"),
        )
        return RepoSection(self.repo_id, options)


@dataclass(frozen=True)
class BuildRepos:
    """The repositories of one cycle's builds: `current` (when it exists) and `deps`."""

    current: Current | None
    deps: tuple[RepoSection, ...] = ()
    deps_text: str = ""  # the .repo file as read, published for consumers

    def sections(self) -> tuple[RepoSection, ...]:
        if self.current is None:
            return self.deps
        return (self.current.section(self.current.repos_dir), *self.deps)

    def for_container(self) -> tuple[str, list[tuple[Path, PurePosixPath]]]:
        """The .repo text a container reads, and the folders to mount read-only for it:
        every local folder is mounted under /conveyor/repos, and its baseurl follows.
        `current` needs all of repos/ mounted: its RPMs are links into other folders."""
        mounts: list[tuple[Path, PurePosixPath]] = []
        sections = list(self.deps)
        if self.current is not None:
            mounts.append((self.current.repos_dir, MOUNTS / "0"))
            sections.insert(0, self.current.section(Path(MOUNTS / "0")))
        blocks = []
        for index, section in enumerate(sections):
            options = list(section.options)
            folder = section.local_folder
            if folder is not None and not (index == 0 and self.current is not None):
                inside = MOUNTS / str(len(mounts))
                mounts.append((folder, inside))
                options = [(k, f"file://{inside}" if k == "baseurl" else v) for k, v in options]
            lines = [f"[{section.id}]", *(f"{k}={v}" for k, v in options)]
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks), mounts

    @property
    def needs_network(self) -> bool:
        """Whether a repository is remote (then fetching BuildRequires needs a network)."""
        return any(
            s.local_folder is None and any(s.option(k) for k in _LOCATIONS) for s in self.sections()
        )


def load_build_repos(
    deps_url: str, reponame: str, repos_dir: Path, timeout: float = 30.0
) -> BuildRepos:
    """The repositories builds see now: `repos/current` if set, then `deps_url`'s."""
    current_link = repos_dir / "current"
    current = None
    if current_link.is_dir():
        relpath = current_link.resolve().relative_to(repos_dir.resolve())
        current = Current(f"{reponame}-current", repos_dir.resolve(), str(relpath))
    if not deps_url:
        return BuildRepos(current)
    text = _read(deps_url, timeout)
    return BuildRepos(current, parse_repo_file(text, f"deps_url {deps_url}"), text)
