"""Buildsys tag changes as Koji and graffiti see them: the actions that take a tag from its
applied content to its desired content.

A tag's content is one NVR per package name. The actions are Koji's verbs:
- `register` adds a name to the tag's package list (`koji add-pkg`), needed before the first
  build of that name is tagged; a name stays registered after its build is untagged;
- `tag` adds an NVR (`koji tag-build`); when it replaces another NVR of the same name, the
  old one is untagged with it (`replaces`), so the tag keeps one NVR per name;
- `untag` removes an NVR (`koji untag-build`);
- `move` takes an NVR out of one tag and into another in one step (`koji move-build`): a diff
  that untags an NVR from one tag and tags it into another says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["STAGES", "ActionKind", "TagAction", "apply_actions", "diff_tags", "stage_order"]

# CBS's stages of a release's builds, in the order builds move through them.
STAGES = ("candidate", "testing", "release")


def stage_order(tag: str) -> tuple[str, int]:
    """A sort key that puts a family's tags in CBS's order (candidate, testing, release),
    not the alphabet's; other tags after them."""
    family, _, stage = tag.rpartition("-")
    if stage in STAGES:
        return (family, STAGES.index(stage))
    return (tag, len(STAGES))


class ActionKind(StrEnum):
    REGISTER = "register"
    TAG = "tag"
    UNTAG = "untag"
    MOVE = "move"


@dataclass(frozen=True, order=True)
class TagAction:
    tag: str  # the tag that changes (for `move`, the destination)
    kind: ActionKind
    name: str  # package name
    nvr: str = ""  # tagged, untagged or moved; empty for `register`
    replaces: str = ""  # `tag`/`move`: the NVR of that name it takes out of `tag`
    source: str = ""  # `move`: the tag the NVR leaves

    def __str__(self) -> str:
        match self.kind:
            case ActionKind.REGISTER:
                return f"register {self.name} in {self.tag}"
            case ActionKind.MOVE:
                text = f"move {self.nvr} from {self.source} to {self.tag}"
            case ActionKind.TAG:
                text = f"tag {self.nvr} into {self.tag}"
            case _:
                return f"untag {self.nvr} from {self.tag}"
        return f"{text} (replacing {self.replaces})" if self.replaces else text

    def to_json(self) -> dict[str, str]:
        data: dict[str, Any] = {"tag": self.tag, "action": str(self.kind), "name": self.name}
        for key in ("nvr", "replaces", "source"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> TagAction:
        return cls(
            data["tag"],
            ActionKind(data["action"]),
            data["name"],
            data.get("nvr", ""),
            data.get("replaces", ""),
            data.get("source", ""),
        )


def _diff_one(
    tag: str, desired: Mapping[str, str], applied: Mapping[str, str], registered: Iterable[str]
) -> list[TagAction]:
    known = set(registered)
    actions = []
    for name in sorted(desired):
        nvr = desired[name]
        if name not in known:
            actions.append(TagAction(tag, ActionKind.REGISTER, name))
        old = applied.get(name, "")
        if old != nvr:
            actions.append(TagAction(tag, ActionKind.TAG, name, nvr, old))
    for name in sorted(set(applied) - set(desired)):
        actions.append(TagAction(tag, ActionKind.UNTAG, name, applied[name]))
    return actions


def diff_tags(
    desired: Mapping[str, Mapping[str, str]],
    applied: Mapping[str, Mapping[str, str]],
    registered: Mapping[str, Iterable[str]],
) -> list[TagAction]:
    """The actions that make every tag of `desired` hold exactly its content; tags only in
    `applied` are left alone (a tag is removed from the declarations, not emptied by it)."""
    actions = []
    for tag in sorted(desired):
        actions += _diff_one(tag, desired[tag], applied.get(tag, {}), registered.get(tag, ()))
    return _moves(actions)


def _moves(actions: list[TagAction]) -> list[TagAction]:
    """An untag of an NVR that another tag gains in the same diff becomes one `move`."""
    untags = {(a.nvr, a.tag): a for a in actions if a.kind is ActionKind.UNTAG}
    by_nvr: dict[str, TagAction] = {}
    for action in untags.values():
        by_nvr.setdefault(action.nvr, action)
    result = []
    taken: set[tuple[str, str]] = set()
    for action in actions:
        if action.kind is ActionKind.TAG and action.nvr in by_nvr:
            left = by_nvr.pop(action.nvr)
            taken.add((left.nvr, left.tag))
            result.append(
                TagAction(
                    action.tag, ActionKind.MOVE, action.name, action.nvr, action.replaces, left.tag
                )
            )
        else:
            result.append(action)
    return [a for a in result if not (a.kind is ActionKind.UNTAG and (a.nvr, a.tag) in taken)]


def apply_actions(
    content: Mapping[str, Mapping[str, str]], actions: Iterable[TagAction]
) -> dict[str, dict[str, str]]:
    """Every tag's content after `actions` (the tags they touch, and `content`'s others)."""
    after = {tag: dict(names) for tag, names in content.items()}
    for action in actions:
        target = after.setdefault(action.tag, {})
        if action.kind in (ActionKind.TAG, ActionKind.MOVE):
            target[action.name] = action.nvr
        if action.kind is ActionKind.MOVE:
            source = after.setdefault(action.source, {})
            if source.get(action.name) == action.nvr:
                del source[action.name]
        if action.kind is ActionKind.UNTAG and target.get(action.name) == action.nvr:
            del target[action.name]
    return after
