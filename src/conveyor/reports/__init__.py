"""DLRN's report files at the top of `repos/` (reference/dlrn.md section 12), kept current
after every build at a cost that does not grow with the history.

- report.html: the newest 300 builds, RETRY rows and rechecked rows left out (DLRN deletes a
  rechecked row), with commit, repository and build-log links.
- status_report.html and status_report.csv: one row per package of the package list that
  has a build (DLRN's selection: a package removed from the metadata leaves the reports, its
  builds stay in report.html while they are among the newest). The CSV has DLRN's eight
  columns in DLRN's order, then `Pkg NVR`, `First Failure Sha` and `Days Since Last Success`
  ("Never" without any success). The first failure and the days are shown for any status
  but SUCCESS (DLRN leaves them out for RETRY); the failure's note is the status tooltip.
- queue.html: the cycle's jobs not recorded yet (a RETRY stays, as in DLRN).

The pages are Jinja2 templates bundled with the package, autoescaped, with a small stylesheet
and a sortable-table script written beside them: nothing is loaded from elsewhere.
"""

from conveyor.reports.listener import ReportsListener
from conveyor.reports.queue import PendingBuilds, write_queue

__all__ = ["PendingBuilds", "ReportsListener", "write_queue"]
