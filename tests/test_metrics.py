"""/metrics for Grafana, on the example distribution after a real trunk run: DLRN's four build
counters unchanged, and the trunk's state (queue, builds by status and their durations,
packages failing, consistent's lag, label ages, the notification outbox, tag versions forced
past the closure gate), read back with prometheus_client's own parser."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tests.support import Trunk, build_target, built_example, default_first_cycle, rows

from conveyor.api import create_app
from conveyor.domain.builds import BuildJob, Mirrors
from conveyor.reports.queue import write_queue
from conveyor.store.database import Database
from conveyor.store.models import Commit, Notification, TagVersion

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"),
]

TAG = "cloud9s-flamingo-candidate"
PROMOTED = "current-passed-ci"


@dataclass(frozen=True)
class Scraped:
    trunk: Trunk
    client: TestClient
    samples: dict[str, list[Sample]]  # by sample name
    types: dict[str, str]  # family name: type
    consistent_built: int  # dt_build of the build `consistent` was pointed at
    current_built: int


def _parse(text: str) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    samples: dict[str, list[Sample]] = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples, types


def _value(scraped: Scraped, name: str, **labels: str) -> float:
    found = [s.value for s in scraped.samples.get(name, []) if labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, scraped.samples.get(name))
    return found[0]


@pytest.fixture(scope="module")
def scraped() -> Iterator[Scraped]:
    """The example after its first run, with `consistent` put back on the oldest success, a
    promotion label, two queued and one running build, an undelivered notification and a
    tag version forced past the gate."""
    with built_example("default", default_first_cycle).changed() as trunk:
        successes = rows(
            trunk.db,
            "select id, commit_hash, distro_hash, dt_build from commits "
            "where status = 'SUCCESS' order by id",
        )
        oldest, newest = successes[0], successes[-1]
        oldest_dir = trunk.hash_dir(oldest[1], oldest[2]).relative_to(trunk.repos)
        (trunk.repos / "consistent").unlink(missing_ok=True)
        (trunk.repos / "consistent").symlink_to(oldest_dir)
        (trunk.repos / PROMOTED).symlink_to(oldest_dir)
        config = trunk.config()
        target = build_target("python-queued")
        jobs = [
            BuildJob(
                target=target,
                mirrors=Mirrors.under(config.datadir, target.name),
                commit_hash=sha * 40,
                dt_commit=1_700_000_000,
                commit_branch="master",
                distro_hash="d" * 40,
                dt_distro=1_700_000_000,
            )
            for sha in ("a", "b")
        ]
        write_queue(config, jobs)
        (config.datadir / "builds" / f"python-running-{'c' * 12}-{int(time.time() * 1000)}").mkdir(
            parents=True
        )
        now = int(time.time())
        db = Database(config.database_url)
        try:
            with db.transaction() as session:
                session.add(
                    Notification(
                        kind="ftbfs",
                        channel="email",
                        project_name=trunk.dist.failing_package,
                        commit_id=newest[0],
                        payload="{}",
                        created=now - 600,
                        attempts=2,
                        next_attempt=now + 60,
                        sent=None,
                    )
                )
                for version, forced in ((1, False), (2, True)):
                    session.add(
                        TagVersion(
                            tag=TAG,
                            version=version,
                            created=now,
                            author="tester",
                            reason="test",
                            forced=forced,
                            content="{}",
                            registered="[]",
                            actions="[]",
                        )
                    )
        finally:
            db.close()
        with TestClient(create_app(config)) as client:
            response = client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            samples, types = _parse(response.text)
            yield Scraped(trunk, client, samples, types, oldest[3], newest[3])


def test_dlrn_counters_keep_their_names(scraped: Scraped) -> None:
    statuses = dict(rows(scraped.trunk.db, "select status, count(*) from commits group by status"))
    baseurl = scraped.trunk.config().baseurl
    assert _value(scraped, "dlrn_builds_succeeded_total", baseurl=baseurl) == statuses["SUCCESS"]
    assert _value(scraped, "dlrn_builds_failed_total", baseurl=baseurl) == statuses["FAILED"]
    assert _value(scraped, "dlrn_builds_retry_total", baseurl=baseurl) == 0
    assert _value(scraped, "dlrn_builds_total", baseurl=baseurl) == sum(statuses.values())
    assert "dlrn_request_processing_seconds_count" in scraped.samples


def test_builds_by_status_and_their_durations(scraped: Scraped) -> None:
    statuses = dict(rows(scraped.trunk.db, "select status, count(*) from commits group by status"))
    for status in ("SUCCESS", "FAILED", "RETRY"):
        expected = statuses.get(status, 0)
        assert _value(scraped, "conveyor_builds_total", status=status) == expected
    assert scraped.types["conveyor_build_duration_seconds"] == "histogram"
    buckets = scraped.samples["conveyor_build_duration_seconds_bucket"]
    counts = [b.value for b in buckets]
    assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf"
    built = sum(statuses.values())  # every build of the run has its folder
    assert _value(scraped, "conveyor_build_duration_seconds_count") == built == counts[-1]
    total = _value(scraped, "conveyor_build_duration_seconds_sum")
    assert 0 < total < built * 600  # the example's builds take seconds
    last = _value(scraped, "conveyor_last_build_timestamp_seconds")
    assert last == max(r[0] for r in rows(scraped.trunk.db, "select dt_build from commits"))


def test_queue_and_running_builds(scraped: Scraped) -> None:
    assert _value(scraped, "conveyor_queue_length") == 2
    assert _value(scraped, "conveyor_builds_running") == 1
    written = _value(scraped, "conveyor_queue_updated_timestamp_seconds")
    assert abs(written - time.time()) < 600


def test_packages_failing_now(scraped: Scraped) -> None:
    packages = len(scraped.trunk.dist.packages)
    assert _value(scraped, "conveyor_packages_failing") == 1  # example-broken
    assert _value(scraped, "conveyor_packages", status="FAILED") == 1
    assert _value(scraped, "conveyor_packages", status="SUCCESS") == packages - 1


def test_consistent_lag_and_label_ages(scraped: Scraped) -> None:
    lag = _value(scraped, "conveyor_consistent_lag_seconds")
    assert lag == scraped.current_built - scraped.consistent_built
    newer = rows(
        scraped.trunk.db,
        "select count(*) from commits where status = 'SUCCESS' and dt_build > ?",
        scraped.consistent_built,
    )[0][0]
    assert _value(scraped, "conveyor_consistent_lag_builds") == newer
    for label, kind in (("current", "builder"), ("consistent", "builder"), (PROMOTED, "promotion")):
        moved = _value(scraped, "conveyor_label_age_seconds", label=label, kind=kind)
        assert 0 <= moved < 3600
        built = _value(scraped, "conveyor_label_build_age_seconds", label=label, kind=kind)
        assert built >= 0
    assert _value(
        scraped, "conveyor_label_build_age_seconds", label="consistent", kind="builder"
    ) == pytest.approx(
        _value(scraped, "conveyor_label_build_age_seconds", label="current", kind="builder") + lag,
        abs=5,
    )


def test_notification_outbox(scraped: Scraped) -> None:
    assert _value(scraped, "conveyor_notifications_pending") == 1
    assert _value(scraped, "conveyor_notifications_retrying") == 1
    oldest = _value(scraped, "conveyor_notifications_oldest_pending_age_seconds")
    assert 600 <= oldest < 1200


def test_closure_failures_are_the_forced_tag_versions(scraped: Scraped) -> None:
    assert _value(scraped, "conveyor_tag_versions_forced_total", tag=TAG) == 1
    assert _value(scraped, "conveyor_tag_forced", tag=TAG) == 1


def test_the_scrape_reports_itself(scraped: Scraped) -> None:
    assert _value(scraped, "conveyor_metrics_errors") == 0
    assert 0 < _value(scraped, "conveyor_metrics_scrape_seconds") < 5


def test_every_metric_is_documented(scraped: Scraped) -> None:
    from conveyor.api import metrics

    doc = metrics.__doc__ or ""
    for name in scraped.types:
        if name.startswith(("conveyor_", "dlrn_")) and not name.endswith("_created"):
            assert f"`{name}" in doc, name


def test_each_new_build_is_counted_once(scraped: Scraped) -> None:
    def count() -> float:
        again, _ = _parse(scraped.client.get("/metrics").text)
        return again["conveyor_build_duration_seconds_count"][0].value

    before = _value(scraped, "conveyor_build_duration_seconds_count")
    assert count() == before  # nothing new: nothing counted twice
    commit, distro = "e" * 40, "f" * 40
    folder = scraped.trunk.hash_dir(commit, distro)
    folder.mkdir(parents=True)
    (folder / "commit.yaml").write_text("commits: []\n")
    db = Database(scraped.trunk.config().database_url)
    try:
        with db.transaction() as session:
            session.add(
                Commit(
                    project_name="python-late",
                    commit_hash=commit,
                    distro_hash=distro,
                    status="SUCCESS",
                    dt_build=int(time.time()) - 90,
                    type="rpm",
                    flags=0,
                )
            )
    finally:
        db.close()
    again, _ = _parse(scraped.client.get("/metrics").text)
    assert again["conveyor_build_duration_seconds_count"][0].value == before + 1
    # The build counts add the new row too (counted after the newest id already counted).
    successes = {s.labels["status"]: s.value for s in again["conveyor_builds_total"]}
    assert successes["SUCCESS"] == _value(scraped, "conveyor_builds_total", status="SUCCESS") + 1
    (total,) = again["dlrn_builds_total"]
    assert total.value == _value(scraped, "dlrn_builds_total", baseurl=total.labels["baseurl"]) + 1
    by_bound = {s.labels["le"]: s.value for s in again["conveyor_build_duration_seconds_bucket"]}
    first = {
        s.labels["le"]: s.value for s in scraped.samples["conveyor_build_duration_seconds_bucket"]
    }
    assert by_bound["60.0"] == first["60.0"] and by_bound["120.0"] == first["120.0"] + 1


def test_the_newest_cycle_is_reported(scraped: Scraped) -> None:
    # The built example's cycle: every package built, example-broken failing on purpose.
    assert _value(scraped, "conveyor_last_cycle_builds") == 8
    assert _value(scraped, "conveyor_last_cycle_exit_code") == 1
    assert _value(scraped, "conveyor_last_cycle_duration_seconds") > 0
    ended = _value(scraped, "conveyor_last_cycle_timestamp_seconds")
    assert ended <= time.time() and ended > time.time() - 3600
