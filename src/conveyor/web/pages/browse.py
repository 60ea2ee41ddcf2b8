"""/view/<path>: a text file of the published tree (a build log, notes.log, commit.yaml,
versions.csv, a .repo file) in the dashboard's layout, with the failing lines highlighted.

Highlighted are the lines that look like a failure (`error:`, `Error`, `FAILED`, `Traceback`,
`Bad exit status`) and, more lightly, the lines the build's notes.log quotes (the excerpt a
failed build's notes and FTBFS mails show). The path is checked before it reaches the
filesystem (no empty, `.` or `..` part, not absolute) and must resolve, links followed, to a
file inside repos/, as /repos/ serves it; anything else answers 404. A log larger than
`SHOWN_BYTES` is shown by its end, with a note and a link to the whole file.

The folder listings of /repos/ and /tags/ are `conveyor.api.serving.RepoFiles`'.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from conveyor.api.context import app_context
from conveyor.api.serving import human_size, is_plain_text
from conveyor.publish.logs import read_tail
from conveyor.web.render import page

router = APIRouter(include_in_schema=False)

SHOWN_BYTES = 512 * 1024  # of a larger file, its end
NOTES_FILE = "notes.log"
_NOTES_BYTES = 64 * 1024
_MAX_LINE = 2_000
_MAX_PATH = 4_096
FAILURE_LINE = re.compile(r"error:|Error|FAILED|Traceback|Bad exit status")
# C0 controls but tab, and DEL: an escape sequence in a log is shown, never interpreted.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CUT = " [...]"  # what conveyor.publish.logs appends to a line it cut
_NOTE_LINE = 400  # the length at which it cuts
_NOTE_HEADER_LINES = 3  # conveyor's own lines before the excerpt (why the build failed)


class NotShown(Exception):
    """The path names no text file of the tree (404)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Lines shown alike: a failing line alone (it can be linked to), or a run of plain lines
    or of lines notes.log quotes (one element for hundreds of lines)."""

    number: int  # of its first line, in the part shown, from 1
    text: str
    kind: str  # "hit", "quoted" or ""

    @property
    def css(self) -> str:
        return f"line {self.kind}" if self.kind else "line"

    @property
    def hit(self) -> bool:
        return self.kind == HIT


HIT, QUOTED = "hit", "quoted"


@dataclass(frozen=True, slots=True)
class ShownFile:
    path: str  # below repos/, as requested
    name: str
    size: int
    truncated: bool  # only the end is shown
    segments: list[Segment]
    hits: int
    first_hit: int | None  # its line number
    quoted: int
    notes: bool  # a notes.log beside it was read

    @property
    def raw_href(self) -> str:
        return "/repos/" + quote(self.path)

    @property
    def folder_href(self) -> str:
        parent = PurePosixPath(self.path).parent.as_posix()
        return "/repos/" if parent == "." else f"/repos/{quote(parent)}/"

    @property
    def shown_size(self) -> str:
        return human_size(self.size)

    @property
    def shown_limit(self) -> str:
        return human_size(SHOWN_BYTES)


def checked_path(path: str) -> str:
    """`path` if it may name a file below repos/: relative, no empty, `.` or `..` part."""
    if (
        not path
        or len(path) > _MAX_PATH
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise NotShown(path)
    return path


def _resolved(repos_dir: Path, path: str) -> Path:
    root = Path(os.path.realpath(repos_dir))
    real = Path(os.path.realpath(root / checked_path(path)))
    if root not in real.parents or not real.is_file():
        raise NotShown(path)
    return real


def _notes_lines(folder: Path, name: str) -> list[str]:
    """The lines of the notes.log beside a log; [] without one (or for notes.log itself)."""
    notes = folder / NOTES_FILE
    if name == NOTES_FILE or not notes.is_file():
        return []
    return read_tail(notes, _NOTES_BYTES).decode("utf-8", errors="replace").splitlines()


def quoted_block(lines: Sequence[str], notes: Sequence[str]) -> range:
    """Where in `lines` (a log's, as notes.log quotes them) the excerpt that `notes` quotes
    is: the notes' lines, after a few of conveyor's own (why the build failed), found one
    after the other in the log. An empty range when they are not found."""
    for skip in range(min(_NOTE_HEADER_LINES, len(notes)) + 1):
        excerpt = list(notes[skip:])
        while excerpt and not excerpt[-1].strip():
            excerpt.pop()
        if len(excerpt) < 2:
            continue
        first = excerpt[0]
        for start in range(len(lines) - len(excerpt), -1, -1):  # the newest occurrence
            if lines[start] == first and list(lines[start : start + len(excerpt)]) == excerpt:
                return range(start, start + len(excerpt))
    return range(0)


def _segments(lines: Sequence[str], block: range) -> tuple[list[Segment], int, int | None]:
    """The lines as segments; how many failing lines, and the first one's number."""
    segments: list[Segment] = []
    run: list[str] = []
    run_kind, run_start = "", 1
    hits, first_hit = 0, None
    search = FAILURE_LINE.search
    for index, line in enumerate(lines):
        kind = HIT if search(line) else QUOTED if index in block else ""
        if run and (kind != run_kind or kind == HIT):
            segments.append(Segment(run_start, "\n".join(run), run_kind))
            run = []
        if not run:
            run_kind, run_start = kind, index + 1
        run.append(line if len(line) <= _MAX_LINE else line[:_MAX_LINE] + _CUT)
        if kind == HIT:
            hits += 1
            first_hit = first_hit or index + 1
    if run:
        segments.append(Segment(run_start, "\n".join(run), run_kind))
    return segments, hits, first_hit


def read_shown(repos_dir: Path, path: str) -> ShownFile:
    """The file `path` below repos/ as the viewer shows it; NotShown when it is none. Kept
    while the file (and the notes.log beside it) stay as they were: logs never change."""
    real = _resolved(repos_dir, path)
    name = PurePosixPath(path).name
    if not is_plain_text(real.name) and not is_plain_text(name):
        raise NotShown(path)
    info = real.stat()
    notes_path = real.parent / NOTES_FILE
    try:
        notes_stamp = notes_path.stat().st_mtime_ns if name != NOTES_FILE else None
    except OSError:
        notes_stamp = None
    key = (path, str(real), info.st_size, info.st_mtime_ns, notes_stamp)
    with _SHOWN_LOCK:
        cached = _SHOWN.get(key)
        if cached is not None:
            _SHOWN.move_to_end(key)
            return cached
    text = read_tail(real, SHOWN_BYTES).decode("utf-8", errors="replace")
    # Lines as conveyor.publish.logs splits them (notes.log is matched against them), then
    # the controls replaced in one pass over the whole text (tabs stay).
    lines = _CONTROL.sub("\ufffd", "\n".join(text.splitlines())).split("\n") if text else []
    notes = _notes_lines(real.parent, name) if notes_stamp is not None else []
    block = range(0)
    if notes:
        quoted = [line if len(line) <= _NOTE_LINE else line[:_NOTE_LINE] + _CUT for line in lines]
        block = quoted_block(quoted, notes)
    segments, hits, first_hit = _segments(lines, block)
    shown = ShownFile(
        path=path,
        name=name,
        size=info.st_size,
        truncated=info.st_size > SHOWN_BYTES,
        segments=segments,
        hits=hits,
        first_hit=first_hit,
        quoted=len(block),
        notes=bool(notes),
    )
    with _SHOWN_LOCK:
        _SHOWN[key] = shown
        while len(_SHOWN) > _SHOWN_SIZE:
            _SHOWN.popitem(last=False)
    return shown


_ShownKey = tuple[str, str, int, int, int | None]
_SHOWN: OrderedDict[_ShownKey, ShownFile] = OrderedDict()
_SHOWN_SIZE = 16
_SHOWN_LOCK = threading.Lock()


@router.get("/view/{path:path}", response_class=HTMLResponse)
async def view_file(request: Request, path: str) -> HTMLResponse:
    repos_dir = app_context(request).config.repos_dir
    try:
        shown = await run_in_threadpool(read_shown, repos_dir, path)
    except (NotShown, OSError):
        return page(
            request,
            "viewer.html",
            "repos",
            "No such text file",
            404,
            shown=None,
            path=path,
        )
    return page(request, "viewer.html", "repos", shown.name, shown=shown, path=path)
