"""Preparing a distgit spec for a trunk build, as DLRN's build script does (dlrn.md section 5),
but with `specfile` instead of sed so a spec's structure is respected.

A distgit's spec is not trusted, and rpm runs a spec's `%(...)` snippets and Lua while it
parses. So specfile parses with `sanitize=True` (it removes shell expansions, impure Lua and
`%include` before rpm sees the text), and, where bubblewrap works, in a worker process inside
the sandbox (`conveyor.builders.bwrap`), never in conveyor's own: the sanitizer filters text,
and rpm's macro language can rebuild what it removed (with specfile 0.41,
`%{expand:%%(touch x)}` still runs `touch`). Without bubblewrap, the sanitized parse runs in
conveyor's process, as the best that host allows.
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import specfile
from specfile.macro_definitions import CommentOutStyle, MacroDefinition
from specfile.sanitizer import Sanitizer
from specfile.specfile import Specfile
from specfile.tags import Comments

import conveyor
from conveyor.builders import bwrap
from conveyor.domain.version import BuildVersion


class SpecError(Exception):
    """The spec cannot be prepared; the message names the spec file and what is wrong."""


@dataclass(frozen=True)
class PreparedSpec:
    path: Path
    name: str
    nvr: str


def _macro(name: str, body: str, is_global: bool = True) -> MacroDefinition:
    return MacroDefinition(name, body, is_global, False, CommentOutStyle.DNL, ("", " ", " ", ""))


_REQUIRED_TAGS = ("Name", "Version", "Release")


def choose_spec(package: str, names: Iterable[str]) -> str:
    """Which of a distgit's files is the package's spec: `<package>.spec`, else the only one,
    else the only `*.spec.j2` template (an rpm-packaging style distgit, which DLRN renders
    with renderspec: so does `renderspec.render_spec`)."""
    names = list(names)
    specs = sorted(name for name in names if name.endswith(".spec"))
    preferred = f"{package}.spec"
    if preferred in specs:
        return preferred
    templates = sorted(name for name in names if name.endswith(".spec.j2"))
    if not specs and len(templates) == 1:
        return templates[0]
    if len(specs) != 1:
        raise SpecError(f"distgit of {package}: expected one .spec file, found {len(specs)}")
    return specs[0]


def _read_spec(spec_path: Path) -> str:
    try:
        return spec_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{spec_path.name}: cannot read spec: {exc}") from None


def _check_required_tags(spec_path: Path, text: str) -> None:
    """Name the missing tag ourselves; rpm would only say the parse failed."""
    lines = text.splitlines()
    present = {line.split(":", 1)[0].strip().lower() for line in lines if ":" in line}
    for tag in _REQUIRED_TAGS:
        if tag.lower() not in present:
            raise SpecError(f"{spec_path.name}: no '{tag}:' tag")


# rpm's macro context is global to the process and specfile captures rpm's stderr at the
# file-descriptor level: two threads preparing specs at once corrupt both.
_RPM_LOCK = threading.Lock()
# A spec's own code may loop while rpm parses it.
PREPARE_TIMEOUT = 300.0
# Where the sandboxed worker finds conveyor and specfile (read-only, code only).
_PYTHON_INSIDE = Path("/opt/conveyor/python")
_WORKER = (
    f"import sys; sys.path.insert(0, {str(_PYTHON_INSIDE)!r}); "
    "from conveyor.builders.spec import _worker; _worker()"
)


def prepare_spec(
    spec_path: Path, version: BuildVersion, tarball: str, keep_changelog: bool
) -> PreparedSpec:
    """Fill Version/Release, inject the DLRN macros, point Source0 at `tarball`, in place."""
    text = _read_spec(spec_path)
    _check_required_tags(spec_path, text)
    request: dict[str, Any] = {
        "text": text,
        "version": version.version,
        "release": version.release,
        "upstream_version": version.upstream_version,
        "tarball": tarball,
        "keep_changelog": keep_changelog,
    }
    answer = run_parser(spec_path, "prepare", request)
    name = answer["name"]
    try:
        nvr = version.nvr(name)
    except ValueError as exc:  # the Name comes from the spec: check it here, not in the worker
        raise SpecError(f"{spec_path.name}: {exc}") from None
    spec_path.write_text(answer["text"], encoding="utf-8")
    return PreparedSpec(spec_path, name, nvr)


def _prepare_text(
    text: str,
    version: str,
    release: str,
    upstream_version: str,
    tarball: str,
    keep_changelog: bool,
) -> dict[str, str]:
    """The prepared spec's text and Name, or an error: the part that parses the spec."""
    build = BuildVersion(version, release, upstream_version)
    with tempfile.TemporaryDirectory(prefix="conveyor-spec-") as sourcedir:
        try:
            spec = Specfile(content=text, sourcedir=sourcedir, autosave=False, sanitize=True)
        except Exception as exc:  # specfile raises many kinds while parsing; all mean "bad spec"
            return {"error": f"cannot parse spec: {exc}"}
        with spec.tags() as tags:
            tags.version.value = build.version
            tags.release.value = f"{build.release}%{{?dist}}"
        try:
            name = spec.expanded_name
            nvr = build.nvr(name)
        except Exception as exc:
            return {"error": f"cannot expand Name: {exc}"}
        with spec.macro_definitions() as macros:
            # Defined first so `%{!?upstream_version: ...}` in the spec header sees it.
            macros.insert(0, _macro("dlrn_nvr", nvr))
            macros.insert(0, _macro("dlrn", "1"))
            macros.insert(0, _macro("upstream_version", build.upstream_version, is_global=False))
        with spec.sources() as sources:
            if not sources:
                return {"error": "no Source0 to point at the upstream tarball"}
            sources[0].location = tarball
        if not keep_changelog:
            with spec.sections() as sections:
                if "changelog" in sections:
                    sections.changelog.clear()
        return {"text": str(spec), "name": name}


def _parse_text(text: str, sourcedir: str) -> Specfile | str:
    try:
        return Specfile(content=text, sourcedir=sourcedir, autosave=False, sanitize=True)
    except Exception as exc:  # specfile raises many kinds while parsing; all mean "bad spec"
        return f"cannot parse spec: {exc}"


def _requires_text(text: str) -> dict[str, Any]:
    """The spec's source Name and Version and every package's requires (name, flags,
    version), as rpm parses the sanitized text."""
    import rpm

    with tempfile.TemporaryDirectory(prefix="conveyor-spec-") as folder:
        path = Path(folder) / "package.spec"
        path.write_text(Sanitizer.sanitize(text)[0], encoding="utf-8")
        with tempfile.TemporaryFile("w+") as log:
            rpm.setLogFile(log)
            try:
                parsed = rpm.spec(str(path))
            except ValueError:
                log.seek(0)
                details = " ".join(line.strip() for line in log if line.strip())
                return {"error": f"cannot parse spec: {details or 'rpm refused it'}"}
            finally:
                rpm.setLogFile(sys.__stderr__)
    packages = [p.header for p in parsed.packages]
    requires = [
        [str(name), int(flags), str(version)]
        for h in packages
        for name, flags, version in zip(
            h[rpm.RPMTAG_REQUIRENAME],
            h[rpm.RPMTAG_REQUIREFLAGS],
            h[rpm.RPMTAG_REQUIREVERSION],
            strict=True,
        )
    ]
    source = parsed.sourceHeader
    return {
        "name": str(source[rpm.RPMTAG_NAME]),
        "version": str(source[rpm.RPMTAG_VERSION]),
        "release": str(source[rpm.RPMTAG_RELEASE]),
        "own": [str(h[rpm.RPMTAG_NAME]) for h in packages],
        "requires": requires,
    }


def _package_tags_text(text: str) -> dict[str, Any]:
    """The tags of the spec's package sections: [section, index, name, value, valid,
    expanded value]."""
    with tempfile.TemporaryDirectory(prefix="conveyor-spec-") as sourcedir:
        spec = _parse_text(text, sourcedir)
        if isinstance(spec, str):
            return {"error": spec}
        rows: list[list[Any]] = []
        with spec.sections() as sections:
            ids = [s.id for s in sections if s.name == "package"]
        for section in ids:
            with spec.tags(section) as tags:
                for index, tag in enumerate(tags):
                    expanded = tag.expanded_value or tag.value
                    rows.append([section, index, tag.name, tag.value, tag.valid, expanded])
        return {"tags": rows}


def _edit_tags_text(text: str, edits: list[list[Any]]) -> dict[str, Any]:
    """`text` with tags edited, each edit [section, index, value]: value a string sets the
    tag's value, None deletes it, a list inserts copies of the tag (without its comments)
    after it with those values. Indexes are those of the unedited spec."""
    with tempfile.TemporaryDirectory(prefix="conveyor-spec-") as sourcedir:
        spec = _parse_text(text, sourcedir)
        if isinstance(spec, str):
            return {"error": spec}
        for section in sorted({edit[0] for edit in edits}):
            mine = [edit for edit in edits if edit[0] == section]
            # From the bottom up (an insertion after its own line's change): each edit
            # moves only the lines below it, all done.
            mine.sort(key=lambda e: e[1] + (0.5 if isinstance(e[2], list) else 0), reverse=True)
            with spec.tags(section) as tags:
                for _, index, value in mine:
                    if isinstance(value, list):
                        for offset, written in enumerate(value, 1):
                            tag = copy.copy(tags[index])
                            tag.value = written
                            tag.comments = Comments()
                            tags.insert(index + offset, tag)
                    elif value is None:
                        del tags[index]
                    else:
                        tags[index].value = value
        return {"text": str(spec)}


_TASKS: dict[str, tuple[Any, frozenset[str]]] = {
    "prepare": (_prepare_text, frozenset({"text", "name"})),
    "requires": (_requires_text, frozenset({"name", "version", "release", "own", "requires"})),
    "tags": (_package_tags_text, frozenset({"tags"})),
    "edit": (_edit_tags_text, frozenset({"text"})),
}


def run_parser(spec_path: Path, task: str, request: dict[str, Any]) -> dict[str, Any]:
    """Parse an untrusted spec's text with `task` (one of `_TASKS`): in the sandbox where
    bubblewrap works, else sanitized in this process. The answer, or SpecError."""
    if bwrap.problem() is None:
        try:
            answer = _prepare_in_sandbox(spec_path, {"task": task, "request": request})
        except (bwrap.SandboxError, OSError, shutil.Error) as exc:
            raise SpecError(f"{spec_path.name}: cannot start the sandbox: {exc}") from None
    else:
        with _RPM_LOCK:
            answer = _TASKS[task][0](**request)
    if "error" in answer:
        raise SpecError(f"{spec_path.name}: {answer['error']}")
    return dict(answer)


def _worker() -> None:
    """The sandboxed side of `_prepare_in_sandbox`: a task and its request on stdin, the
    answer as the last line of stdout."""
    order = json.loads(sys.stdin.read())
    answer = _TASKS[order["task"]][0](**order["request"])
    sys.stdout.write("\n" + json.dumps(answer) + "\n")


def _prepare_in_sandbox(spec_path: Path, order: dict[str, Any]) -> dict[str, Any]:
    sandbox = bwrap.Sandbox(
        readonly=python_mounts(),
        limits=bwrap.Limits(processes=64, cpu_seconds=int(PREPARE_TIMEOUT)),
        cwd=Path("/tmp"),  # noqa: S108 - the sandbox's private tmpfs
    )
    interpreter = os.path.realpath(sys.executable)
    proc = sandbox.popen(
        [interpreter, "-I", "-B", "-c", _WORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    what = f"{spec_path.name}: the sandboxed spec parser"
    answer, err = ask_worker(proc, order, PREPARE_TIMEOUT, what)
    try:
        if "error" in answer:
            if not isinstance(answer["error"], str):
                raise ValueError("not an answer")
        elif not _TASKS[order["task"]][1] <= answer.keys():
            raise ValueError("not an answer")
        if order["task"] == "prepare" and not all(isinstance(v, str) for v in answer.values()):
            raise ValueError("not an answer")
    except ValueError:
        raise worker_failed(proc, err, what) from None
    return answer


def ask_worker(
    proc: subprocess.Popen[str], request: Any, timeout: float, what: str
) -> tuple[dict[str, Any], str]:
    """Send a worker (its own process group) its JSON request and read the JSON object its
    last output line holds; the worker's stderr comes back for the caller's messages. A
    worker past `timeout` is killed with everything it started."""
    try:
        out, err = proc.communicate(json.dumps(request), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SpecError(f"{what} took more than {timeout:.0f} s") from None
    try:
        answer = json.loads(out.rstrip("\n").rpartition("\n")[2])
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise worker_failed(proc, err, what)
    return answer, err


def worker_failed(proc: subprocess.Popen[str], err: str, what: str) -> SpecError:
    detail = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return SpecError(f"{what} failed: {detail}")


PYTHON_INSIDE = _PYTHON_INSIDE  # for other sandboxed Python workers (builders.renderspec)


@functools.cache
def python_mounts(*extra: ModuleType) -> tuple[tuple[Path, Path], ...]:
    """conveyor's and specfile's packages, and the `extra` ones, mounted where a worker
    imports them from; the interpreter's own tree too when it is not under /usr (the sandbox
    has /usr)."""
    mounts = []
    for package in (conveyor, specfile, *extra):
        folder = Path(package.__file__ or "").parent
        mounts.append((_reachable_copy(folder), _PYTHON_INSIDE / folder.name))
    if not Path(os.path.realpath(sys.executable)).is_relative_to("/usr"):
        prefix = Path(sys.base_prefix)
        mounts.append((_reachable_copy(prefix), prefix))
    return tuple(mounts)


def _reachable_copy(folder: Path) -> Path:
    """`folder`, or a copy of it the sandbox user can reach (for conveyor run as root from a
    private folder); the copy lasts as long as the process."""
    if bwrap.reachable(folder):
        return folder
    scratch = bwrap.make_scratch()
    atexit.register(bwrap.remove_scratch, scratch)
    copy = scratch / folder.name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _, files in os.walk(scratch):
        # Readable by the sandbox's user; writable by conveyor's alone. Code only.
        Path(root).chmod(0o755)
        for name in files:
            (Path(root) / name).chmod(0o644)
    return copy
