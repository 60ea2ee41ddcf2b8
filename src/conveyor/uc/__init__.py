"""OpenStack requirements data against RDO packages: the UC report, reqcheck, release data."""

from conveyor.uc.constraints import Pin, load_constraints, parse_constraints
from conveyor.uc.errors import UCError
from conveyor.uc.names import load_name_map, package_candidates
from conveyor.uc.repometa import (
    Build,
    ProviderIndex,
    add_nvr_list,
    add_repo_file,
    add_repository,
    add_source,
    index_sources,
)
from conveyor.uc.report import (
    Row,
    build_report,
    filter_rows,
    source_counts,
    summary,
    to_csv,
    to_json,
)

__all__ = [
    "Build",
    "Pin",
    "ProviderIndex",
    "Row",
    "UCError",
    "add_nvr_list",
    "add_repo_file",
    "add_repository",
    "add_source",
    "build_report",
    "filter_rows",
    "index_sources",
    "load_constraints",
    "load_name_map",
    "package_candidates",
    "parse_constraints",
    "source_counts",
    "summary",
    "to_csv",
    "to_json",
]
