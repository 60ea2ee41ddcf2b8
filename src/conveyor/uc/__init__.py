"""OpenStack requirements data against RDO packages: the UC report, reqcheck, release data."""

from conveyor.uc.constraints import Pin, load_constraints, parse_constraints
from conveyor.uc.errors import UCError
from conveyor.uc.names import package_candidates
from conveyor.uc.repometa import Build, ProviderIndex, add_nvr_list, add_repository
from conveyor.uc.report import Row, build_report, filter_rows, summary, to_csv, to_json

__all__ = [
    "Build",
    "Pin",
    "ProviderIndex",
    "Row",
    "UCError",
    "add_nvr_list",
    "add_repository",
    "build_report",
    "filter_rows",
    "load_constraints",
    "package_candidates",
    "parse_constraints",
    "summary",
    "to_csv",
    "to_json",
]
