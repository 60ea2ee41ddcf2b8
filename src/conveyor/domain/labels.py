"""Label names, and the names a label may never take.

DLRN keeps its labels as links directly in `repos/` (and in `repos/component/<c>/`), and CI
jobs fetch `repos/<label>/delorean.repo`, so conveyor keeps them there too: moving labels under
a prefix of their own would still need a link at `repos/<label>` for those readers, so it would
not take a single name out of that folder. The same folder holds the hash-directory shards, the
component trees, the reports and the builder's own labels; a promotion label that took one of
their names would publish builds inside an immutable directory or replace a report. The rule
is therefore on the name: a label must not be able to collide with the layout.
"""

from __future__ import annotations

from conveyor.domain.names import InvalidName, check_label

CURRENT = "current"  # newest successful build, moved by the builder
CONSISTENT = "consistent"  # newest state where every package's newest build succeeded
BUILDER_LABELS = frozenset({CURRENT, CONSISTENT})
PREVIOUS_PREFIX = "previous-"

COMPONENT_DIR = "component"  # repos/component/<c>/: each component's own tree and labels
# repos/bisect/: the repositories of bisections' steps (conveyor bisect), never a label's.
BISECT_DIR = "bisect"
REPODATA_DIR = "repodata"  # a repository's metadata: `repos/<label>/repodata/` must be one
REPORT_HTML = "report.html"
STATUS_REPORT_HTML = "status_report.html"
STATUS_REPORT_CSV = "status_report.csv"
QUEUE_HTML = "queue.html"
REPORT_ASSETS = ("styles.css", "sortable.js")
REPORT_FILES = frozenset(
    {REPORT_HTML, STATUS_REPORT_HTML, STATUS_REPORT_CSV, QUEUE_HTML, *REPORT_ASSETS}
)

# A name ending like a file the tree serves would read as that file to a person, a browser or
# a web server's type map; no RDO label looks like one.
_FILE_SUFFIXES = (
    ".html",
    ".htm",
    ".csv",
    ".css",
    ".js",
    ".json",
    ".repo",
    ".md5",
    ".log",
    ".yaml",
    ".yml",
    ".xml",
    ".gz",
    ".rpm",
    ".txt",
)
_HEX = frozenset("0123456789abcdef")


class LabelCollision(InvalidName):
    """A well-formed label name that the repository layout already uses."""


def is_shard(name: str) -> bool:
    """`xx` of `repos/xx/yy/<hash dir>`: two lowercase hex digits."""
    return len(name) == 2 and name[0] in _HEX and name[1] in _HEX


def previous_label(name: str) -> str:
    """Where a promotion moves a label's incumbent."""
    return PREVIOUS_PREFIX + name


def layout_collision(name: str) -> str | None:
    """Why `name`, as an entry of `repos/` or of a component folder, collides with the
    repository layout; None when it is free for a label."""
    lowered = name.lower()  # case-insensitive file systems and proxies fold case
    if is_shard(lowered):
        return "two hexadecimal digits name a folder of hash directories"
    if lowered == COMPONENT_DIR:
        return "it is the folder of the component trees"
    if lowered == BISECT_DIR:
        return "it is the folder of the bisections' repositories"
    if lowered == REPODATA_DIR:
        return "it is the name of a repository's metadata folder"
    if lowered in REPORT_FILES:
        return "it is a report file"
    if lowered.endswith(_FILE_SUFFIXES):
        return "it ends like a file the repository tree serves"
    return None


def check_promotion_label(name: str) -> str:
    """A label a promotion may move: a plain label (letters, digits, `.`, `_`, `-`, at most
    255 characters), not one the builder moves, free in the layout, and with a `previous-`
    label that is plain too. InvalidName otherwise, LabelCollision for a layout name."""
    check_label(name)
    if name in BUILDER_LABELS:
        raise InvalidName(f"label {name!r} is moved by the builder and cannot be promoted to")
    reason = layout_collision(name)
    if reason is not None:
        raise LabelCollision(f"label {name!r} is reserved by the repository layout: {reason}")
    check_label(previous_label(name))
    return name
