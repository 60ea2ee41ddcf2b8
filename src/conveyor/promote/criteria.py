"""Promotion criteria: versioned YAML, reviewed in git, in the shape RDO's promoter uses
(reference/peers.md section 2.2), plus a per-component form.

    version: 1                      # optional; the only version there is
    latest_hashes_count: 100        # optional: how many candidates are looked at (RDO's key)
    promotions:                     # targets of the whole trunk
      ci-testing:
        candidate_label: consistent
        criteria: []                # no jobs: the newest candidate is promoted
      current-passed-ci:
        candidate_label: ci-testing
        criteria: [job-a, job-b]
        alternative_criteria:       # job-a is also satisfied by job-a-internal
          job-a: [job-a-internal]
    components:                     # per-component targets: labels under component/<name>/
      compute:
        component-ci-testing:
          candidate_label: consistent
          criteria: [compute-job]
    release:                        # a stable builder's GA (`conveyor release-ga`): the jobs
      criteria: [stable-job]        # that must pass on the -testing buildsys tag's version
      alternative_criteria: {}      # before it is moved to -release

A target is promoted from its candidate label; a target whose candidate label is another
target's name (same component) is chained after it. The names `current` and `consistent` are
the builder's and cannot be targets. Everything is checked; an error names file:line and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.domain.labels import check_promotion_label, previous_label
from conveyor.domain.names import InvalidName, check_component, check_label
from conveyor.metadata.errors import MetadataError
from conveyor.metadata.safeyaml import YamlDocument, parse_yaml

CRITERIA_VERSION = 1
DEFAULT_LATEST_HASHES_COUNT = 100
# Big enough for any sane criteria file; a bigger one is a mistake or an attack.
MAX_FILE_BYTES = 4 * 1024 * 1024

_TOP_KEYS = frozenset({"version", "latest_hashes_count", "promotions", "components", "release"})
_TARGET_KEYS = frozenset({"candidate_label", "criteria", "alternative_criteria"})
_RELEASE_KEYS = frozenset({"criteria", "alternative_criteria"})


class CriteriaError(Exception):
    """The criteria file cannot be used; the message starts with `file[:line]:` and the key."""


@dataclass(frozen=True)
class PromotionTarget:
    """One label to move: from which label its candidates come, and which jobs must pass."""

    name: str
    candidate_label: str
    criteria: tuple[str, ...] = ()
    alternative_criteria: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    component: str | None = None

    @property
    def key(self) -> str:
        """How messages name it: `name` or `component/name`."""
        return f"{self.component}/{self.name}" if self.component else self.name

    @property
    def previous(self) -> str:
        return previous_label(self.name)


@dataclass(frozen=True)
class ReleaseCriteria:
    """The jobs that must pass on a -testing buildsys tag's version before GA moves it to
    -release: the stable promotion, voted on the tag's repository as trunk repos are."""

    criteria: tuple[str, ...]
    alternative_criteria: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Criteria:
    path: Path | None
    targets: tuple[PromotionTarget, ...]  # in evaluation order: chained targets after their source
    latest_hashes_count: int = DEFAULT_LATEST_HASHES_COUNT
    version: int = CRITERIA_VERSION
    release: ReleaseCriteria | None = None

    def target(self, name: str, component: str | None = None) -> PromotionTarget | None:
        for target in self.targets:
            if target.name == name and target.component == component:
                return target
        return None


class _Reader:
    def __init__(self, document: YamlDocument) -> None:
        self.doc = document

    def fail(self, key: str, message: str, line: int | None = None) -> CriteriaError:
        where = f"{self.doc.path}:{line}" if line is not None else str(self.doc.path)
        return CriteriaError(f"{where}: {key}: {message}")

    def line_of(self, section: str, key: Any) -> int | None:
        return self.doc.section_key_lines.get(section, {}).get(key, self.doc.key_lines.get(section))

    def names(self, value: Any, key: str, line: int | None) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "must be a list of job names", line)
        jobs: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip() or item != item.strip():
                raise self.fail(key, f"job name {item!r} must be a non-empty string", line)
            if len(item) > 256:
                raise self.fail(key, f"job name {item[:40]!r}... is longer than 256", line)
            if item in jobs:
                raise self.fail(key, f"job {item!r} is listed twice", line)
            jobs.append(item)
        return tuple(jobs)

    def target(
        self, name: Any, body: Any, key: str, line: int | None, component: str | None
    ) -> PromotionTarget:
        if not isinstance(name, str):
            raise self.fail(key, f"target name {name!r} must be a string", line)
        try:
            check_promotion_label(name)
        except InvalidName as exc:
            raise self.fail(key, str(exc), line) from None
        if not isinstance(body, dict):
            raise self.fail(key, "must be a mapping with candidate_label and criteria", line)
        unknown = sorted(str(k) for k in body if k not in _TARGET_KEYS)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", "unknown key", line)
        candidate = body.get("candidate_label")
        if not isinstance(candidate, str):
            raise self.fail(f"{key}.candidate_label", "required, a label name", line)
        try:
            check_label(candidate)
        except InvalidName as exc:
            raise self.fail(f"{key}.candidate_label", str(exc), line) from None
        if candidate == name:
            raise self.fail(f"{key}.candidate_label", "a target cannot be its own candidate", line)
        if "criteria" not in body:
            raise self.fail(
                f"{key}.criteria", "required (an empty list promotes every candidate)", line
            )
        jobs = self.names(body["criteria"], f"{key}.criteria", line)
        alternatives = self.alternatives(body, jobs, key, line)
        return PromotionTarget(name, candidate, jobs, alternatives, component)

    def alternatives(
        self, body: dict[Any, Any], jobs: tuple[str, ...], key: str, line: int | None
    ) -> dict[str, tuple[str, ...]]:
        what = "release's" if key == "release" else "target's"
        raw = body.get("alternative_criteria") or {}
        if not isinstance(raw, dict):
            raise self.fail(f"{key}.alternative_criteria", "must map a job to a list of jobs", line)
        alternatives: dict[str, tuple[str, ...]] = {}
        for job, alts in raw.items():
            alt_key = f"{key}.alternative_criteria.{job}"
            if job not in jobs:
                raise self.fail(alt_key, f"not one of the {what} criteria", line)
            alternatives[job] = self.names(alts, alt_key, line)
        return alternatives

    def release(self, body: Any) -> ReleaseCriteria | None:
        if body is None:
            return None
        line = self.doc.key_lines.get("release")
        if not isinstance(body, dict):
            raise self.fail("release", "must be a mapping with criteria", line)
        unknown = sorted(str(k) for k in body if k not in _RELEASE_KEYS)
        if unknown:
            raise self.fail(f"release.{unknown[0]}", "unknown key", line)
        if "criteria" not in body:
            raise self.fail("release.criteria", "required (an empty list waits for no job)", line)
        jobs = self.names(body["criteria"], "release.criteria", line)
        return ReleaseCriteria(jobs, self.alternatives(body, jobs, "release", line))

    def targets(
        self, section: Any, key: str, line: int | None, component: str | None
    ) -> list[PromotionTarget]:
        if section is None:
            return []
        if not isinstance(section, dict):
            raise self.fail(key, "must map target labels to their criteria", line)
        found = []
        for name, body in section.items():
            target_line = line
            if component is None:
                target_line = self.line_of(key, name)
            found.append(self.target(name, body, f"{key}.{name}", target_line, component))
        return found

    def read(self) -> Criteria:
        data = self.doc.data
        unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
        if unknown:
            raise self.fail(unknown[0], "unknown key", self.doc.key_lines.get(unknown[0]))
        version = data.get("version", CRITERIA_VERSION)
        if version != CRITERIA_VERSION or isinstance(version, bool):
            raise self.fail(
                "version",
                f"unsupported version {version!r} (supported: {CRITERIA_VERSION})",
                self.doc.key_lines.get("version"),
            )
        count = data.get("latest_hashes_count", DEFAULT_LATEST_HASHES_COUNT)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10_000:
            raise self.fail(
                "latest_hashes_count",
                "must be an integer from 1 to 10000",
                self.doc.key_lines.get("latest_hashes_count"),
            )
        targets = self.targets(
            data.get("promotions"), "promotions", self.doc.key_lines.get("promotions"), None
        )
        components = data.get("components")
        if components is not None:
            if not isinstance(components, dict):
                raise self.fail(
                    "components",
                    "must map components to their targets",
                    self.doc.key_lines.get("components"),
                )
            for component, section in components.items():
                key = f"components.{component}"
                line = self.line_of("components", component)
                try:
                    check_component(component)
                except InvalidName as exc:
                    raise self.fail(key, str(exc), line) from None
                targets += self.targets(section, key, line, component)
        if not targets:
            raise self.fail("promotions", "no target defined", self.doc.key_lines.get("promotions"))
        try:
            ordered = evaluation_order(targets)
        except ValueError as exc:
            raise self.fail("promotions", str(exc)) from None
        release = self.release(data.get("release"))
        return Criteria(self.doc.path, tuple(ordered), count, version, release)


def evaluation_order(targets: list[PromotionTarget]) -> list[PromotionTarget]:
    """File order, except that a target chained on another (its candidate label is the other's
    name, same component) comes after it; a target of the whole trunk also comes after the
    component targets it aggregates (those named as its candidate label). A cycle is an
    error."""
    by_key = {(t.component, t.name): t for t in targets}
    by_name: dict[str, list[PromotionTarget]] = {}
    for t in targets:
        if t.component is not None:
            by_name.setdefault(t.name, []).append(t)
    ordered: list[PromotionTarget] = []
    state: dict[tuple[str | None, str], str] = {}

    def visit(target: PromotionTarget, chain: list[str]) -> None:
        key = (target.component, target.name)
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise ValueError(f"chained targets form a cycle: {' -> '.join([*chain, target.key])}")
        state[key] = "visiting"
        sources = [by_key.get((target.component, target.candidate_label))]
        if target.component is None:
            sources += by_name.get(target.candidate_label, [])
        for source in sources:
            if source is not None:
                visit(source, [*chain, target.key])
        state[key] = "done"
        ordered.append(target)

    for target in targets:
        visit(target, [])
    return ordered


def parse_criteria(text: bytes, path: Path) -> Criteria:
    try:
        document = parse_yaml(text, path)
    except MetadataError as exc:
        raise CriteriaError(str(exc)) from None
    return _Reader(document).read()


def load_criteria(path: Path) -> Criteria:
    try:
        with path.open("rb") as stream:
            text = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CriteriaError(f"{path}: cannot read the promotion criteria: {exc.strerror}") from None
    if len(text) > MAX_FILE_BYTES:
        raise CriteriaError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    return parse_criteria(text, path)
