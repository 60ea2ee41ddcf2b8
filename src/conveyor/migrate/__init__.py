"""Moving to conveyor from DLRN: its database and its `repos/` tree adopted, history kept."""

from conveyor.migrate.importer import (
    LOCKED_PASSWORD,
    MigrationRefused,
    MigrationReport,
    ProgressCallback,
    TableCount,
    import_dlrn,
)
from conveyor.migrate.layout import Label, LabelKind, ReposCheck
from conveyor.migrate.source import MigrationError

__all__ = [
    "LOCKED_PASSWORD",
    "Label",
    "LabelKind",
    "MigrationError",
    "MigrationRefused",
    "MigrationReport",
    "ProgressCallback",
    "ReposCheck",
    "TableCount",
    "import_dlrn",
]
