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
from typing import Any

import specfile
from specfile.macro_definitions import CommentOutStyle, MacroDefinition
from specfile.specfile import Specfile

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
    """Which of a distgit's files is the package's spec: `<package>.spec`, else the only one."""
    specs = sorted(name for name in names if name.endswith(".spec"))
    preferred = f"{package}.spec"
    if preferred in specs:
        return preferred
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
    if bwrap.problem() is None:
        try:
            answer = _prepare_in_sandbox(spec_path, request)
        except (bwrap.SandboxError, OSError, shutil.Error) as exc:
            raise SpecError(f"{spec_path.name}: cannot start the sandbox: {exc}") from None
    else:
        with _RPM_LOCK:
            answer = _prepare_text(**request)
    if "error" in answer:
        raise SpecError(f"{spec_path.name}: {answer['error']}")
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


def _worker() -> None:
    """The sandboxed side of `_prepare_in_sandbox`: a request on stdin, the answer as the
    last line of stdout."""
    answer = _prepare_text(**json.loads(sys.stdin.read()))
    sys.stdout.write("\n" + json.dumps(answer) + "\n")


def _prepare_in_sandbox(spec_path: Path, request: dict[str, Any]) -> dict[str, str]:
    sandbox = bwrap.Sandbox(
        readonly=_python_mounts(),
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
    try:
        out, err = proc.communicate(json.dumps(request), timeout=PREPARE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SpecError(
            f"{spec_path.name}: parsing the spec took more than {PREPARE_TIMEOUT:.0f} s"
        ) from None
    try:
        answer = json.loads(out.rstrip("\n").rpartition("\n")[2])
        if not isinstance(answer, dict) or not all(isinstance(v, str) for v in answer.values()):
            raise ValueError("not an answer")
        if "error" not in answer and not {"text", "name"} <= answer.keys():
            raise ValueError("not an answer")
    except ValueError:
        detail = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise SpecError(f"{spec_path.name}: the sandboxed spec parser failed: {detail}") from None
    return answer


@functools.cache
def _python_mounts() -> tuple[tuple[Path, Path], ...]:
    """conveyor's and specfile's packages, mounted where the worker imports them from; the
    interpreter's own tree too when it is not under /usr (the sandbox has /usr)."""
    mounts = []
    for package in (conveyor, specfile):
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
