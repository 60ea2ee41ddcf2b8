"""The Koji backend of `conveyor tags apply`: the actions as `koji` commands, as graffiti
applies RDO's reviewed tag changes to CBS. Each verb takes every NVR of one tag in one call
(the client batches them into one multicall). Registrations come first and untags last, so
that no tag misses a package between two commands.

No hub runs on conveyor's test machines: the tests drive this module against a test double
of the `koji` command (tests/doubles/koji_double.py).
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.domain.tags import ActionKind, TagAction

__all__ = ["KojiClient", "KojiError", "koji_commands", "run_koji"]


class KojiError(Exception):
    """A koji command failed; the message names it and what Koji said."""


@dataclass(frozen=True)
class KojiClient:
    command: str  # koji, cbs, brew
    owner: str
    timeout: float


def koji_commands(actions: Sequence[TagAction], owner: str) -> list[list[str]]:
    """The koji command lines (arguments after the command) that execute `actions`."""
    registers: dict[str, list[str]] = defaultdict(list)
    tags: dict[str, list[str]] = defaultdict(list)
    moves: dict[tuple[str, str], list[str]] = defaultdict(list)
    untags: dict[str, list[str]] = defaultdict(list)
    for action in actions:
        match action.kind:
            case ActionKind.REGISTER:
                registers[action.tag].append(action.name)
            case ActionKind.TAG:
                tags[action.tag].append(action.nvr)
            case ActionKind.MOVE:
                moves[(action.source, action.tag)].append(action.nvr)
            case ActionKind.UNTAG:
                untags[action.tag].append(action.nvr)
        if action.replaces and action.kind in (ActionKind.TAG, ActionKind.MOVE):
            untags[action.tag].append(action.replaces)
    lines = [["add-pkg", f"--owner={owner}", tag, *names] for tag, names in registers.items()]
    lines += [["tag-build", tag, *nvrs] for tag, nvrs in tags.items()]
    lines += [["move-build", source, tag, *nvrs] for (source, tag), nvrs in moves.items()]
    lines += [["untag-build", tag, *nvrs] for tag, nvrs in untags.items()]
    return lines


def _koji(client: KojiClient, line: Sequence[str]) -> str:
    argv = [client.command, *line]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=client.timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KojiError(f"{' '.join(argv)}: {exc}") from None
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise KojiError(
            f"{' '.join(argv)} failed (exit {result.returncode}): "
            f"{said[-1] if said else 'no message'}"
        )
    return result.stdout


def _first_column(output: str) -> set[str]:
    return {line.split()[0] for line in output.splitlines() if line.strip()}


def _pending(client: KojiClient, actions: Sequence[TagAction]) -> list[TagAction]:
    """The actions Koji does not show done yet: an apply cut short by a failure finishes
    when run again, instead of failing on what it did the first time."""
    tags = sorted({a.tag for a in actions} | {a.source for a in actions if a.source})
    tagged = {t: _first_column(_koji(client, ["list-tagged", "--quiet", t])) for t in tags}
    listed = {t: _first_column(_koji(client, ["list-pkgs", "--quiet", "--tag", t])) for t in tags}
    pending = []
    for a in actions:
        if a.kind is ActionKind.REGISTER and a.name in listed[a.tag]:
            continue
        if a.kind in (ActionKind.TAG, ActionKind.MOVE) and a.nvr in tagged[a.tag]:
            if not a.replaces or a.replaces not in tagged[a.tag]:
                continue
            a = TagAction(a.tag, ActionKind.UNTAG, a.name, a.replaces)
        if a.kind is ActionKind.UNTAG and a.nvr not in tagged[a.tag]:
            continue
        pending.append(a)
    return pending


def run_koji(client: KojiClient, actions: Sequence[TagAction]) -> list[str]:
    """Runs the commands of the actions still to do, in order; stops at the first failure
    (KojiError). Returns the command lines run."""
    done: list[str] = []
    for line in koji_commands(_pending(client, actions), client.owner):
        try:
            _koji(client, line)
        except KojiError as exc:
            raise KojiError(f"{exc} (commands done before it: {len(done)})") from None
        done.append(" ".join([client.command, *line]))
    return done
