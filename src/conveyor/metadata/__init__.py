"""rdoinfo-format package metadata: loading, merging and per-package resolution.

``load_database`` reads a database (following ``import:`` lists) and ``packages_for_release`` /
``resolve_package`` turn its entries into :class:`Package` records. Every problem is a
:class:`MetadataError` whose message starts with ``file[:line]:``.
"""

from conveyor.metadata.errors import MetadataError, SourceLocation
from conveyor.metadata.loader import load_database
from conveyor.metadata.model import Package, RdoInfoDatabase
from conveyor.metadata.resolve import packages_for_release, resolve_package

__all__ = [
    "MetadataError",
    "Package",
    "RdoInfoDatabase",
    "SourceLocation",
    "load_database",
    "packages_for_release",
    "resolve_package",
]
