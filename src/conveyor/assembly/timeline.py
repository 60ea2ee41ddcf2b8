"""The timeline of a series' GA: every `release-ga` run and each of its steps, with their
times and outcome, in the builder's database (`release_steps`). A step is written when it
starts (`running`) and again when it ends, each in its own transaction, so a killed run
leaves its last step `running`; the next run marks it `interrupted`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select, update

from conveyor.store.database import Database
from conveyor.store.models import ReleaseStep

__all__ = ["StepRecord", "Timeline", "timeline_of"]

RUNNING, INTERRUPTED = "running", "interrupted"
# Long details (a build's notes, a closure refusal) are kept whole up to this size.
MAX_DETAIL = 64_000


@dataclass(frozen=True)
class StepRecord:
    run: int
    step: str
    state: str
    started: int
    ended: int | None
    detail: str

    @property
    def seconds(self) -> int | None:
        return None if self.ended is None else self.ended - self.started

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run,
            "step": self.step,
            "state": self.state,
            "started": self.started,
            "ended": self.ended,
            "detail": self.detail,
        }


class Timeline:
    """The steps of one new run of `series`' GA."""

    def __init__(self, db: Database, series: str) -> None:
        self.db, self.series = db, series
        with db.transaction() as session:
            # Whatever a killed run left running did not finish.
            session.execute(
                update(ReleaseStep)
                .where(ReleaseStep.series == series, ReleaseStep.state == RUNNING)
                .values(state=INTERRUPTED)
            )
            last = session.scalar(
                select(func.max(ReleaseStep.run)).where(ReleaseStep.series == series)
            )
        self.run = (last or 0) + 1

    def start(self, step: str) -> int:
        with self.db.transaction() as session:
            row = ReleaseStep(
                series=self.series,
                run=self.run,
                step=step,
                state=RUNNING,
                started=int(time.time()),
                detail="",
            )
            session.add(row)
            session.flush()
            return row.id

    def end(self, step_id: int, state: str, detail: str) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(ReleaseStep)
                .where(ReleaseStep.id == step_id)
                .values(state=state, ended=int(time.time()), detail=detail[:MAX_DETAIL])
            )


def timeline_of(db: Database, series: str) -> list[StepRecord]:
    """Every recorded step of `series`' GA runs, oldest first."""
    with db.reader() as session:
        rows = session.scalars(
            select(ReleaseStep).where(ReleaseStep.series == series).order_by(ReleaseStep.id)
        )
        return [
            StepRecord(r.run, r.step, r.state, r.started, r.ended, r.detail or "") for r in rows
        ]
