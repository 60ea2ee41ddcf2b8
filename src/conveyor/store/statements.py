"""Insert statements of the API's hot paths, built once: with SQLAlchemy, constructing a
statement costs more than SQLite takes to run it, and the ORM's unit of work more still
(bench/api.py: a vote went from about 1 ms to 0.2 ms of CPU)."""

from __future__ import annotations

from sqlalchemy import insert

from conveyor.store.models import Audit, CIVote, CIVoteAggregate

INSERT_VOTE = insert(CIVote)
INSERT_AGGREGATE_VOTE = insert(CIVoteAggregate)
INSERT_AUDIT = insert(Audit)
