"""Importing builds made elsewhere: another conveyor, or DLRN (`dlrn-remote`).

`importer.import_commit` reads the remote hash directory's commit.yaml, downloads its logs and
RPMs under per-file limits, checks them, and publishes them through the trunk's Publisher with
the listeners the composition root assembles (`conveyor.assembly.Builder.import_commit`).
Every refusal is an `ImportRefused` whose message names the URL, file or key at fault.
"""

from conveyor.remote.commit_record import RemoteCommit, parse_commit_record
from conveyor.remote.errors import (
    ArtifactError,
    CommitRecordError,
    FetchError,
    ImportRefused,
    RemoteFileMissing,
)
from conveyor.remote.fetch import Limits, Progress, RemoteDirectory
from conveyor.remote.importer import ImportReport

__all__ = [
    "ArtifactError",
    "CommitRecordError",
    "FetchError",
    "ImportRefused",
    "ImportReport",
    "Limits",
    "Progress",
    "RemoteCommit",
    "RemoteDirectory",
    "RemoteFileMissing",
    "parse_commit_record",
]
