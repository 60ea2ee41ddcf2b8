"""DLRN's tables (reference/dlrn.md section 13), same names and columns, plus the indexes
DLRN lacks: the trunk's hot queries are "newest row of a project by status" and "is this
(commit, distro) pair known", which DLRN answers with full scans."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Bit in commits.flags set when purge removed the commit's repository (DLRN's value).
FLAG_PURGED = 0x2
# Bit set by `conveyor recheck`: the row stays for history (votes and notifications may
# reference it) but no longer counts as processed, so the commit is built again. DLRN
# deletes the row instead.
FLAG_RECHECKED = 0x4


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    password: Mapped[str] = mapped_column(String(256))
    # conveyor's addition (DLRN ignores it): comma list of "voter", "promoter", "admin";
    # NULL for users made by DLRN, who may do everything, as in DLRN.
    roles: Mapped[str | None] = mapped_column(String(64))


class Commit(Base):
    __tablename__ = "commits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(18), default="rpm")
    dt_commit: Mapped[int | None] = mapped_column(Integer)
    dt_distro: Mapped[int | None] = mapped_column(Integer)
    dt_extended: Mapped[int | None] = mapped_column(Integer)
    dt_build: Mapped[int | None] = mapped_column(Integer)
    project_name: Mapped[str] = mapped_column(String(256))
    repo_dir: Mapped[str | None] = mapped_column(String(1024))
    distgit_dir: Mapped[str | None] = mapped_column(String(1024))
    commit_hash: Mapped[str] = mapped_column(String(64))
    distro_hash: Mapped[str | None] = mapped_column(String(64))
    extended_hash: Mapped[str | None] = mapped_column(String(128))
    commit_branch: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(64))
    component: Mapped[str | None] = mapped_column(String(64))
    artifacts: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    versions_csv: Mapped[str | None] = mapped_column(String(256))

    __table_args__ = (
        Index("ix_commits_project_type_status_id", "project_name", "type", "status", "id"),
        Index("ix_commits_project_id", "project_name", "id"),
        Index("ix_commits_hashes", "commit_hash", "distro_hash", "extended_hash"),
        Index("ix_commits_dt_build", "dt_build"),
    )

    @property
    def artifact_list(self) -> list[str]:
        return [a for a in (self.artifacts or "").split(",") if a]


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_name: Mapped[str] = mapped_column(String(256), unique=True)
    last_email: Mapped[int | None] = mapped_column(Integer)


class _VoteColumns:
    """What a CI job says about a repository, shared by per-commit and aggregate votes."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ci_name: Mapped[str | None] = mapped_column(String(256))
    ci_url: Mapped[str | None] = mapped_column(String(1024))
    ci_vote: Mapped[bool | None] = mapped_column(Boolean)
    ci_in_progress: Mapped[bool | None] = mapped_column(Boolean)
    timestamp: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(ForeignKey("users.username"))


class CIVote(_VoteColumns, Base):
    __tablename__ = "civotes"
    commit_id: Mapped[int] = mapped_column(ForeignKey("commits.id"), nullable=False)
    component: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_civotes_commit_id", "commit_id"),
        Index("ix_civotes_timestamp", "timestamp"),
        Index("ix_civotes_ci_name", "ci_name"),
        # The newest vote of a job (last_tested_repo with a job_id): one seek, no sort.
        Index("ix_civotes_ci_name_timestamp", "ci_name", "timestamp"),
    )


class CIVoteAggregate(_VoteColumns, Base):
    __tablename__ = "civotes_agg"
    ref_hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_civotes_agg_ref_hash", "ref_hash"),
        Index("ix_civotes_agg_timestamp", "timestamp"),
    )


class Promotion(Base):
    __tablename__ = "promotions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commit_id: Mapped[int] = mapped_column(ForeignKey("commits.id"), nullable=False)
    promotion_name: Mapped[str] = mapped_column(String(256), nullable=False)
    timestamp: Mapped[int] = mapped_column(Integer, nullable=False)
    user: Mapped[str | None] = mapped_column(ForeignKey("users.username"))
    component: Mapped[str | None] = mapped_column(String(64))
    aggregate_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_promotions_name_id", "promotion_name", "id"),)


class PackageStatus(Base):
    """Each package's standing, kept current by every build so that reports and `consistent`
    never have to scan the history (conveyor's own table; DLRN derives this per request)."""

    __tablename__ = "package_status"
    project_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    component: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[str] = mapped_column(String(64))
    last_commit_id: Mapped[int] = mapped_column(ForeignKey("commits.id"))
    last_success_id: Mapped[int | None] = mapped_column(ForeignKey("commits.id"))
    # The first failure after the last success: when the package started to fail.
    first_failure_id: Mapped[int | None] = mapped_column(ForeignKey("commits.id"))


class Notification(Base):
    """Outbox of messages to maintainers and webhooks: written in the build's transaction,
    delivered (and retried) afterwards, so a mail server that is down loses nothing."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "ftbfs" or "fixed"
    channel: Mapped[str] = mapped_column(String(16))  # "email" or "webhook"
    project_name: Mapped[str] = mapped_column(String(256))
    commit_id: Mapped[int] = mapped_column(ForeignKey("commits.id"))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    created: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[int] = mapped_column(Integer)
    sent: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_notifications_pending", "sent", "next_attempt"),
        Index("ix_notifications_project", "project_name", "kind", "commit_id"),
    )


class Audit(Base):
    """One row per write through the API: who did what, when, from where (conveyor's own)."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[int] = mapped_column(Integer)
    user: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))  # the endpoint, e.g. "promote"
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)  # the HTTP status answered
    details: Mapped[str | None] = mapped_column(Text)  # JSON

    __table_args__ = (
        Index("ix_audit_timestamp", "timestamp"),
        Index("ix_audit_user", "user", "id"),
    )


class TagVersion(Base):
    """One applied state of a buildsys tag (conveyor's own): versions are never changed or
    deleted, so any past state can be shown and restored. The newest is the tag's content."""

    __tablename__ = "tag_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per tag
    created: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)  # past a failed closure gate
    content: Mapped[str] = mapped_column(Text)  # JSON {package name: NVR}
    registered: Mapped[str] = mapped_column(Text)  # JSON [package name], Koji's package list
    actions: Mapped[str] = mapped_column(Text)  # JSON: the diff from the previous version

    __table_args__ = (Index("ix_tag_versions_tag_version", "tag", "version", unique=True),)


class TagBuild(Base):
    """A build the tag store can put into tags: its RPMs are in `<datadir>/tags/pool/<nvr>/`."""

    __tablename__ = "tag_builds"
    nvr: Mapped[str] = mapped_column(String(512), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    origin: Mapped[str] = mapped_column(String(16))  # "import" or "trunk"
    created: Mapped[int] = mapped_column(Integer)
    files: Mapped[str] = mapped_column(Text)  # JSON [file name]

    __table_args__ = (Index("ix_tag_builds_name", "name"),)


class TagVote(Base):
    """A CI job's result on one buildsys tag version's repository (conveyor's own), as
    `civotes` holds them for trunk repositories; `timestamp` is the CI's time."""

    __tablename__ = "tag_votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(255))
    success: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str] = mapped_column(String(1024))
    notes: Mapped[str] = mapped_column(Text, default="")
    timestamp: Mapped[int] = mapped_column(Integer)
    user: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_tag_votes_tag_version", "tag", "version", "job_id"),)


class ReleaseStep(Base):
    """One step of a `release-ga` run of a series (conveyor's own): the release timeline.
    `ended` is NULL while the step runs."""

    __tablename__ = "release_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series: Mapped[str] = mapped_column(String(100))
    run: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    started: Mapped[int] = mapped_column(Integer)  # unix time
    ended: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_release_steps_series_run", "series", "run", "id"),)


class BuildUpload(Base):
    """A file a build worker on another machine made (an RPM, a log, its result record),
    kept until the scheduler has published it (conveyor's own). All files of one job are
    written in one transaction: a cut upload leaves none behind."""

    __tablename__ = "build_uploads"
    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # the queue's job id
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Bisection(Base):
    """A search for the change that broke CI job `job_id` between a good and a bad
    repository (conveyor's own). `plan` (JSON) is fixed at the start: the changed packages in
    order with their builds, as the repositories held them then (labels move on)."""

    __tablename__ = "bisections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(255))
    good_ref: Mapped[str] = mapped_column(String(512))  # as the user named it
    good_path: Mapped[str] = mapped_column(String(512))  # what it resolved to, below repos/
    bad_ref: Mapped[str] = mapped_column(String(512))
    bad_path: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))  # running, concluded, reset
    plan: Mapped[str] = mapped_column(Text)
    conclusion: Mapped[str | None] = mapped_column(Text)  # JSON, once concluded
    created: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    user: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_bisections_job_state", "job_id", "state"),)


class BisectStep(Base):
    """One repository a bisection had CI test: its `hash` is what CI votes on (as an
    aggregate hash, `civotes_agg`); `verdict` is NULL until the job's vote arrived."""

    __tablename__ = "bisect_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bisection_id: Mapped[int] = mapped_column(ForeignKey("bisections.id"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per bisection
    hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # package, verify, retest, commit
    position: Mapped[int] = mapped_column(Integer)  # k of a package step, the build of a commit
    builds: Mapped[str] = mapped_column(Text)  # JSON {package: build path below repos/}
    created: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[bool | None] = mapped_column(Boolean)
    voted: Mapped[int | None] = mapped_column(Integer)  # the vote's timestamp
    vote_url: Mapped[str | None] = mapped_column(String(1024))

    __table_args__ = (
        Index("ix_bisect_steps_bisection_number", "bisection_id", "number", unique=True),
        Index("ix_bisect_steps_hash", "hash"),
    )
