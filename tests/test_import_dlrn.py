"""`conveyor import-dlrn` on a builder made by DLRN 0.26.1 itself (tests/fixtures/dlrn-0.26.1,
see its README): every row kept with its id, the repos tree adopted where it lies, and
nothing written whenever the import is refused or only rehearsed."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sqlite3
import sys
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine
from tests.support import cli, example_git, rows, tree_digest

from conveyor.cli import main
from conveyor.cli.migrate import register
from conveyor.config import Config, load_config
from conveyor.migrate import (
    LOCKED_PASSWORD,
    LabelKind,
    MigrationError,
    MigrationRefused,
    import_dlrn,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dlrn-0.26.1"
TABLES = ("users", "projects", "commits", "civotes", "civotes_agg", "promotions")
KEYS = {"users": "username"}
BASEURL = "http://trunk.example.org/centos9-master"

# The main module registers it once the lead wires it; until then the tests do.
if not any(c.name == "import-dlrn" for c in main.app.registered_commands):
    register(main.app)


class Site:
    """A DLRN builder copied into tmp_path, and a conveyor.toml adopting it."""

    def __init__(self, root: Path, metadata: Path = FIXTURE / "rdoinfo", **options: str) -> None:
        self.root = root
        self.dlrn_db = root / "dlrn" / "commits.sqlite"
        self.dlrn_db.parent.mkdir(parents=True)
        shutil.copyfile(FIXTURE / "commits.sqlite", self.dlrn_db)
        self.repos = root / "data" / "repos"
        shutil.copytree(FIXTURE / "repos", self.repos, symlinks=True)
        self.db = root / "data" / "commits.sqlite"
        self.config_path = root / "conveyor.toml"
        lines = [
            'datadir = "data"',
            f'baseurl = "{BASEURL}"',
            "use_components = true",
            *(f"{key} = {value}" for key, value in options.items()),
            "[metadata]",
            f'path = "{metadata}"',
            'tag = "master"',
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"sqlite:///{self.dlrn_db}"

    def config(self, **overrides: object) -> Config:
        return load_config(self.config_path).model_copy(update=overrides)

    def cli(self, *args: str) -> tuple[int, str]:
        return cli(
            "import-dlrn",
            "--config",
            str(self.config_path),
            "--database",
            self.url,
            "--repos",
            str(self.repos),
            *args,
        )


def table_rows(db: Path, table: str) -> list[tuple]:
    key = KEYS.get(table, "id")
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute(f"pragma table_info({table})")]
        listed = ", ".join(f'"{c}"' for c in columns)
        return conn.execute(f"select {listed} from {table} order by {key}").fetchall()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_every_row_is_imported_with_its_id(site: Site) -> None:
    before = digest(site.dlrn_db)
    report = import_dlrn(site.config(), site.url, site.repos)

    assert report.written and report.ok
    counts = {t.name: (t.found, t.imported) for t in report.tables}
    assert counts == {
        "users": (2, 3),  # + 'oldbot', deleted after voting
        "projects": (3, 3),
        "commits": (11, 11),
        "civotes": (9, 9),
        "civotes_agg": (3, 3),
        "promotions": (5, 5),
    }
    # Same columns in the same order (conveyor's tables are DLRN's, its own columns such as
    # users.roles come after them), same values, same ids.
    for table in TABLES:
        dlrn, conveyor = table_rows(site.dlrn_db, table), table_rows(site.db, table)
        width = len(dlrn[0]) if dlrn else 0
        conveyor = [row[:width] for row in conveyor]
        if table == "users":
            assert ("oldbot", LOCKED_PASSWORD) in conveyor
            conveyor.remove(("oldbot", LOCKED_PASSWORD))
        assert conveyor == dlrn, table
    assert digest(site.dlrn_db) == before  # DLRN's database is only read

    statuses = rows(site.db, "select status, count(*) from commits group by status")
    assert dict(statuses) == {"SUCCESS": 6, "FAILED": 4, "RETRY": 1}
    # conveyor's own summary is derived from the imported history.
    assert rows(
        site.db,
        "select project_name, component, last_status, last_commit_id, last_success_id, "
        "first_failure_id from package_status order by project_name",
    ) == [
        ("python-alpha", "common", "SUCCESS", 7, 7, None),
        ("python-beta", "common", "SUCCESS", 10, 10, None),
        ("python-gamma", "compute", "SUCCESS", 11, 11, None),
    ]
    check = report.repos_check
    assert check is not None and check.hash_dirs == 5 and check.missing == ()
    labels = {label.path: label for label in check.labels}
    assert labels["current"].kind is LabelKind.DIRECTORY  # DLRN's aggregate, with components
    common = labels["component/common/current-passed-ci"]
    assert (common.kind, common.target) == (
        LabelKind.LINK,
        "7b/f0/7bf0bc38af780f4adc37aaf6d4397026babec1cb_b7d0f355",
    )
    assert len(check.labels) == 12 and not any(lb.kind == "dangling" for lb in check.labels)
    assert report.warnings == [
        "user 'oldbot' (1 vote(s)/promotion(s)) is not in DLRN's users table (deleted with "
        "dlrn-user delete?): kept with a password no login can match"
    ]


def test_password_hashes_are_kept_and_still_verify(site: Site) -> None:
    import_dlrn(site.config(), site.url, site.repos)
    (stored,) = rows(site.db, "select password from users where username = 'ci'")[0]
    assert stored.startswith("$6$rounds=656000$")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")  # Python 3.11: glibc's crypt(3) reads passlib's
    assert crypt.crypt("ci-secret", stored) == stored


def test_cli_import_then_status_then_a_second_import_refuses(site: Site) -> None:
    code, output = site.cli()
    assert code == 0, output
    assert "imported 34 row(s)" in output
    assert "label component/compute/current -> a9/b0/a9b06505" in output

    code, output = cli("status", "--config", str(site.config_path))
    assert code == 0, output
    for package in ("python-alpha", "python-beta", "python-gamma"):
        assert package in output
    assert output.count("SUCCESS") == 3

    snapshot = {t: table_rows(site.db, t) for t in TABLES}
    code, output = site.cli()
    assert code == 2
    assert "already holds rows (commits: 11" in output
    assert "nothing was written" in output
    assert {t: table_rows(site.db, t) for t in TABLES} == snapshot


def test_dry_run_reports_and_writes_nothing(site: Site) -> None:
    before = tree_digest(site.root)
    code, output = site.cli("--dry-run")
    assert code == 0, output
    assert "would import" in output
    assert "repositories: 5 of 5 successful, not purged, build(s) present" in output
    assert "dry run: nothing was written" in output
    assert tree_digest(site.root) == before
    assert not site.db.exists()


def test_dry_run_shows_what_would_refuse_the_import(site: Site) -> None:
    site.config_path.write_text(site.config_path.read_text().replace("use_components = true", ""))
    shutil.rmtree(
        site.repos / "component/common/f7/1e/f71eac0920aa2d06ceb454e838ee14d948a4b28f_98b491ee"
    )
    report = import_dlrn(site.config(), site.url, site.root / "elsewhere", dry_run=True)
    assert not report.written and not site.db.exists()
    assert report.errors == [f"--repos {site.root / 'elsewhere'}: no such directory"]

    report = import_dlrn(site.config(), site.url, site.repos, dry_run=True)
    assert report.ok
    joined = "\n".join(report.warnings)
    assert "1 of 5 successful, not purged, build(s) have no directory" in joined
    assert "python-beta: the newest good build (commit id 10) lacks" in joined
    assert "use_components = false: set it to true" in joined
    assert not site.db.exists()


def test_repos_must_be_conveyors_repos_folder(site: Site, tmp_path: Path) -> None:
    elsewhere = tmp_path / "srv" / "dlrn" / "repos"
    shutil.move(site.repos, elsewhere)
    with pytest.raises(MigrationRefused) as refused:
        import_dlrn(site.config(), site.url, elsewhere)
    (error,) = refused.value.report.errors
    assert f'set datadir = "{elsewhere.parent}" in conveyor.toml' in error
    assert "never moves or copies it" in error
    assert list((tmp_path / "data").iterdir()) == []  # no database, no lock file

    # Following the advice works: the tree is adopted where it lies.
    config = site.config(datadir=elsewhere.parent)
    report = import_dlrn(config, site.url, elsewhere)
    assert report.written and (elsewhere.parent / "commits.sqlite").exists()


def test_baseurl_and_reponame_are_compared_with_dlrns(site: Site) -> None:
    report = import_dlrn(
        site.config(baseurl="http://new.example.org/repos", reponame="rdo"),
        site.url,
        site.repos,
        dry_run=True,
    )
    assert any("has no rdo.repo (it has delorean.repo)" in w for w in report.warnings)
    report = import_dlrn(
        site.config(baseurl="http://new.example.org/repos"), site.url, site.repos, dry_run=True
    )
    assert any(f'DLRN published with baseurl "{BASEURL}"' in w for w in report.warnings)


def _other_schema(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("create table builds (id integer)")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, "does not exist"),
        (lambda path: path.write_bytes(b""), "not a DLRN database: it has no 'commits' table"),
        (lambda path: path.write_text("not a database\n" * 100), "file is not a database"),
        (_other_schema, "has no 'commits' table (tables: builds)"),
    ],
    ids=["missing", "empty-file", "not-sqlite", "other-schema"],
)
def test_a_database_that_is_not_dlrns_is_refused(site: Site, make, message: str) -> None:
    bad = site.root / "bad.sqlite"
    make(bad)
    existed = bad.exists()
    code, output = cli(
        "import-dlrn",
        "--config",
        str(site.config_path),
        "--database",
        f"sqlite:///{bad}",
        "--repos",
        str(site.repos),
    )
    assert code == 2
    assert message in output
    assert not site.db.exists()
    assert bad.exists() == existed  # a missing file is not created by looking at it


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid DLRN database URL"),
        ("nosuchdb://host/dlrn", "no database driver for 'nosuchdb'"),
        ("sqlite://", "in-memory SQLite database holds no DLRN data"),
    ],
)
def test_bad_database_urls(site: Site, url: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        import_dlrn(site.config(), url, site.repos)
    assert not site.db.exists()


def test_dlrns_database_cannot_be_conveyors_too(site: Site) -> None:
    with pytest.raises(MigrationError, match="DLRN's database and conveyor's are the same"):
        import_dlrn(site.config(database=site.url), site.url, site.repos)


# -- databases of other DLRN versions, and rows DLRN's SQLite let through -------------------


def old_dlrn_database(path: Path) -> None:
    """The shape of a DLRN database from before its API (revision 47ebe0522809): no type,
    component, extended hash or branch; artifacts still called `rpms`; no vote tables."""
    metadata = MetaData()
    commits = Table(
        "commits",
        metadata,
        Column("id", Integer, primary_key=True),
        *(Column(c, Integer) for c in ("dt_commit", "dt_distro", "dt_build", "flags")),
        *(Column(c, String) for c in ("project_name", "repo_dir", "distgit_dir")),
        *(Column(c, String) for c in ("commit_hash", "distro_hash", "status")),
        Column("rpms", Text),
        Column("notes", Text),
        Column("builder_host", String),  # not DLRN's
    )
    projects = Table(
        "projects",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_name", String),
        Column("last_email", Integer),
    )
    Table("local_notes", metadata, Column("id", Integer, primary_key=True))
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    a, b = "a" * 40, "b" * 40
    with engine.begin() as conn:
        conn.execute(
            commits.insert(),
            [
                # Values as DLRN's YAML loaders leave them: numbers as text, 'None' strings.
                {
                    "id": 3,
                    "dt_build": "1500000000",
                    "project_name": "python-x",
                    "commit_hash": a,
                    "distro_hash": b,
                    "status": "SUCCESS",
                    "flags": None,
                    "rpms": f"repos/aa/aa/{a}_bbbbbbbb/x-1.0-1.noarch.rpm",
                    "notes": "OK",
                },
                {
                    "id": 7,
                    "dt_build": 1500000100.0,
                    "project_name": "python-x",
                    "commit_hash": a,
                    "distro_hash": b,
                    "status": "FAILED",
                    "flags": 0,
                    "rpms": "None",
                    "notes": "boom",
                },
            ],
        )
        conn.execute(
            projects.insert(),
            [
                {"id": 1, "project_name": "python-x", "last_email": 10},
                {"id": 2, "project_name": "python-x", "last_email": 20},  # a race's duplicate
            ],
        )
    engine.dispose()


def test_an_older_dlrn_schema_is_read_by_column_name(tmp_path: Path) -> None:
    site = Site(tmp_path)
    old_dlrn_database(site.dlrn_db.with_name("old.sqlite"))
    build = site.repos / "aa/aa" / f"{'a' * 40}_bbbbbbbb"
    build.mkdir(parents=True)
    (build / "x-1.0-1.noarch.rpm").write_bytes(b"rpm")
    (build / "delorean.repo").write_text(
        f"[delorean]\nname=x\nbaseurl={BASEURL}/aa/aa/{'a' * 40}_bbbbbbbb\n"
    )
    config = site.config(use_components=False)
    report = import_dlrn(config, f"sqlite:///{site.dlrn_db.with_name('old.sqlite')}", site.repos)

    assert report.written
    assert rows(site.db, "select id, type, dt_build, flags, artifacts, component from commits") == [
        (3, "rpm", 1500000000, 0, f"repos/aa/aa/{'a' * 40}_bbbbbbbb/x-1.0-1.noarch.rpm", None),
        (7, "rpm", 1500000100, 0, None, None),
    ]
    assert rows(site.db, "select id, project_name, last_email from projects") == [
        (1, "python-x", 20)
    ]
    joined = "\n".join(report.warnings)
    assert "commits: column(s) type, dt_extended, extended_hash, commit_branch" in joined
    assert "imported as NULL" in joined
    assert "commits: column(s) builder_host are not DLRN's: not imported" in joined
    assert "table 'local_notes' is not DLRN's: not imported" in joined
    assert "civotes: table absent (an older DLRN): nothing to import" in joined
    assert "commits.artifacts: 'None' (imported as NULL): 1 row(s) (e.g. 7)" in joined
    assert "projects: duplicate of 'python-x' merged into id 1: 1 row(s) (e.g. 2)" in joined


def test_rows_conveyor_cannot_store_refuse_the_import(site: Site) -> None:
    with sqlite3.connect(site.dlrn_db) as conn:
        conn.execute("update commits set commit_hash = null where id = 2")
        conn.execute("update commits set dt_build = 'yesterday' where id in (3, 4)")
        conn.execute("update civotes set commit_id = 99 where id = 6")  # a deleted commit
    with pytest.raises(MigrationRefused) as refused:
        import_dlrn(site.config(), site.url, site.repos)
    report = refused.value.report
    assert report.errors == [
        "commits.commit_hash: null (NULL where a value is required): 1 row(s) (e.g. 2)",
        "commits.dt_build: invalid ('yesterday' is not an integer): 2 row(s) (e.g. 3, 4)",
    ]
    assert (
        "civotes: refers to a commit that does not exist: not imported: 1 row(s) (e.g. 6)"
        in report.warnings
    )
    assert not site.db.exists()

    with sqlite3.connect(site.dlrn_db) as conn:
        conn.execute("update commits set commit_hash = ? where id = 2", ("aae63172" * 5,))
        conn.execute("update commits set dt_build = 1700000000 where id in (3, 4)")
    report = import_dlrn(site.config(), site.url, site.repos)
    assert report.written
    assert {t.name: t.imported for t in report.tables}["civotes"] == 8
    assert rows(site.db, "select count(*) from civotes where id = 6") == [(0,)]


# -- conveyor carries on where DLRN stopped --------------------------------------------------


def load_make_fixture():
    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURE / "make_fixture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_fixture"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed")
def test_conveyor_continues_the_trunk_dlrn_built(tmp_path: Path) -> None:
    make_fixture = load_make_fixture()
    dist = make_fixture.Distribution(tmp_path / "git")
    for _ in make_fixture.story(dist):
        pass  # the fixture's git history again: the very hashes DLRN built
    site = Site(tmp_path / "site", metadata=dist.metadata)
    assert import_dlrn(site.config(), site.url, site.repos).written

    code, output = cli("run", "--config", str(site.config_path))
    assert (code, "0 build(s)" in output) == (0, True), output  # nothing new since DLRN

    dist.upstream_change("python-alpha", 99)
    head = example_git(dist.upstream("python-alpha"), "rev-parse", "HEAD")
    code, output = cli("run", "--config", str(site.config_path))
    assert code == 0, output
    assert rows(site.db, "select id, commit_hash, status from commits where id > 11") == [
        (12, head, "SUCCESS")
    ]
    common = site.repos / "component" / "common"
    new = common / head[:2] / head[2:4] / f"{head}_b7d0f355"
    assert (common / "current").readlink() == Path(new.relative_to(common))
    # The new repository links python-beta's RPMs in the directory DLRN built.
    beta = sorted(p for p in new.iterdir() if p.name.startswith("python-beta"))
    assert beta and all(p.is_symlink() and p.exists() for p in beta)
    assert "f71eac0920aa2d06ceb454e838ee14d948a4b28f_98b491ee" in str(beta[0].readlink())
