"""Moving to conveyor from DLRN (its database and its `repos/` tree adopted, history kept),
and a builder's database moved to another engine."""

from conveyor.migrate.copy import CopyReport, default_source, import_db
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
    "CopyReport",
    "Label",
    "LabelKind",
    "MigrationError",
    "MigrationRefused",
    "MigrationReport",
    "ProgressCallback",
    "ReposCheck",
    "TableCount",
    "default_source",
    "import_db",
    "import_dlrn",
]
