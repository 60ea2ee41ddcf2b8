"""`conveyor release-ga --series S`: what remains between a branched release and its
published release repository, run as one resumable sequence of steps, each recorded in the
series' timeline (`assembly.timeline`):

========== ===============================================================================
status      deliverables joined to rdoinfo (release-status); a pin newer than the series'
            final release stops the GA
pins        branchless projects pinned to their final release (release-pins)
build       the finals not built yet (the late finals), through the builder's driver, into
            `<family>-candidate`; a failed build stops the GA after the others are tagged
candidate   the candidate tag brought to its declared content, through the closure gate
testing     candidate → testing, proposed and applied through the gate
criteria    the stable promotion: the release criteria's jobs must have passed on the
            testing tag's current version (CI votes on it as on trunk repositories)
release     testing → release, the version the CI voted on, through the gate
publish     `<tags_dir>/repos/<family>-release.repo`, which follows the release tag
========== ===============================================================================

Every step starts from the state it finds (the tag store, rdoinfo, the votes), so a run
that stopped (a failed build, a closure refusal, votes still missing, a kill) is resumed
by running the command again: what was done is found done and costs little.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

from conveyor.assembly.releases import (
    ReleaseBuildError,
    apply_declared,
    build_release,
    prepare_release,
    refresh_mirrors,
    release_targets,
    tag_builds,
)
from conveyor.assembly.timeline import INTERRUPTED, Timeline
from conveyor.builders.buildrepos import deps_file_name
from conveyor.builders.registry import build_repos
from conveyor.config import Config, ConfigError
from conveyor.domain.promotion import check_jobs, latest_results
from conveyor.edit import EditError, MetadataEditor
from conveyor.metadata import MetadataError, load_database
from conveyor.metadata.yamlfiles import entry_file
from conveyor.promote.criteria import CriteriaError, ReleaseCriteria, load_criteria
from conveyor.publish.files import write_atomic
from conveyor.publish.locks import file_lock
from conveyor.store.database import Database
from conveyor.tags import service
from conveyor.tags.service import TagsError
from conveyor.tags.state import newest_versions
from conveyor.tags.votes import tag_votes
from conveyor.uc.errors import UCError
from conveyor.uc.pins import refused_pins, series_pins
from conveyor.uc.releases import (
    SeriesStatus,
    StatusRow,
    release_tags,
    series_release_status,
    state_counts,
)

__all__ = [
    "GA_STEPS",
    "Family",
    "GaBusy",
    "GaError",
    "GaRequest",
    "GaResult",
    "StepOutcome",
    "choose_family",
    "run_ga",
]

GA_STEPS = ("status", "pins", "build", "candidate", "testing", "criteria", "release", "publish")
DONE, FAILED, WAITING, PLANNED = "done", "failed", "waiting", "planned"
# How many lines of a failed build's notes the timeline keeps.
NOTES_LINES = 20


class GaError(Exception):
    """The GA cannot start: bad input (a series, a family, a builder); nothing was done."""


class GaBusy(GaError):
    """Another `release-ga` holds this builder."""


@dataclass(frozen=True)
class Family:
    """A release's tags for one build target: `<prefix>-candidate`, `-testing`, `-release`."""

    prefix: str

    @property
    def candidate(self) -> str:
        return f"{self.prefix}-candidate"

    @property
    def testing(self) -> str:
        return f"{self.prefix}-testing"

    @property
    def release(self) -> str:
        return f"{self.prefix}-release"


@dataclass(frozen=True)
class GaRequest:
    series: str
    releases: Path  # an openstack/releases checkout
    family: str | None = None
    wait: float = 0.0  # seconds to wait for the CI's votes
    poll: float = 10.0
    dry_run: bool = False
    sync_requirements: bool = False  # commit and push the specs' requirements sync


@dataclass(frozen=True)
class StepOutcome:
    state: str  # done, failed, waiting, skipped
    detail: str
    lines: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join([self.detail, *self.lines])


@dataclass
class GaResult:
    run: int  # 0 for a dry run
    family: Family
    steps: list[tuple[str, StepOutcome]] = field(default_factory=list)
    repo_file: Path | None = None
    build_seconds: float = 0.0

    @property
    def state(self) -> str:
        """`done`, or the state of the step the run stopped at."""
        last = self.steps[-1][1].state if self.steps else DONE
        return last if last in (FAILED, WAITING) else DONE

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run,
            "family": self.family.prefix,
            "state": self.state,
            "steps": [
                {"step": name, "state": o.state, "detail": o.detail, "lines": list(o.lines)}
                for name, o in self.steps
            ],
            "repo_file": str(self.repo_file) if self.repo_file else None,
            "build_seconds": round(self.build_seconds, 3),
        }


def choose_family(config: Config, series: str, wanted: str | None) -> Family:
    """The tag family of the GA: `wanted`, or the only one the release declares."""
    if config.metadata.release != series:
        raise GaError(
            f"this builder builds {config.metadata.release!r}, not {series!r}: give the "
            f"{series} builder's conveyor.toml (made by `conveyor release-branch {series}`)"
        )
    try:
        tags = set(release_tags(load_database(entry_file(config.metadata.path)), series))
    except (MetadataError, UCError) as exc:
        raise GaError(str(exc)) from None
    families = sorted(
        tag.removesuffix("-candidate")
        for tag in tags
        if tag.endswith("-candidate")
        and {f"{tag.removesuffix('-candidate')}-{s}" for s in ("testing", "release")} <= tags
    )
    if not families:
        raise GaError(
            f"rdoinfo's release {series} lists no <family>-candidate, -testing and -release "
            "buildsys tags (repos[].buildsys-tags)"
        )
    if wanted is None and len(families) > 1:
        raise GaError(f"release {series} has several tag families; choose --family: {families}")
    prefix = wanted or families[0]
    if prefix not in families:
        raise GaError(f"no tag family {prefix!r} in release {series}; it has {families}")
    family = Family(prefix)
    declared = service.load_desired(config).tags
    missing = [t for t in (family.candidate, family.testing, family.release) if t not in declared]
    if missing:
        raise GaError(
            f"not declared in rdoinfo's buildsys-tags: {', '.join(missing)} "
            f"(`conveyor release-branch {series}` declares them)"
        )
    return family


class _Ga:
    def __init__(
        self,
        config: Config,
        db: Database,
        request: GaRequest,
        family: Family,
        say: Callable[[str], None],
    ) -> None:
        self.config, self.db, self.request, self.family, self.say = (
            config,
            db,
            request,
            family,
            say,
        )
        self.series = request.series
        self.reason = f"release-ga {request.series}"
        self.voted: int | None = None  # the testing version the CI's votes were checked on
        self.repo_file: Path | None = None
        self.build_seconds = 0.0  # in the build driver (sources, rpmbuild, the pool)
        self.notes: list[str] = []  # of the builds that worked (requirements differ...)
        self.stored = 0  # finals found in the tag store: tagged, not built again
        self.found: SeriesStatus | None = None

    # --- the steps ----------------------------------------------------------------------------

    def status(self) -> StepOutcome:
        found = self._status()
        rows = found.rows
        counts = ", ".join(f"{k} {v}" for k, v in state_counts(rows).items())
        detail = f"{len(rows)} packages ({counts or 'none'})"
        lines = []
        if found.unpackaged:
            shown = ", ".join(found.unpackaged[:10])
            more = f" and {len(found.unpackaged) - 10} more" if len(found.unpackaged) > 10 else ""
            lines.append(f"released in {self.series}, built by no package: {shown}{more}")
        candidates = [r for r in rows if r.upstream_release and _is_candidate(r.upstream_release)]
        if candidates:
            names = ", ".join(f"{r.project} {r.upstream_release}" for r in candidates[:10])
            lines.append(f"not final yet (release candidates): {names}")
        newer = [r for r in rows if r.state == "pin-newer"]
        if newer:
            names = ", ".join(
                f"{r.project} (pinned {r.source_branch}, newest {r.upstream_release})"
                for r in newer
            )
            return StepOutcome(
                FAILED,
                f"pinned newer than any {self.series} release: {names}; fix those pins "
                f"(source-branch of the {self.series} tag) in rdoinfo",
                tuple(lines),
            )
        return StepOutcome(DONE, detail, tuple(lines))

    def pins(self) -> StepOutcome:
        pins = series_pins(
            self.request.releases, self.config.metadata.path, self.series, self._tag()
        )
        refused = refused_pins(pins, self.series)
        if refused:
            return StepOutcome(FAILED, refused)
        to_write = [p for p in pins if p.to_write]
        tags_file = service.rdoinfo_folder(self.config) / "tags" / f"{self._tag()}.yml"
        if to_write and not tags_file.is_file():
            names = ", ".join(f"{p.project} {p.release}" for p in to_write)
            return StepOutcome(
                FAILED,
                f"pins go into rdoinfo's tags/{self._tag()}.yml, which this rdoinfo does not "
                f"have (its packages list their tags where they are declared): pin {names} "
                f"there (source-branch under the {self._tag()} tag) and run release-ga again",
            )
        if self.request.dry_run:
            lines = tuple(f"would pin {p.project} to {p.release}" for p in to_write)
            return StepOutcome(PLANNED, f"{len(to_write)} pins to write", lines)
        editor = MetadataEditor(service.rdoinfo_folder(self.config))
        pairs = [(p.project, p.release) for p in to_write]
        written = editor.set_pins(self._tag(), pairs) if pairs else 0
        if written:
            self.found = None  # the pins changed what is to build
        older = [r for r in self._status().rows if r.state == "pin-older"]
        if older:
            names = ", ".join(
                f"{r.project} (pinned {r.source_branch}, final {r.upstream_release})" for r in older
            )
            return StepOutcome(
                FAILED,
                f"pinned to an older release than the final one: {names}; move each pin "
                f"(`conveyor meta set-pin PROJECT {self.series} VERSION`) or drop it",
            )
        if not written:
            return StepOutcome(DONE, f"no pin to write ({len(pins)} branchless projects)")
        lines = tuple(f"pinned {p.project} to {p.release}" for p in to_write)
        return StepOutcome(DONE, f"pinned {written} in tags/{self._tag()}.yml", lines)

    def build(self) -> StepOutcome:
        todo = [r for r in self._status().rows if r.state == "to-build"]
        if not todo:
            return StepOutcome(DONE, "every release is built")
        if self.request.dry_run:
            lines = tuple(
                f"would build {r.package} {r.upstream_release} (or tag it, if the store has it)"
                for r in todo
            )
            return StepOutcome(PLANNED, f"{len(todo)} releases to build", lines)
        built, failed = self._build_all(todo)
        notes = (*self.notes, *(line for _, lines in failed for line in lines))
        made = len(built) - self.stored
        detail = f"{made} of {len(todo)} built in {self.build_seconds:.0f} s"
        if self.stored:
            detail += f", {self.stored} taken from the store"
        if failed:
            detail += f"; failed: {', '.join(name for name, _ in failed)}"
        try:
            tag_builds(self.config, self.db, built, self.family.candidate, f"{self.reason}: builds")
        except service.ClosureRefused as exc:
            # Declared in rdoinfo, not applied: the candidate step applies them once the
            # closure holds.
            refused = _refusal(exc)
            return StepOutcome(FAILED, f"{detail}; {refused.detail}", (*refused.lines, *notes))
        detail += f", into {self.family.candidate}"
        return StepOutcome(FAILED if failed else DONE, detail, notes)

    def _build_all(
        self, todo: list[StatusRow]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, list[str]]]]:
        built: list[tuple[str, str]] = []
        failed: list[tuple[str, list[str]]] = []
        targets = release_targets(self.config)
        wanted = {row.package for row in todo}
        self.say(f"  fetching the mirrors of {len(wanted)} packages")
        unreachable = refresh_mirrors(self.config, [t for t in targets if t.name in wanted])
        for index, row in enumerate(todo, 1):
            assert row.upstream_release is not None  # to-build rows have one
            try:
                if row.package in unreachable:
                    raise ReleaseBuildError(unreachable[row.package])
                prepared = prepare_release(
                    self.config, row.package, row.upstream_release, targets=targets, fetch=False
                )
            except ReleaseBuildError as exc:
                failed.append((row.package, [f"{row.package}: {exc}"]))
                self.say(f"  [{index}/{len(todo)}] cannot build {row.package}: {exc}")
                continue
            started = time.monotonic()
            done = build_release(self.config, self.db, prepared, self.request.sync_requirements)
            self.build_seconds += time.monotonic() - started
            self.say(f"  [{index}/{len(todo)}] {done.state} {done.nvr}")
            if done.state == "failed":
                notes = done.notes.strip().splitlines()[-NOTES_LINES:]
                failed.append((row.package, [f"{done.nvr} failed:", *notes]))
            else:
                built.append((prepared.job.target.project, done.nvr))
                self.stored += done.state == "skipped"
                if done.notes and done.state != "skipped":
                    self.notes.append(f"{done.nvr}: {done.notes}")
        return built, failed

    def candidate(self) -> StepOutcome:
        return self._apply(self.family.candidate)

    def testing(self) -> StepOutcome:
        return self._promote("testing", self.family.testing)

    def criteria(self) -> StepOutcome:
        release = self._release_criteria()
        testing = self.family.testing
        if release is None:
            where = self.config.promotion_criteria or "a file named by promotion_criteria"
            return StepOutcome(
                FAILED,
                f"no release criteria: add a `release:` section with the jobs that must pass "
                f"on {testing} to {where} (`criteria: []` releases without waiting for CI)",
            )
        deadline = time.monotonic() + self.request.wait
        while True:
            with self.db.reader() as session:
                applied = newest_versions(session).get(testing)
                if applied is None:
                    return StepOutcome(FAILED, f"{testing} has no version to vote on")
                votes = tag_votes(session, testing, applied.version)
            self.voted = applied.version
            passed, missing, used = check_jobs(
                release.criteria, release.alternative_criteria, votes
            )
            where = f"{testing} version {applied.version}"
            if not missing:
                jobs = ", ".join(f"{j} (by {used[j]})" if j in used else j for j in passed)
                return StepOutcome(DONE, f"passed on {where}: {jobs or 'no job required'}")
            results = latest_results(votes)
            failed = [j for j in missing if results.get(j) is False]
            if failed:
                return StepOutcome(
                    FAILED,
                    f"failed on {where}: {', '.join(failed)} (a new passing vote lets the GA "
                    "go on)",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return StepOutcome(
                    WAITING,
                    f"waiting for {', '.join(missing)} on {where}: the CI votes with POST "
                    f"/api/tags/{testing}/report_result (version={applied.version}); run "
                    "release-ga again then",
                )
            time.sleep(min(self.request.poll, remaining))

    def release(self) -> StepOutcome:
        if self.voted is not None:
            with self.db.reader() as session:
                applied = newest_versions(session).get(self.family.testing)
            if applied is None or applied.version != self.voted:
                now = applied.version if applied else None
                return StepOutcome(
                    WAITING,
                    f"{self.family.testing} changed since its votes were counted (version "
                    f"{self.voted} → {now}): run release-ga again",
                )
        return self._promote("release", self.family.release)

    def publish(self) -> StepOutcome:
        tag = self.family.release
        with self.db.reader() as session:
            applied = newest_versions(session).get(tag)
        if applied is None:
            return StepOutcome(FAILED, f"{tag} has no version: nothing to publish")
        store = service.store_of(self.config)
        with service.exclusive(self.config, self.db):  # repairs a pointer left behind
            pointed = store.pointed_version(tag)
        if pointed != applied.version:
            return StepOutcome(FAILED, f"{tag} points at version {pointed}, not {applied.version}")
        folder = self.config.tags_dir / "repos"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{tag}.repo"
        write_atomic(path, release_repo_file(self.config, tag))
        self.repo_file = path
        lines = []
        # What installs from the release need besides it, as trunk publishes delorean-deps.
        deps = build_repos(self.config).deps_text
        if deps:
            deps_path = folder / deps_file_name(self.config.reponame)
            write_atomic(deps_path, deps)
            lines.append(f"dependencies: {deps_path}")
        return StepOutcome(
            DONE,
            f"{tag} version {applied.version}: {len(applied.content)} builds; {path}",
            tuple(lines),
        )

    # --- shared -------------------------------------------------------------------------------

    def _tag(self) -> str:
        """rdoinfo's tag of the builder's packages: the series (checked by choose_family)."""
        return self.series

    def _status(self) -> SeriesStatus:
        """The series' status, read once (the deliverables are hundreds of files) until a
        step changes rdoinfo's pins."""
        if self.found is None:
            self.found = series_release_status(
                self.request.releases, self.config.metadata.path, self.series, self._tag()
            )
        return self.found

    def _apply(self, tag: str) -> StepOutcome:
        try:
            versions = apply_declared(self.config, self.db, tag, self.reason)
        except service.ClosureRefused as exc:
            return _refusal(exc)
        if not versions:
            return StepOutcome(DONE, f"{tag} is up to date")
        new = versions[0]
        return StepOutcome(DONE, f"{tag} version {new.version}: {len(new.content)} builds")

    def _promote(self, stage: str, tag: str) -> StepOutcome:
        store = service.store_of(self.config)
        desired = service.load_desired(self.config)
        with service.exclusive(self.config, self.db), self.db.transaction() as session:
            proposal = service.propose_promotion(
                self.config, session, store, desired, stage, self.family.prefix, review_new=False
            )
        editor = MetadataEditor(service.rdoinfo_folder(self.config))
        for p in proposal.proposals:
            editor.set_buildsys_tag(p.project, p.tag, p.nvr)
        outcome = self._apply(tag)
        notes = tuple(
            [f"held back: {nvr}: {why}" for _, nvr, why in proposal.held_back]
            + [f"warning: {w}" for w in proposal.warnings]
        )
        moved = f"{len(proposal.proposals)} builds proposed; " if proposal.proposals else ""
        return StepOutcome(outcome.state, moved + outcome.detail, outcome.lines + notes)

    def _release_criteria(self) -> ReleaseCriteria | None:
        path = self.config.promotion_criteria
        return None if path is None else load_criteria(path).release


def _refusal(exc: service.ClosureRefused) -> StepOutcome:
    """The gate's refusal, with what a GA operator can do about it."""
    tags = sorted(t for t, v in exc.plan.verdicts.items() if not v.closed)
    lines = tuple(
        f"{u.package} in {tag}: nothing provides {', '.join(u.missing)}"
        for tag, verdict in sorted(exc.plan.verdicts.items())
        for u in verdict.broken
    )
    return StepOutcome(
        FAILED,
        f"the closure gate refused {', '.join(tags)}: add what is missing (a build, a "
        "lookaside repository) and run release-ga again, or override with `conveyor tags "
        "apply --tag TAG --force --reason WHY`",
        lines,
    )


def _is_candidate(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return False


def release_repo_file(config: Config, tag: str) -> str:
    """The .repo file users install from: it follows the release tag (each apply moves the
    tag), where a version's own .repo file names that immutable version."""
    return (
        f"[{tag}]\nname={tag}\nbaseurl={config.tags_baseurl}/{tag}\n"
        "enabled=1\ngpgcheck=0\npriority=1\n"
    )


# The errors a step reports as its failure (the GA stops there, and resumes later).
STEP_ERRORS = (
    TagsError,
    ReleaseBuildError,
    UCError,
    EditError,
    MetadataError,
    CriteriaError,
    ConfigError,
    OSError,
)


def run_ga(
    config: Config, db: Database, request: GaRequest, say: Callable[[str], None]
) -> GaResult:
    """Runs the GA's steps in order until one fails or waits; each is recorded in the
    series' timeline (not for a dry run, which stops after the build step's plan)."""
    family = choose_family(config, request.series, request.family)
    ga = _Ga(config, db, request, family, say)
    config.datadir.mkdir(parents=True, exist_ok=True)
    with file_lock(config.datadir / "release-ga.lock") as (_fd, locked):
        # A dry run changes nothing: it may look while another GA runs.
        if not locked and not request.dry_run:
            raise GaBusy(f"another release-ga is running on this builder ({config.datadir})")
        timeline = None if request.dry_run else Timeline(db, request.series)
        result = GaResult(timeline.run if timeline else 0, family)
        for name in GA_STEPS[:3] if request.dry_run else GA_STEPS:
            say(f"{name} …")
            step_id = timeline.start(name) if timeline else 0
            try:
                outcome = getattr(ga, name)()
            except STEP_ERRORS as exc:
                outcome = StepOutcome(FAILED, str(exc))
            except BaseException:
                if timeline:
                    timeline.end(step_id, INTERRUPTED, "stopped (interrupted or crashed)")
                raise
            if timeline:
                timeline.end(step_id, outcome.state, outcome.text)
            result.steps.append((name, outcome))
            say(f"{name}: {outcome.state}: {outcome.detail}")
            for line in outcome.lines:
                say(f"  {line}")
            if outcome.state in (FAILED, WAITING):
                break
        result.repo_file, result.build_seconds = ga.repo_file, ga.build_seconds
        return result
