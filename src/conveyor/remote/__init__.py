"""Importing builds made elsewhere: another conveyor, or DLRN (`dlrn-remote`).

`import_commit(config, url)` reads the remote hash directory's commit.yaml, downloads its logs
and RPMs under per-file limits, checks them, and publishes them through the trunk's Publisher.
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
from conveyor.remote.importer import ImportReport, import_commit

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
    "import_commit",
    "parse_commit_record",
]
