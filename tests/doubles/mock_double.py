#!/usr/bin/env python3
"""TEST DOUBLE of mock (mock and a CentOS root cannot run on this Debian machine).

It accepts the command lines conveyor's `mock` driver runs, reads the configuration as mock
does (a Python file with `include()` and `config_opts`), and builds with the host's real
rpmbuild, defining the configuration's macros. What mock does in a chroot, it imitates:
- BuildRequires are "installed" from the local (file://) repositories of dnf.conf: each
  one must be provided by an RPM there, else it fails as mock does (exit 30);
- the result folder gets the RPMs and mock's logs: build.log (rpmbuild's output),
  root.log (the repositories and what was installed), state.log.
Each call is also recorded in `<resultdir>/double-call.json` for the tests.
"""

from __future__ import annotations

import argparse
import configparser
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

BUILD_ERROR = 30  # mock's exit code for a failed build


def load_config(path: Path) -> dict[str, Any]:
    opts: dict[str, Any] = defaultdict(dict)
    opts["macros"] = {}
    opts["dnf.conf"] = ""

    def include(name: str) -> None:
        run(Path(name))

    def run(file: Path) -> None:
        code = compile(file.read_text(encoding="utf-8"), str(file), "exec")
        exec(code, {"config_opts": opts, "include": include})

    run(path)
    return opts


def provided(config: dict[str, Any]) -> tuple[dict[str, Path], list[str]]:
    """What the local repositories of dnf.conf provide (name: the RPM), and their ids."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(config["dnf.conf"])
    names: dict[str, Path] = {}
    for section in parser.sections():
        url = parser.get(section, "baseurl", fallback="")
        if not url.startswith("file://"):
            continue
        folder = Path(urllib.parse.unquote(url[len("file://") :]))
        for rpm in sorted(folder.rglob("*.rpm")):
            if rpm.name.endswith(".src.rpm"):
                continue
            out = subprocess.run(
                ["rpm", "-qp", "--provides", str(rpm)], capture_output=True, text=True, check=True
            ).stdout
            names.update((line.split()[0], rpm) for line in out.splitlines() if line.strip())
    return names, parser.sections()


def install(rpms: list[Path], root: Path) -> None:
    """Unpacks the RPMs into `root`, the double's stand-in for mock's chroot."""
    for rpm in rpms:
        with rpm.open("rb") as stream:
            archive = subprocess.run(
                ["rpm2archive", "-"], stdin=stream, capture_output=True, check=True
            ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")


def build_requires(srpm: Path) -> list[str]:
    out = subprocess.run(
        ["rpm", "-qp", "--requires", str(srpm)], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[0] for line in out.splitlines() if not line.startswith("rpmlib(")]


def main() -> int:
    parser = argparse.ArgumentParser(prog="mock")
    parser.add_argument("-r", "--root", required=True)
    parser.add_argument("--uniqueext", default="")
    parser.add_argument("--resultdir", required=True, type=Path)
    parser.add_argument("--buildsrpm", action="store_true")
    parser.add_argument("--spec", type=Path)
    parser.add_argument("--sources", type=Path)
    parser.add_argument("--rebuild", type=Path)
    args = parser.parse_args()
    config_path = Path(args.root)
    if not config_path.is_file():
        print(f"ERROR: Could not find required config file: {config_path}", file=sys.stderr)
        return 5
    config = load_config(config_path)
    results: Path = args.resultdir
    results.mkdir(parents=True, exist_ok=True)
    (results / "double-call.json").write_text(
        json.dumps({"argv": sys.argv[1:], "root": config.get("root"), "macros": config["macros"]})
    )
    state = ["INFO: Start: init plugins", f"INFO: root {config.get('root')}-{args.uniqueext}"]
    defines = [a for k, v in config["macros"].items() for a in ("--define", f"{k[1:]} {v}")]
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as top:
        folders = [f"--define=_topdir {top}"]
        if args.buildsrpm:
            command = ["rpmbuild", "-bs", "--nodeps", *folders, *defines]
            command += [f"--define=_sourcedir {args.sources}", str(args.spec)]
        else:
            names, repos = provided(config)
            wanted = build_requires(args.rebuild)
            root_log = [f"DEBUG: repositories: {' '.join(repos)}"]
            missing = [w for w in wanted if w not in names]
            if missing:
                root_log.append(f"No matching package to install: {' '.join(missing)}")
                (results / "root.log").write_text("\n".join(root_log) + "\n")
                (results / "state.log").write_text("\n".join(state) + "\nERROR: deps\n")
                return BUILD_ERROR
            root_log.append(f"DEBUG: installed BuildRequires: {' '.join(wanted)}")
            install([names[w] for w in wanted], Path(top) / "root")
            env["PATH"] = f"{Path(top) / 'root' / 'usr' / 'bin'}:{env['PATH']}"
            (results / "root.log").write_text("\n".join(root_log) + "\n")
            command = ["rpmbuild", "--rebuild", "--nodeps", *folders, *defines, str(args.rebuild)]
        build = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        (results / "build.log").write_text(build.stdout + build.stderr)
        (results / "state.log").write_text("\n".join(state) + "\nINFO: Finish: build\n")
        if build.returncode != 0:
            print("ERROR: Exception(...) Config(...) - see build.log", file=sys.stderr)
            return BUILD_ERROR
        for rpm in [*Path(top, "SRPMS").glob("*.rpm"), *Path(top, "RPMS").rglob("*.rpm")]:
            shutil.copy(rpm, results / rpm.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
