"""The GA of a branched release at RDO's size: `conveyor release-ga --series flamingo` from the
first run to the published release repository, build time subtracted.

The data are real where they can be: the openstack/releases checkout's
``deliverables/flamingo`` (each repository's final flamingo version) joined, on the upstream
repository path (``conveyor.uc.releases.repo_path``), to the packages of real rdoinfo tagged
``flamingo`` (read with conveyor's own loader). Every joined package keeps its real name,
project and maintainers; what is generated is what a benchmark cannot borrow:

- an upstream git repository per package at ``<work>/opendev/<repo path>`` (so
  ``file://<work>/opendev/openstack/nova`` joins to ``openstack/nova``): a trivial Python
  project (README, setup.py, a module), its final version as an annotated tag, and the branch
  ``stable/flamingo`` at it;
- a distgit per package (branch ``flamingo-rdo``) whose trivial spec packs the tarball conveyor
  makes (noarch, no BuildRequires, no generated Requires);
- an rdoinfo folder: the packages (upstream and distgit rewritten to those ``file://`` URLs,
  rdoinfo's own pins dropped: they name commits the generated upstreams do not have),
  ``tags/flamingo.yml``, the release ``flamingo`` (``branch: flamingo-rdo``,
  ``upstream_branch: stable/flamingo``, one el9s repo with the three buildsys tags
  ``cloud9s-openstack-flamingo-candidate|testing|release``) and those tags declared empty;
- the builder's ``conveyor.toml`` (release flamingo, the stable branches, the ``bwrap`` driver,
  promotion criteria whose ``release:`` section requires the job ``stable-ci``).

The join gives fewer packages than RDO ships (rdoinfo tags many more, but only those on
opendev.org with a flamingo release join); ``--packages N`` takes the first N of the join
(sorted by project), or, above the join's size, pads it with copies of the joined packages
(``<name>-copyK``, upstream ``openstack/<repo>-copyK``) and a copy of the deliverables with one
synthetic deliverable per copy.

Measured (each a `conveyor release-ga` process, wall time around it; the builder's data folder
and rdoinfo made fresh first, so run 1 clones every mirror as a new builder would):
1. run 1: status, pins, the builds into candidate, candidate, testing; it stops waiting for the
   CI (exit 4);
2. the CI's vote on the testing tag's version (``conveyor.tags.votes.record_tag_vote``, the
   service the API calls) — not timed;
3. run 2: criteria, release, publish (exit 0);
4. run 3: nothing to do (every step finds its work done).

The JSON result's ``build_seconds`` is the time inside ``build_release`` (sources, spec, the
build driver, the RPMs into the pool); the number judged is run 1 + run 2 - builds. Per step
durations come from ``conveyor release-ga --timeline --json`` (whole seconds). The published
``<family>-release.repo`` must exist and the release tag's version must hold every package.

Goal (the GA issue): ≤ 10 min outside the builds for ~400 packages. Anchors: RDO Ocata took
2 h and Newton 10 h from the upstream GA to published repositories.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    CONVEYOR,
    RESULTS,
    ROOT,
    conveyor_version,
    load_result,
    machine,
    save_result,
    settle,
    update_docs_section,
    utc_now,
)
from bench.gitfarm import WORK
from conveyor.config import load_config
from conveyor.metadata import load_database, packages_for_release
from conveyor.publish.tagstore import TagStore
from conveyor.store.database import Database
from conveyor.tags.state import newest_versions
from conveyor.tags.votes import record_tag_vote
from conveyor.uc.releases import newest_releases, read_data, repo_path

SERIES = "flamingo"
FAMILY = "cloud9s-openstack-flamingo"
CANDIDATE, TESTING, RELEASE = (f"{FAMILY}-{s}" for s in ("candidate", "testing", "release"))
SOURCE_BRANCH = f"stable/{SERIES}"
DISTRO_BRANCH = f"{SERIES}-rdo"
CI_JOB = "stable-ci"
DATA = Path("/work/shared/data")
RELEASES = DATA / "openstack-releases-02df7c9a3"
RDOINFO = DATA / "rdoinfo-2cdac3d7e"
GOAL_S = 600.0
ANCHORS = "RDO Ocata: 2 h, Newton: 10 h from upstream GA to published repositories"
DOCS_HEADING = "GA of a release: `release-ga` of flamingo"
EXIT_WAITING = 4

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
_EPOCH = 1_759_302_000  # 2025-10-01, flamingo's GA: fixed dates, reproducible hashes

SPEC = """\
%{{!?upstream_version: %global upstream_version %{{version}}}}
%global sname {basename}

Name:           {name}
Version:        XXX
Release:        XXX
Summary:        GA benchmark package {name}
License:        ASL 2.0
Source0:        %{{sname}}-%{{upstream_version}}.tar.gz
BuildArch:      noarch
AutoReq:        no

%description
A trivial package of conveyor's GA benchmark (bench/ga.py).

%prep
%setup -q -n %{{sname}}-%{{upstream_version}}

%build

%install
install -d -m 0755 %{{buildroot}}%{{_datadir}}/%{{name}}
cp -p README.rst %{{buildroot}}%{{_datadir}}/%{{name}}/

%files
%{{_datadir}}/%{{name}}/

%changelog
"""


# --- the join ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    """A package of the GA: rdoinfo's names, its upstream repository and final release."""

    project: str
    name: str
    repo: str  # openstack/nova
    version: str
    maintainers: tuple[str, ...]
    copy_of: str | None = None  # the real repository a padding copy imitates

    @property
    def basename(self) -> str:
        return self.repo.rsplit("/", 1)[-1]


@dataclass
class Join:
    packages: list[Joined]
    tagged: int  # rdoinfo packages tagged with the series
    released: int  # repositories with a release in the series
    not_opendev: int = 0  # tagged packages whose upstream is not on opendev.org
    no_release: int = 0  # tagged packages on opendev.org with no release in the series
    pins_dropped: list[str] = field(default_factory=list)


def join(rdoinfo: Path, releases: Path) -> Join:
    """The rdoinfo packages of the series whose upstream repository has a release in it."""
    db = load_database(rdoinfo)
    tagged = packages_for_release(db, SERIES)
    newest = newest_releases(releases, SERIES)
    found = Join([], len(tagged), len(newest))
    for package in sorted(tagged, key=lambda p: p.project):
        repo = repo_path(package.upstream_url) if package.upstream_url else None
        if repo is None:
            found.not_opendev += 1
            continue
        if repo not in newest:
            found.no_release += 1
            continue
        if package.source_branch:
            found.pins_dropped.append(f"{package.project} ({package.source_branch[:12]})")
        found.packages.append(
            Joined(package.project, package.name, repo, newest[repo], package.maintainers)
        )
    return found


def sized(found: Join, count: int | None) -> list[Joined]:
    """The first `count` joined packages, or all of them padded with copies to `count`."""
    real = found.packages
    if count is None or count <= len(real):
        return real[:count]
    padded = list(real)
    for index in range(count - len(real)):
        model = real[index % len(real)]
        k = index // len(real) + 1
        padded.append(
            Joined(
                f"{model.project}-copy{k}",
                f"{model.name}-copy{k}",
                f"{model.repo}-copy{k}",
                model.version,
                model.maintainers,
                copy_of=model.repo,
            )
        )
    return padded


# --- the generated distribution ---------------------------------------------------------------


def _git(repo: Path, *args: str, when: int = _EPOCH) -> str:
    env = dict(os.environ, **_GIT_ENV)
    env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _template_upstream(path: Path) -> None:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "master")
    (path / "README.rst").write_text("A project of conveyor's GA benchmark.\n")
    (path / "setup.py").write_text("from setuptools import setup\n\nsetup()\n")
    (path / "module.py").write_text("VALUE = 1\n")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "Initial commit")
    shutil.rmtree(path / ".git" / "hooks")


def _template_distgit(path: Path) -> None:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", DISTRO_BRANCH)
    _git(path, "commit", "-q", "--allow-empty", "-m", "Initial packaging repository")
    shutil.rmtree(path / ".git" / "hooks")


def upstream_dir(work: Path, package: Joined) -> Path:
    return work / "opendev" / package.repo


def distgit_dir(work: Path, package: Joined) -> Path:
    return work / "distgit" / f"{package.project}-distgit"


def ensure_git(work: Path, packages: list[Joined]) -> float:
    """The upstreams and distgits of `packages` (made once; READY names what was made);
    returns the seconds spent making them."""
    ready = work / "READY"
    wanted = json.dumps([[p.project, p.name, p.repo, p.version] for p in packages])
    if ready.is_file() and ready.read_text() == wanted:
        return 0.0
    started = time.monotonic()
    for folder in ("template", "opendev", "distgit"):
        shutil.rmtree(work / folder, ignore_errors=True)
    ready.unlink(missing_ok=True)
    template_up, template_dg = work / "template" / "upstream", work / "template" / "distgit"
    _template_upstream(template_up)
    _template_distgit(template_dg)
    for index, package in enumerate(packages, 1):
        upstream = upstream_dir(work, package)
        shutil.copytree(template_up, upstream, symlinks=True)
        # As the release job tags and the release team branches: both at the released commit.
        _git(upstream, "tag", "-a", "-m", f"{package.basename} {package.version}", package.version)
        _git(upstream, "branch", SOURCE_BRANCH)
        distgit = distgit_dir(work, package)
        shutil.copytree(template_dg, distgit, symlinks=True)
        spec = SPEC.format(name=package.name, basename=package.basename)
        (distgit / f"{package.name}.spec").write_text(spec)
        _git(distgit, "add", "-A")
        _git(distgit, "commit", "-q", "-m", f"Package {package.name}", when=_EPOCH + index)
    ready.write_text(wanted)
    return time.monotonic() - started


def write_releases(work: Path, packages: list[Joined], real: Path) -> Path:
    """`real` when no package is a padding copy; else a copy of its series data with one
    synthetic deliverable per copy (imitating its model's deliverable)."""
    copies = [p for p in packages if p.copy_of]
    if not copies:
        return real
    tree = work / "releases"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "data").mkdir(parents=True)
    shutil.copy(real / "data" / "series_status.yaml", tree / "data")
    shutil.copytree(real / "deliverables" / SERIES, tree / "deliverables" / SERIES)
    models: dict[str, dict[str, Any]] = {}
    for path in sorted((real / "deliverables" / SERIES).glob("*.yaml")):
        data = read_data(path)
        for release in data.get("releases") or ():
            for project in release.get("projects") or ():
                models.setdefault(project.get("repo"), data)
    for package in copies:
        model = models.get(package.copy_of or "", {})
        keys = ("launchpad", "release-model", "team", "type", "stable-branch-type")
        data = {k: model[k] for k in keys if k in model}
        data["releases"] = [{"version": package.version, "projects": [{"repo": package.repo}]}]
        path = tree / "deliverables" / SERIES / f"{package.basename}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return tree


def write_rdoinfo(work: Path, packages: list[Joined]) -> Path:
    """A fresh rdoinfo folder (the GA edits it: pins, buildsys-tags declarations)."""
    info = work / "rdoinfo"
    shutil.rmtree(info, ignore_errors=True)
    (info / "tags").mkdir(parents=True)
    (info / "buildsys-tags").mkdir()
    release = {
        "name": SERIES,
        "status": "maintained",
        "branch": DISTRO_BRANCH,
        "identifier": "2025.2",
        "upstream_branch": SOURCE_BRANCH,
        "repos": [
            {
                "name": "el9s",
                "buildsys": f"cbs/{FAMILY}-el9s",
                "buildsys-tags": [CANDIDATE, TESTING, RELEASE],
            }
        ],
    }
    entries = [
        {
            "project": p.project,
            "name": p.name,
            "upstream": upstream_dir(work, p).as_uri(),
            "master-distgit": distgit_dir(work, p).as_uri(),
            "maintainers": list(p.maintainers) or ["bench@example.org"],
        }
        for p in packages
    ]
    document = {"import": ["tags.yml"], "releases": [release], "packages": entries}
    (info / "rdo.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    (info / "tags.yml").write_text(yaml.safe_dump({"import": [f"tags/{SERIES}.yml"]}))
    tagged = [{"project": p.project, "tags": {SERIES: None}} for p in packages]
    (info / "tags" / f"{SERIES}.yml").write_text(yaml.safe_dump({"packages": tagged}))
    tags = [CANDIDATE, TESTING, RELEASE]
    imports = {"import": [f"buildsys-tags/{t}.yml" for t in tags]}
    (info / "buildsys-tags.yml").write_text(yaml.safe_dump(imports))
    for tag in tags:
        (info / "buildsys-tags" / f"{tag}.yml").write_text("packages: []\n")
    return info


def write_builder(work: Path, info: Path, driver: str) -> Path:
    """A fresh builder folder: conveyor.toml, promotions.yaml, an empty data folder."""
    builder = work / "builder"
    shutil.rmtree(builder, ignore_errors=True)
    builder.mkdir(parents=True)
    (builder / "promotions.yaml").write_text(
        "# The GA benchmark's criteria: stable-ci must pass on the -testing tag.\n"
        "promotions:\n"
        "  current-passed-ci:\n"
        "    candidate_label: consistent\n"
        f"    criteria: [{CI_JOB}]\n"
        "release:\n"
        f"  criteria: [{CI_JOB}]\n"
    )
    config = builder / "conveyor.toml"
    config.write_text(
        f"# The {SERIES} builder of conveyor's GA benchmark (bench/ga.py).\n"
        f'datadir = "{builder / "data"}"\n'
        f'baseurl = "{(builder / "data" / "repos").as_uri()}"\n'
        "workers = 2\n"
        f'source_branch = "{SOURCE_BRANCH}"\n'
        f'distro_branch = "{DISTRO_BRANCH}"\n'
        "fallback_to_master = false\n"
        f'build_driver = "{driver}"\n'
        'dist = ".el9"\n'
        f'promotion_criteria = "{builder / "promotions.yaml"}"\n'
        "\n"
        "[metadata]\n"
        f'path = "{info}"\n'
        f'release = "{SERIES}"\n'
        "\n"
        "[tags]\n"
        "lookaside = []\n"
    )
    return config


# --- the measured runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class GaRun:
    seconds: float
    returncode: int
    result: dict[str, Any]

    @property
    def build_seconds(self) -> float:
        return float(self.result.get("build_seconds") or 0.0)

    def step(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.result.get("steps", ()) if s["step"] == name), None)


def run_ga(
    config: Path, releases: Path, log: Path, profile: Path | None = None, *extra: str
) -> GaRun:
    """One `conveyor release-ga --json` process: its wall time, exit status and result."""
    command = [str(CONVEYOR)]
    if profile is not None:
        python = ROOT / ".venv" / "bin" / "python"
        command = [str(python), "-m", "cProfile", "-o", str(profile), "-m", "conveyor"]
    command += [
        "release-ga",
        "--series",
        SERIES,
        "--releases",
        str(releases),
        "--config",
        str(config),
        "--json",
        *extra,
    ]
    with log.open("wb") as err:
        started = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, check=False)
        seconds = time.perf_counter() - started
    try:
        result = json.loads(done.stdout)
    except ValueError:
        log.write_bytes(log.read_bytes() + done.stdout)
        result = {}
    return GaRun(seconds, done.returncode, result)


def vote(config: Path) -> int:
    """The CI's success on the testing tag's newest version, as the API records it."""
    db = Database(load_config(config).database_url)
    try:
        with db.reader() as session:
            version = newest_versions(session)[TESTING].version
        with db.transaction() as session:
            record_tag_vote(
                session,
                TESTING,
                version,
                CI_JOB,
                True,
                "https://ci.example.org/flamingo-ga/1",
                "",
                int(time.time()),
                "ci",
            )
    finally:
        db.close()
    return version


def timeline(config: Path) -> list[dict[str, Any]]:
    command = [str(CONVEYOR), "release-ga", "--series", SERIES, "--timeline", "--json"]
    done = subprocess.run(
        [*command, "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records


def check_release(config: Path, packages: list[Joined], repo_file: str | None) -> list[str]:
    """What is wrong with the published release (nothing: an empty list)."""
    problems = []
    loaded = load_config(config)
    expected = loaded.tags_dir / "repos" / f"{RELEASE}.repo"
    if not expected.is_file() or repo_file != str(expected):
        problems.append(f"no release .repo at {expected} (the run said {repo_file})")
    db = Database(loaded.database_url)
    try:
        with db.reader() as session:
            applied = newest_versions(session).get(RELEASE)
    finally:
        db.close()
    if applied is None:
        return [*problems, f"{RELEASE} has no version"]
    content = dict(applied.content)
    missing = sorted({p.name for p in packages} - set(content))
    if missing:
        problems.append(f"{len(missing)} packages missing from {RELEASE}: {missing[:5]}")
    folder = TagStore(loaded.tags_dir).version_dir(RELEASE, applied.version)
    rpms = list(folder.rglob("*.rpm"))
    if len(rpms) < len(packages) or not (folder / "repodata" / "repomd.xml").is_file():
        problems.append(f"{folder}: {len(rpms)} RPMs for {len(packages)} packages, or no repodata")
    if not all(nvr.endswith("-1.el9") for nvr in content.values()):
        problems.append(f"{RELEASE} holds builds that are not release builds (-1.el9)")
    return problems


def step_seconds(records: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """run → step → whole seconds, from the timeline's records."""
    runs: dict[int, dict[str, int]] = {}
    for r in records:
        if r.get("ended") is not None:
            runs.setdefault(r["run"], {})[r["step"]] = int(r["ended"]) - int(r["started"])
    return runs


# --- main -------------------------------------------------------------------------------------


def _detail(run: GaRun, step: str) -> str:
    found = run.step(step)
    return f"{found['state']}: {found['detail']}" if found else "(not run)"


# Written by hand from a profile; kept in the section because a re-run does not redo it.
PROFILE_NOTES = """\
Where the time outside the builds went, and what changed (ba26fe1). Profiled at beb8d1d with
cProfile (`python -m bench.ga --profile`, the 172-package join, a busy machine), that time
grew with the square of the package count: 41 s at 172 packages, 178 s at 400, about 16 min
projected at 1,000. Its causes, each fixed since:

- `load_targets` ran once per package built (the whole rdoinfo loaded and resolved again):
  now once per GA run, handed to `prepare_release`.
- Each package's two mirrors were cloned one package after the other (six git processes,
  `asyncio.run` twice per package): now every mirror is fetched before the builds,
  `git_jobs` at a time (`refresh_mirrors`).
- Every rdoinfo edit parsed `rdo.yml` again (`MetadataEditor._commit` dropped its parsed
  files): the editor now keeps the files it did not write parsed.
- `refresh_pool` rewrote the pool's repodata after every build (hidden inside the subtracted
  build time, about 23 s at 400): now once per batch, before the gate reads it (the pool's
  metadata records which builds it was written for, so a writer killed before the refresh
  leaves it known to be behind).
- The deliverables (225 YAML files) were parsed four times a run: now once.

Measured above after those changes: 14 s at 172 packages and 34 s at 400 outside the builds
(per package 0.08 s at both sizes: linear). What is left: the builds run one at a time
(`workers` is not used by the GA), and each spec is prepared by a sandboxed Python that imports
specfile and rpm, as long as the trivial rpmbuild itself.
"""


def saved_results(joined: int) -> list[dict[str, Any]]:
    """The saved results of full-size runs (the whole join, or the join padded), by size."""
    found: list[dict[str, Any]] = []
    for path in sorted(RESULTS.glob("ga-*.json")):
        data: dict[str, Any] | None = load_result(path.stem)
        if data and not data.get("profiled") and int(data.get("packages", 0)) >= joined:
            found.append(data)
    return sorted(found, key=lambda d: int(d["packages"]))


def _seconds(data: dict[str, Any], run: int) -> float:
    return float(data["runs"][run]["seconds"])


def _size(data: dict[str, Any]) -> str:
    copies = int(data.get("padding_copies", 0))
    real = int(data["packages"]) - copies
    return f"{data['packages']}" + (f" ({real} joined + {copies} copies)" if copies else "")


def _docs(results: list[dict[str, Any]], found: Join) -> str:
    newest = max(results, key=lambda d: str(d["date"]))
    first = results[0]
    pins = ", ".join(found.pins_dropped) or "none"
    rows = []
    for d in results:
        outside = float(d["outside_builds_s"])
        verdict = "met" if outside <= GOAL_S and not d["problems"] else "NOT met"
        rows.append(
            f"| {_size(d)} | {_seconds(d, 0):.1f} s | {_seconds(d, 1):.1f} s | "
            f"{d['total_s']:.1f} s | {d['build_s']:.1f} s | **{outside:.1f} s** | "
            f"{outside / int(d['packages']):.3f} s | {_seconds(d, 2):.1f} s | "
            f"≤ {GOAL_S:.0f} s: {verdict} |"
        )
    steps = ["| step | " + " | ".join(f"{d['packages']}: run 1 / 2 / 3" for d in results) + " |"]
    steps.append("| --- |" + " --- |" * len(results))
    for name in (
        "status",
        "pins",
        "build",
        "candidate",
        "testing",
        "criteria",
        "release",
        "publish",
    ):
        cells = []
        for d in results:
            per = step_seconds(d["timeline"])
            cells.append(" / ".join(str(per.get(r, {}).get(name, "-")) for r in (1, 2, 3)))
        steps.append(f"| {name} | " + " | ".join(cells) + " |")
    checks = "; ".join(
        f"{d['packages']}: " + ("; ".join(d["problems"]) or "every package in the release tag")
        for d in results
    )
    runs = ", ".join(
        f"{d['packages']} packages {d['date']} (load {d['load_before']})" for d in results
    )
    padded = ""
    if any(d.get("padding_copies") for d in results):
        padded = (
            "\nA padded row adds copies of joined packages (each with its own upstream,\n"
            "distgit and a synthetic deliverable) to reach the issue's size."
        )
    return f"""\
Goal (the GA issue): the GA of ~400 packages, from `conveyor release-ga` to the published
release repository, ≤ {GOAL_S / 60:.0f} min outside the builds.
Anchors: {ANCHORS}.
Script: `python -m bench ga` (`bench/ga.py`, whose docstring says how the distribution is
generated; `--packages N` for another size).

Data: openstack/releases `02df7c9a3`
(`deliverables/{SERIES}`: {found.released} repositories with a {SERIES} release)
joined on the repository path to rdoinfo `2cdac3d7e`
({found.tagged} packages tagged `{SERIES}`): **{len(found.packages)} packages join**,
fewer than the issue's ~400. Of the tag, {found.not_opendev} packages are not on opendev.org
and {found.no_release} have no {SERIES} release;
{found.released - len(found.packages)} released repositories are packaged by no package
(reported by the status step).{padded}
Generated: an upstream per package (its final version tagged, `{SOURCE_BRANCH}` at it),
a distgit with a trivial noarch spec on `{DISTRO_BRANCH}`, the rdoinfo folder
(real names and projects, `file://` URLs; rdoinfo's commit pins dropped: {pins}),
the three buildsys tags declared empty, `build_driver = "{first["driver"]}"`,
promotion criteria with `release: {{criteria: [{CI_JOB}]}}`.

Included: the wall time of the `release-ga` processes, start-up included. Run 1: status, pins
(the branchless projects pinned to their final release in rdoinfo), one release build per
package into `{CANDIDATE}` (a fresh builder: every upstream and distgit mirror cloned), the
candidate and testing tags applied through the closure gate; it stops waiting for `{CI_JOB}`
(exit 4). Run 2, after the CI's vote on the testing tag's version: criteria, testing → release
through the gate, the release `.repo` published (exit 0). Subtracted: the result's
`build_seconds` (inside `build_release`: version and tarballs, the spec prepared in the sandbox,
the build driver, the RPMs into the tag store's pool and its repodata rewritten). Excluded: the
CI job and the wait for its vote, upstream's release work, people's review of rdoinfo changes.

- Runs (finished; 1-min load average before): {runs}
- Machine: {newest["machine"]}
- conveyor: {newest["conveyor"]}; `build_driver = "{newest["driver"]}"`, builds one at a time

| packages | run 1 (→ testing, exit 4) | run 2 (→ published, exit 0) | run 1 + 2 | builds | \
outside the builds | per package | nothing to do (run 3) | goal |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Against the anchors: RDO took 2 h (Ocata) and 10 h (Newton) from upstream GA to published
repositories; here the whole GA of {results[-1]["packages"]} packages, builds included, \
takes {results[-1]["total_s"] / 60:.0f} min on 2 CPUs.

Per step, from `release-ga --timeline --json` (whole seconds):

{chr(10).join(steps)}

Checked after run 2: `{RELEASE}.repo` exists and the release tag's version holds every
package, its RPMs and repodata: {checks}.

{PROFILE_NOTES}"""


def write_docs(found: Join) -> bool:
    results = saved_results(len(found.packages))
    if results:
        update_docs_section(DOCS_HEADING, _docs(results, found))
    return bool(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--packages",
        type=int,
        default=None,
        help="the first N joined packages, or the join padded with copies to N "
        "(default: every joined package)",
    )
    parser.add_argument("--driver", default="bwrap", help="build_driver of the builder")
    parser.add_argument("--releases", type=Path, default=RELEASES)
    parser.add_argument("--rdoinfo", type=Path, default=RDOINFO)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the three GA runs under cProfile (<work>/run-N.prof); no docs",
    )
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--docs-only", action="store_true", help="rewrite the docs from the saved results"
    )
    args = parser.parse_args(argv)
    if args.packages is not None and args.packages < 1:
        parser.error("--packages must be at least 1")

    work = WORK / "ga"
    work.mkdir(parents=True, exist_ok=True)
    found = join(args.rdoinfo, args.releases)
    if args.docs_only:
        return 0 if write_docs(found) else 2
    packages = sized(found, args.packages)
    copies = sum(1 for p in packages if p.copy_of)
    print(
        f"join: {len(found.packages)} packages of {found.tagged} tagged {SERIES} in rdoinfo "
        f"have one of the {found.released} repositories released in {SERIES}; using "
        f"{len(packages)}" + (f" ({copies} padding copies)" if copies else ""),
        flush=True,
    )
    made = ensure_git(work / "git", packages)
    if made:
        print(f"generated {len(packages)} upstreams and distgits in {made:.1f} s", flush=True)
    releases = write_releases(work, packages, args.releases)
    info = write_rdoinfo(work / "git", packages)
    config = write_builder(work, info, args.driver)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)

    def prof(n: int) -> Path | None:
        return work / f"run-{n}.prof" if args.profile else None

    load = settle()
    first = run_ga(config, releases, logs / "run-1.log", prof(1))
    print(
        f"run 1: exit {first.returncode} in {first.seconds:.1f} s "
        f"(builds {first.build_seconds:.1f} s); build: {_detail(first, 'build')}",
        flush=True,
    )
    # Under cProfile the exit status is lost (its runner ends with 0): the JSON's state says.
    if first.returncode != EXIT_WAITING and first.result.get("state") != "waiting":
        print(f"run 1 did not stop for the votes: {json.dumps(first.result)[:2000]}")
        print(f"log: {logs / 'run-1.log'}")
        return 2
    voted = vote(config)
    second = run_ga(config, releases, logs / "run-2.log", prof(2))
    print(f"run 2: exit {second.returncode} in {second.seconds:.1f} s", flush=True)
    if second.returncode != 0 or second.result.get("state") != "done":
        print(f"run 2 did not publish: {json.dumps(second.result)[:2000]}")
        return 2
    problems = check_release(config, packages, second.result.get("repo_file"))
    again = run_ga(config, releases, logs / "run-3.log", prof(3))
    print(f"run 3 (nothing to do): exit {again.returncode} in {again.seconds:.1f} s", flush=True)
    if again.returncode != 0:
        problems.append(f"the nothing-to-do run exited {again.returncode}")
    records = timeline(config)
    per_step = step_seconds(records)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    for run, steps in sorted(per_step.items()):
        print(f"run {run}: " + ", ".join(f"{s} {t} s" for s, t in steps.items()))

    total = first.seconds + second.seconds
    builds = first.build_seconds + second.build_seconds
    outside = total - builds
    met = outside <= GOAL_S and not problems
    print(
        f"GA of {len(packages)} packages: {total:.1f} s, builds {builds:.1f} s, outside the "
        f"builds {outside:.1f} s (goal ≤ {GOAL_S:.0f} s: {'met' if met else 'NOT met'}); "
        f"nothing to do: {again.seconds:.1f} s"
    )
    result = {
        "date": utc_now(),
        "machine": machine(),
        "conveyor": conveyor_version(),
        "load_before": load,
        "packages": len(packages),
        "joined": len(found.packages),
        "tagged": found.tagged,
        "released_repos": found.released,
        "pins_dropped": found.pins_dropped,
        "padding_copies": copies,
        "driver": args.driver,
        "runs": [
            {"seconds": r.seconds, "exit": r.returncode, "result": r.result}
            for r in (first, second, again)
        ],
        "voted_version": voted,
        "total_s": total,
        "build_s": builds,
        "outside_builds_s": outside,
        "timeline": records,
        "problems": problems,
        "profiled": args.profile,
    }
    save_result("ga-profile" if args.profile else f"ga-{len(packages)}", result)
    if args.profile:
        print(f"profiles: {work}/run-{{1,2,3}}.prof (timings inflated by the profiler)")
    elif not args.no_docs:
        write_docs(found)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
