#!/usr/bin/env python3
"""TEST DOUBLE of the `koji` command line (no Koji hub runs on this machine).

It keeps a hub's tag state in the JSON file named by $KOJI_DOUBLE_STATE and answers the
subcommands conveyor's Koji backend runs, with Koji's rules that matter to it: a build must
be in the hub (`builds` of the state) and its package in the tag's package list before it
can be tagged; untagging a build that is not tagged fails. Every call is appended to
`calls` in the state, and $KOJI_DOUBLE_FAIL_ON (a subcommand name) makes that subcommand
fail once, as a hub that went away would.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def name_of(nvr: str) -> str:
    return nvr.rsplit("-", 2)[0]


def main(argv: list[str]) -> int:
    path = Path(os.environ["KOJI_DOUBLE_STATE"])
    state: dict[str, Any] = json.loads(path.read_text())
    state.setdefault("calls", []).append(argv)
    tags: dict[str, dict[str, Any]] = state.setdefault("tags", {})
    command, args = argv[0], argv[1:]
    fail_on = os.environ.get("KOJI_DOUBLE_FAIL_ON")
    try:
        if fail_on == command and not state.get("failed"):
            state["failed"] = True
            print("Error: [Errno 111] Connection refused", file=sys.stderr)
            return 1
        if command == "list-tagged":
            for nvr in sorted(tags.get(args[-1], {}).get("builds", [])):
                print(f"{nvr}  {args[-1]}  rdo")
        elif command == "list-pkgs":
            for name in sorted(tags.get(args[-1], {}).get("packages", [])):
                print(f"{name}  {args[-1]}  rdo")
        elif command == "add-pkg":
            tag, names = args[1], args[2:]
            entry = tags.setdefault(tag, {"builds": [], "packages": []})
            entry["packages"] = sorted(set(entry["packages"]) | set(names))
        elif command == "tag-build":
            tag, nvrs = args[0], args[1:]
            entry = tags.setdefault(tag, {"builds": [], "packages": []})
            for nvr in nvrs:
                if nvr not in state.get("builds", []):
                    print(f"No such build: {nvr}", file=sys.stderr)
                    return 1
                if name_of(nvr) not in entry["packages"]:
                    print(f"Package {name_of(nvr)} not in list for tag {tag}", file=sys.stderr)
                    return 1
                if nvr in entry["builds"]:
                    print(f"build {nvr} already tagged ({tag})", file=sys.stderr)
                    return 1
                entry["builds"].append(nvr)
        elif command == "untag-build":
            tag, nvrs = args[0], args[1:]
            entry = tags.setdefault(tag, {"builds": [], "packages": []})
            for nvr in nvrs:
                if nvr not in entry["builds"]:
                    print(f"build {nvr} not in tag {tag}", file=sys.stderr)
                    return 1
                entry["builds"].remove(nvr)
        elif command == "move-build":
            source, tag, nvrs = args[0], args[1], args[2:]
            for nvr in nvrs:
                tags[source]["builds"].remove(nvr)
                entry = tags.setdefault(tag, {"builds": [], "packages": []})
                entry["builds"].append(nvr)
        else:
            print(f"unknown command {command}", file=sys.stderr)
            return 2
        return 0
    finally:
        path.write_text(json.dumps(state, indent=1))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
