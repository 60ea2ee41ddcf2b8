"""`conveyor.toml`: every option has a default; a wrong key or value is an error naming it."""

from __future__ import annotations

import re
import socket
import tomllib
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from conveyor.domain.distros import DISTROS
from conveyor.domain.failures import TRANSIENT_PATTERNS

DEFAULT_CONFIG_NAME = "conveyor.toml"


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the file and the key."""


class ReleaseNumbering(StrEnum):
    DATE_HASH = "0.date.hash"
    ONE_DATE_HASH = "0.1.date.hash"
    MINOR_DATE_HASH = "minor.date.hash"


class BuildOrder(StrEnum):
    COMMIT_TIME = "commit-time"  # DLRN's default
    DEPENDENCIES = "dependencies"  # DLRN's --order: BuildRequires before their users


class RpmLinks(StrEnum):
    """How a repository holds the other packages' RPMs."""

    SYMLINK = "symlink"  # DLRN's layout: relative symlinks
    # Hard links: the same files over HTTP and on disk, but a directory can be purged
    # without leaving any other repository's link dangling.
    HARDLINK = "hardlink"


class BuildDriverName(StrEnum):
    """Which build driver builds (conveyor.builders.registry).

    `auto`, the default, is `bwrap` where bubblewrap works and the host's `rpmbuild` with a
    warning (logged at every cycle, and written into every build log) where it does not:
    user namespaces are disabled in some containers and kernels, and conveyor must still
    build there (`make demo`, the tests). A builder of untrusted distgits names `bwrap`, so
    that a host where the sandbox cannot run refuses to build instead of building unsafely.
    """

    AUTO = "auto"
    BWRAP = "bwrap"  # rpmbuild inside a bubblewrap sandbox (conveyor.builders.bwrap)
    RPMBUILD = "rpmbuild"  # the host's rpmbuild, unconfined: for trusted specs only
    PODMAN = "podman"  # a container of `[podman] image`, BuildRequires installed by dnf
    MOCK = "mock"  # DLRN's driver: mock with `[mock] config` (conveyor.builders.mock)


# Macros conveyor defines itself on every rpmbuild/rpmspec call: `rpm_macros` may not set
# them (`dist` has an option of its own; the others are the build's folders).
RESERVED_MACROS = frozenset(
    {
        "dist",
        "_topdir",
        "_builddir",
        "_buildrootdir",
        "_rpmdir",
        "_srcrpmdir",
        "_sourcedir",
        "_specdir",
        "_tmppath",
    }
)
_MACRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetadataConfig(_Strict):
    path: Path = Field(
        default=Path("rdoinfo"),
        description="rdoinfo-format file, or a folder holding rdo.yml",
    )
    # rdoinfo calls a release a "tag" (its `tags:` lists); conveyor says "release" and keeps
    # "buildsys tag" for CBS tags and "label" for promotion pointers. `tag` is still read.
    release: str | None = Field(
        default=None,
        validation_alias=AliasChoices("release", "tag"),
        description="release to build (rdoinfo's tag, e.g. flamingo); packages without it "
        "are ignored (None: all)",
    )


class PodmanConfig(_Strict):
    """`[podman]`: the container every build of driver `podman` runs in."""

    image: str = Field(
        default="",
        pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$",
        description="image with rpm-build and dnf (dnf-plugins-core), e.g. "
        "quay.io/centos/centos:stream9; pulled beforehand, never by a build",
    )
    runtime: str = Field(
        default="",
        pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="OCI runtime (podman --runtime, e.g. runc); empty: podman's default",
    )
    fetch_network: str = Field(
        default="",
        pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="network of the step that downloads BuildRequires from http(s) "
        "repositories (podman --network); empty: podman's default. Builds run without one",
    )
    executable: str = Field(default="podman", description="the podman command")


class QueueConfig(_Strict):
    """`[queue]`: builds on `conveyor worker` processes, on this machine or others, through
    the builder's PostgreSQL database (procrastinate's queue)."""

    enabled: bool = Field(
        default=False,
        description="cycles queue their builds for workers instead of building them; "
        "`workers` (top level) is then how many builds may be queued at once",
    )
    heartbeat: Annotated[float, Field(gt=0)] = Field(
        default=10.0,
        description="seconds between a worker's heartbeats (build workers, and the promotion "
        "worker of each `serve` process on PostgreSQL)",
    )
    stalled_after: Annotated[float, Field(gt=0)] = Field(
        default=60.0,
        description="seconds without a heartbeat after which a worker is taken for dead and "
        "its builds are queued again (its promotion evaluation, for a server)",
    )
    attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=3, description="tries of a build whose worker fails (not of a failed build)"
    )


class MockConfig(_Strict):
    """`[mock]`: DLRN's build driver. mock needs a host where it runs (Fedora, CentOS)."""

    config: Path | None = Field(
        default=None,
        description="the mock configuration builds start from (DLRN's <target>.cfg); "
        "conveyor writes one per builder that includes it",
    )
    executable: str = Field(default="mock", description="the mock command")


class TagBackend(StrEnum):
    """Where `conveyor tags apply` executes its actions."""

    STORE = "store"  # conveyor's own tag store: a dnf repository per tag version
    KOJI = "koji"  # a Koji hub (CBS): the `koji` command, as graffiti drives it


class TagsConfig(_Strict):
    """`[tags]`: the buildsys tag store (conveyor.tags)."""

    backend: TagBackend = TagBackend.STORE
    koji_command: str = Field(
        default="koji", description="the Koji client (koji, cbs, brew), already logged in"
    )
    koji_owner: str = Field(
        default="", pattern=r"^[A-Za-z0-9._@-]*$", description="owner of packages `add-pkg` adds"
    )
    koji_timeout: Annotated[float, Field(gt=0)] = 600.0

    baseurl: str = Field(
        default="",
        description="URL where <datadir>/tags is served (`conveyor serve`: /tags), written "
        "into each tag's .repo file; empty: `baseurl` with its last part replaced by tags",
    )
    lookaside: tuple[Path, ...] = Field(
        default=(),
        description="local repositories (folders with repodata) the closure gate counts on "
        "besides the tag itself: BaseOS, AppStream, CRB...",
    )

    @field_validator("baseurl")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.lower().startswith(("http://", "https://", "file:///")):
            raise ValueError("must be an http(s):// or file:/// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _koji_owner(self) -> TagsConfig:
        if self.backend is TagBackend.KOJI and not self.koji_owner:
            raise ValueError('backend = "koji" needs koji_owner (the owner of added packages)')
        return self


class ApiConfig(_Strict):
    """`[api]`: who may read. Writes always need credentials (and a role)."""

    read_auth: bool = Field(
        default=False,
        description="reads of the API, vote pages, /metrics and /openapi.json need credentials",
    )
    repos_auth: bool = Field(
        default=False, description="the repositories under /repos/ need credentials too"
    )
    head_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0,
        description="seconds a client has to send a request's line and headers, and again its body",
    )


# A series of openstack/releases, a release of the constraints: also a part of a page's URL.
_RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _dashboard_location(value: str) -> str:
    """A path, or an http(s):// or file:/// URL, on one line."""
    value = value.strip()
    if not value or any(c in value for c in "\r\n\0"):
        raise ValueError("must be a path or a URL on one line")
    if "://" in value and not value.lower().startswith(("http://", "https://", "file:///")):
        raise ValueError(f"{value!r}: a path, or an http://, https:// or file:/// URL")
    return value


class DashboardConfig(_Strict):
    """`[dashboard]`: what the pages of `conveyor serve` read besides the builder's own data.
    Every option is optional: a page whose input is not configured says which one to set."""

    releases: Path | None = Field(
        default=None,
        description="an openstack/releases checkout: /releases shows each series' release "
        "readiness (release-status --config) and its GA timeline",
    )
    series: tuple[str, ...] = Field(
        default=(),
        description="the series /releases shows, besides [metadata] release (e.g. flamingo)",
    )
    constraints: dict[str, str] = Field(
        default_factory=dict,
        description="release -> its upper-constraints.txt (a path or an http(s) URL): "
        "/constraints shows the uc-report of each",
    )
    constraint_repos: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="release -> more repositories providing packages, as uc-report --repo "
        "takes them ([ID,]DIR|URL, or a .repo file); the release's buildsys-tags files, and "
        "for the builder's own release its consistent repository, are read anyway",
    )
    distro: str = Field(
        default="centos9",
        description="the distribution of the constraints' markers and .repo variables "
        "(uc-report --distro)",
    )

    @field_validator("series")
    @classmethod
    def _series_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _RELEASE_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: not a series name (letters, digits, '.', '_', '-')")
        return tuple(dict.fromkeys(value))

    @field_validator("constraints", "constraint_repos")
    @classmethod
    def _release_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _RELEASE_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: not a release name (letters, digits, '.', '_', '-')")
        return value

    @field_validator("constraints")
    @classmethod
    def _constraint_files(cls, value: dict[str, str]) -> dict[str, str]:
        return {release: _dashboard_location(location) for release, location in value.items()}

    @field_validator("constraint_repos")
    @classmethod
    def _constraint_repos(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {
            release: tuple(_dashboard_location(source) for source in sources)
            for release, sources in value.items()
        }

    @field_validator("distro")
    @classmethod
    def _known_distro(cls, value: str) -> str:
        if value not in DISTROS:
            raise ValueError(f"unknown distro {value!r}; expected one of {', '.join(DISTROS)}")
        return value


# DLRN's own interval between two failure mails of a project (reference/dlrn.md section 10).
DEFAULT_QUIET_HOURS = 24.0


class NotificationsConfig(BaseModel):
    """`[notifications]`: every option has a default, and the defaults send nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_server: str = Field(default="", description="mail server host; empty: no e-mail")
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_starttls: bool = False
    smtp_user: str = Field(default="", description="log in when set (after STARTTLS)")
    smtp_password: SecretStr = SecretStr("")
    mail_from: str = Field(default="", description="From address; empty: no-reply@<hostname>")
    webhook_url: str = Field(default="", description="http(s) URL POSTed JSON; empty: none")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC-SHA256 key of the X-Conveyor-Signature header; required with a URL",
    )
    timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    max_attempts: Annotated[int, Field(ge=1)] = 48
    quiet_hours: Annotated[float, Field(ge=0)] = DEFAULT_QUIET_HOURS

    @field_validator("smtp_server", "smtp_user", "mail_from")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # These end up in SMTP commands and mail headers, where a line break injects more.
        if any(c in value for c in "\r\n\0"):
            raise ValueError("must be a single line")
        return value.strip()

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        # urllib would also open file:// and ftp:// URLs; a webhook is HTTP.
        value = value.strip()
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> NotificationsConfig:
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            raise ValueError("webhook_secret is required when webhook_url is set")
        if self.smtp_user and not self.smtp_starttls:
            # smtplib refuses AUTH on a plain connection anyway; say so at load time.
            raise ValueError("smtp_user needs smtp_starttls = true (no password in clear)")
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_server)

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    @property
    def quiet_seconds(self) -> int:
        return int(self.quiet_hours * 3600)

    @property
    def sender(self) -> str:
        return self.mail_from or f"no-reply@{socket.gethostname() or 'localhost'}"


class Config(_Strict):
    datadir: Path = Path("data")
    baseurl: str = "http://localhost:8080/repos"
    database: str = Field(
        default="",
        description="SQLAlchemy URL; empty means a SQLite file in the data directory",
    )
    project_name: str = "RDO"
    reponame: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = "delorean"
    source_branch: str = "master"
    distro_branch: str = "rpm-master"
    fallback_to_master: bool = True
    nonfallback_branches: tuple[str, ...] = ("^master$", "^rpm-master$", "^main$")
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    git_jobs: Annotated[int, Field(ge=1, le=256)] = 16
    git_timeout: Annotated[float, Field(gt=0)] = 600.0
    build_driver: BuildDriverName = BuildDriverName.AUTO
    build_timeout: Annotated[float, Field(gt=0)] = 3600.0
    # The bwrap sandbox's limits, per build (processes) or per process (the others).
    build_max_processes: Annotated[int, Field(ge=16)] = 1024
    build_max_file_mb: Annotated[int, Field(ge=1)] = 16384
    build_max_memory_mb: Annotated[int, Field(ge=0)] = Field(
        default=32768, description="address space of one build process in MiB; 0: no limit"
    )
    dist: Annotated[str, Field(pattern=r"^[A-Za-z0-9._+~^]*$")] = Field(
        default=".el9", description="%{dist} of every build (DLRN's mock config); empty: none"
    )
    rpm_macros: dict[str, str] = Field(
        default_factory=dict,
        description="more rpm macros defined on every rpmbuild and rpmspec call (name = body)",
    )
    deps_url: str = Field(
        default="",
        description="a .repo file of the repositories builds take BuildRequires from and "
        "installs need (DLRN's deps_url: RDO's delorean-deps.repo): a path, file:// or "
        "http(s) URL; published as repos/<reponame>-deps.repo. Empty: none",
    )
    build_order: BuildOrder = BuildOrder.COMMIT_TIME
    rebuild_reverse_deps: bool = False
    release_numbering: ReleaseNumbering = ReleaseNumbering.DATE_HASH
    release_minor: Annotated[str, Field(pattern=r"^[0-9]+$")] = "0"
    maxretries: Annotated[int, Field(ge=0)] = 3
    retry_patterns: tuple[str, ...] = TRANSIENT_PATTERNS
    allow_force_rechecks: bool = False
    loop_interval: Annotated[float, Field(gt=0)] = 300.0
    use_components: bool = False
    keep_changelog: bool = False
    include_srpm_in_repo: bool = True
    link_rpms: RpmLinks = RpmLinks.SYMLINK
    promotion_criteria: Path | None = Field(
        default=None, description="promotion criteria YAML (conveyor promote, serve)"
    )
    metadata: MetadataConfig = MetadataConfig()
    podman: PodmanConfig = PodmanConfig()
    mock: MockConfig = MockConfig()
    queue: QueueConfig = QueueConfig()
    tags: TagsConfig = TagsConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    api: ApiConfig = ApiConfig()
    dashboard: DashboardConfig = DashboardConfig()

    @field_validator("nonfallback_branches", "retry_patterns")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return value

    @field_validator("deps_url")
    @classmethod
    def _deps_url_kind(cls, value: str) -> str:
        value = value.strip()
        if any(c in value for c in "\r\n\0"):
            raise ValueError("must be a single line")
        if "://" in value and not value.lower().startswith(("http://", "https://", "file:///")):
            raise ValueError("a path, or an http://, https:// or file:/// URL")
        return value

    @model_validator(mode="after")
    def _driver_configured(self) -> Config:
        # Said when the file is read, not at the first build of a cycle.
        if self.build_driver is BuildDriverName.PODMAN and not self.podman.image:
            raise ValueError('build_driver = "podman" needs [podman] image')
        if self.build_driver is BuildDriverName.MOCK and self.mock.config is None:
            raise ValueError('build_driver = "mock" needs [mock] config')
        if self.queue.enabled and not self.database.startswith("postgresql"):
            raise ValueError(
                "[queue] enabled needs a PostgreSQL database (database = "
                '"postgresql+psycopg://..."): the workers take their builds from it'
            )
        return self

    @field_validator("rpm_macros")
    @classmethod
    def _macros_are_defines(cls, value: dict[str, str]) -> dict[str, str]:
        # Each one becomes `--define "<name> <body>"`: a line break would end the definition
        # and start another.
        for name, body in value.items():
            if not _MACRO_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: not a macro name ([A-Za-z_][A-Za-z0-9_]*)")
            if name in RESERVED_MACROS:
                raise ValueError(f"{name!r}: conveyor defines this macro itself")
            if not body.strip():
                raise ValueError(f"{name!r}: empty body (write %{{nil}} for an empty macro)")
            if any(c in body for c in "\r\n\0"):
                raise ValueError(f"{name!r}: the body must be a single line")
        return value

    @property
    def rpm_defines(self) -> dict[str, str]:
        """The macros every rpmbuild and rpmspec call defines: `dist`, then `rpm_macros`."""
        return {**({"dist": self.dist} if self.dist else {}), **self.rpm_macros}

    @property
    def repos_dir(self) -> Path:
        return self.datadir / "repos"

    @property
    def tags_dir(self) -> Path:
        """The buildsys tag store (conveyor.publish.tagstore), served at /tags."""
        return self.datadir / "tags"

    def url_of(self, relpath: str | PurePosixPath) -> str:
        """Where `relpath` (below repos/) is served: `baseurl` joined with it."""
        return f"{self.baseurl.rstrip('/')}/{relpath}"

    @property
    def tags_baseurl(self) -> str:
        """Where the tag store is served: `[tags] baseurl`, else `baseurl` with its last
        segment `repos` replaced by `tags` (conveyor serve's /repos/ and /tags/), else
        `baseurl` + `/tags` (a baseurl of the builder's own, which holds both)."""
        if self.tags.baseurl:
            return self.tags.baseurl
        base = self.baseurl.rstrip("/")
        head, _, last = base.rpartition("/")
        if last == "repos" and head and not head.endswith("/"):
            return f"{head}/tags"
        return f"{base}/tags"

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.datadir / 'commits.sqlite'}"


def _format_error(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown option '{key}'")
        else:
            lines.append(f"{path}: option '{key}': {item['msg']}")
    return "\n".join(lines)


def _resolve_relative(config: Config, base: Path) -> Config:
    """Relative paths in a config file are relative to the file, not to the caller's cwd."""

    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    return config.model_copy(
        update={
            "datadir": absolute(config.datadir),
            "promotion_criteria": absolute(config.promotion_criteria)
            if config.promotion_criteria
            else None,
            "metadata": config.metadata.model_copy(update={"path": absolute(config.metadata.path)}),
            "database": _absolute_sqlite(config.database, absolute),
            "deps_url": _absolute_deps(config.deps_url, absolute),
            "mock": config.mock.model_copy(
                update={"config": absolute(config.mock.config) if config.mock.config else None}
            ),
            "tags": config.tags.model_copy(
                update={"lookaside": tuple(absolute(p) for p in config.tags.lookaside)}
            ),
            "dashboard": _absolute_dashboard(config.dashboard, absolute),
        }
    )


def _absolute_dashboard(
    dashboard: DashboardConfig, absolute: Callable[[Path], Path]
) -> DashboardConfig:
    def location(value: str) -> str:
        return value if "://" in value else str(absolute(Path(value)))

    def source(value: str) -> str:
        # uc-report's `[ID,]LOCATION`: an id holds no "/" (its own rule, uc.repometa).
        ident, comma, rest = value.partition(",")
        if comma and ident and "/" not in ident and not ident.endswith(".repo"):
            return f"{ident},{location(rest)}"
        return location(value)

    return dashboard.model_copy(
        update={
            "releases": absolute(dashboard.releases) if dashboard.releases else None,
            "constraints": {r: location(v) for r, v in dashboard.constraints.items()},
            "constraint_repos": {
                r: tuple(source(v) for v in sources)
                for r, sources in dashboard.constraint_repos.items()
            },
        }
    )


def _absolute_deps(url: str, absolute: Callable[[Path], Path]) -> str:
    if not url or "://" in url:
        return url
    return str(absolute(Path(url)))


# `sqlite:///relative/path.sqlite` (three slashes, then no fourth): SQLAlchemy would open it
# relative to the working directory, so a cron job started in / would make /path.sqlite.
_RELATIVE_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?:///)(?!/)([^?]+)(\?.*)?$")


def _absolute_sqlite(url: str, absolute: Callable[[Path], Path]) -> str:
    match = _RELATIVE_SQLITE.match(url)
    if match is None or match.group(2) == ":memory:" or match.group(2).startswith("file:"):
        return url
    return f"{match.group(1)}{absolute(Path(match.group(2)))}{match.group(3) or ''}"


def parse_config(data: dict[str, Any], path: Path) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None
    return _resolve_relative(config, path.parent.resolve())


def load_config(path: Path | None = None) -> Config:
    """Load `path` (default ./conveyor.toml); a missing default file means all defaults."""
    explicit = path is not None
    path = path or Path(DEFAULT_CONFIG_NAME)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: configuration file not found") from None
        return _resolve_relative(Config(), Path.cwd())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)
