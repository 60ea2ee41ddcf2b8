"""FTBFS notifications: the event rules, the message, and delivery to a real SMTP server
(aiosmtpd on 127.0.0.1) and a local HTTP receiver, including servers that are down, refuse
or hang. Builds are real: the example distribution's `example-broken` fails on purpose."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError
from sqlalchemy import select
from tests.support import Trunk, example, fresh_trunk

from conveyor.assembly.builder import run_cycle
from conveyor.config import Config, NotificationsConfig
from conveyor.domain.forge import commit_url
from conveyor.domain.status import CommitStatus
from conveyor.notify.delivery import SENT_ABANDONED, DeliveryReport, backoff, deliver_pending
from conveyor.notify.events import EventKind, Payload, decide_event, nvr_from_log_header
from conveyor.notify.excerpt import EXCERPT_LINES, excerpt, read_excerpt
from conveyor.notify.listener import NotificationListener
from conveyor.notify.webhook import SIGNATURE_HEADER, signature, verify_signature
from conveyor.store.database import Database
from conveyor.store.models import Commit, Notification, Project
from conveyor.trunk.cycle import CycleOptions

T0 = 1_800_000_000
DAY = 24 * 3600
BROKEN = "example-broken"
SECRET = "s3cret"

needs_rpmbuild = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="needs rpmbuild")


# --- the rules, without I/O ---------------------------------------------------------------


def decide(status: CommitStatus, **kw: object) -> EventKind | None:
    args: dict[str, object] = {
        "was_failing": False,
        "streak_announced": False,
        "last_email": None,
        "now": T0,
        "quiet_seconds": DAY,
    }
    return decide_event(status, **{**args, **kw})


def test_a_failure_is_announced_at_most_once_per_window():
    assert decide(CommitStatus.FAILED) is EventKind.FTBFS
    assert decide(CommitStatus.FAILED, last_email=T0 - DAY + 1) is None
    assert decide(CommitStatus.FAILED, last_email=T0 - DAY) is EventKind.FTBFS
    # A clock that went back must not silence a package forever.
    assert decide(CommitStatus.FAILED, last_email=T0 + 3600) is EventKind.FTBFS
    assert decide(CommitStatus.FAILED, last_email=T0, quiet_seconds=0) is EventKind.FTBFS


def test_retry_is_silent_and_fixed_needs_an_announced_failure():
    assert decide(CommitStatus.RETRY) is None
    assert decide(CommitStatus.RETRY, was_failing=True, streak_announced=True) is None
    assert decide(CommitStatus.SUCCESS) is None
    assert decide(CommitStatus.SUCCESS, was_failing=True) is None
    assert decide(CommitStatus.SUCCESS, was_failing=True, streak_announced=True) is (
        EventKind.FIXED
    )


SHA = "0d9632f0d2f9960d86195d9049834d701cfe94ee"


@pytest.mark.parametrize(
    ("repository", "link"),
    [
        ("https://github.com/openstack/nova", f"https://github.com/openstack/nova/commit/{SHA}"),
        ("https://github.com/org/repo.git/", f"https://github.com/org/repo/commit/{SHA}"),
        ("git@github.com:org/repo.git", f"https://github.com/org/repo/commit/{SHA}"),
        ("https://opendev.org/openstack/nova", f"https://opendev.org/openstack/nova/commit/{SHA}"),
        (
            "git://opendev.org/openstack/nova.git",
            f"https://opendev.org/openstack/nova/commit/{SHA}",
        ),
        ("https://gitlab.com/group/sub/proj", f"https://gitlab.com/group/sub/proj/-/commit/{SHA}"),
        ("https://gitlab.example.org/a/b.git", f"https://gitlab.example.org/a/b/-/commit/{SHA}"),
        ("file:///srv/git/nova", None),
        ("/srv/git/nova", None),
        ("https://git.example.org/nova", None),
        ("https://github.com/nova", None),  # no owner: not a repository page
        ("https://github.com/org/repo?x=<script>", f"https://github.com/org/repo/commit/{SHA}"),
        ("https://github.com/org/re po", None),
    ],
)
def test_commit_links_follow_the_forge(repository, link):
    assert commit_url(repository, SHA) == link


def test_commit_link_needs_a_real_hash():
    assert commit_url("https://github.com/org/repo", "../../evil") is None


def test_excerpt_ends_a_little_after_the_first_error():
    lines = [f"line {i}" for i in range(100)]
    lines[60] = "error: Bad exit status from /var/tmp/rpm-tmp.X (%build)"
    lines[70] = "error: a later one"
    shown = excerpt("\n".join(lines)).splitlines()
    assert len(shown) == EXCERPT_LINES
    assert shown[-1] == "line 67" and "error: Bad exit status" in shown[-8]
    # Without an error line: the end of the log.
    assert excerpt("\n".join(f"l{i}" for i in range(50))).splitlines()[0] == "l10"


def test_excerpt_of_a_huge_log_that_is_not_utf8(tmp_path):
    log = tmp_path / "rpmbuild.log"
    with log.open("wb") as out:
        out.write(b"conveyor: building x-1.0-0.1.abc from abc\n")
        out.write(os.urandom(20_000_000))  # 20 MB of noise, with stray newlines and NULs
        out.write(b"\n\xff\xfe latin-1 caf\xe9\x1b[31m\n")
        out.write(b"x-1.0: failing on purpose\n+ exit 1\n")
        out.write(b"error: Bad exit status from /var/tmp/rpm-tmp.X (%build)\n")
    shown = read_excerpt(log)
    assert "conveyor: building" not in shown  # only the tail was read, not 20 MB
    assert "x-1.0: failing on purpose" in shown
    assert "caf\ufffd\ufffd[31m" in shown  # undecodable bytes and the escape, replaced
    assert len(shown) < EXCERPT_LINES * 420
    assert not any(ord(c) < 32 and c not in "\n\t" for c in shown)
    assert read_excerpt(tmp_path / "missing.log") == ""


def test_nvr_from_the_log_header():
    assert nvr_from_log_header("conveyor: building a-1.0-0.2026.abc from abc") == "a-1.0-0.2026.abc"
    assert nvr_from_log_header("+ rpmbuild -bs") is None
    assert nvr_from_log_header("conveyor: building  from abc") is None


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"webhook_url": "https://chat.example.org/hook"}, "webhook_secret is required"),
        ({"webhook_url": "file:///etc/passwd", "webhook_secret": "x"}, "http:// or https://"),
        ({"smtp_server": "mail\r\nRCPT TO:<x@y>"}, "single line"),
        ({"smtp_user": "bot"}, "smtp_starttls"),
        ({"timeout": 0}, "timeout"),
        ({"smtp_serv": "x"}, "smtp_serv"),
    ],
)
def test_bad_settings_are_refused(options, named):
    with pytest.raises(ValidationError, match=named):
        NotificationsConfig.model_validate(options)


def test_defaults_send_nothing_and_secrets_stay_hidden():
    settings = NotificationsConfig()
    assert not settings.email_enabled and not settings.webhook_enabled
    assert settings.quiet_seconds == DAY and settings.sender.startswith("no-reply@")
    hidden = NotificationsConfig(webhook_url="http://h/x", webhook_secret=SECRET)
    assert SECRET not in repr(hidden)


def test_webhook_signature_is_github_style():
    body = b'{"event":"ftbfs"}'
    expected = "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert signature("key", body) == expected
    assert verify_signature("key", body, expected)
    assert not verify_signature("key", body + b" ", expected)
    assert not verify_signature("other", body, expected)
    assert not verify_signature("key", body, None)


# --- local servers ------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping what it accepts; `refuse` makes it answer DATA with it."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse: str | None = None

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse:
            return self.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.inbox = Inbox()
        self.port = port or free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in accepted:
        conn.close()


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), body))
        self.send_response(self.server.status)
        if self.server.status == 302:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- the trunk, its outbox and delivery ----------------------------------------------------


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def mail_settings(port: int, **more: object) -> NotificationsConfig:
    return NotificationsConfig(
        smtp_server="127.0.0.1", smtp_port=port, mail_from="trunk@example.org", **more
    )


def cycle(trunk: Trunk, settings: NotificationsConfig, clock: Clock, package: str = BROKEN):
    config = trunk.config()
    listener = NotificationListener(config, settings, clock=clock)
    return run_cycle(config, CycleOptions(only=[package], listeners=[listener]))


def deliver(config: Config, settings: NotificationsConfig, now: int) -> DeliveryReport:
    db = Database(config.database_url)
    try:
        return deliver_pending(config, db, now=now, settings=settings)
    finally:
        db.close()


def outbox(config: Config) -> list[Notification]:
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            return list(session.scalars(select(Notification).order_by(Notification.id)))
    finally:
        db.close()


def last_email(config: Config, package: str = BROKEN) -> int | None:
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            project = session.scalar(select(Project).where(Project.project_name == package))
            return project.last_email if project else None
    finally:
        db.close()


@pytest.fixture
def trunk(tmp_path) -> Trunk:
    return fresh_trunk(tmp_path / "dist")


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


@needs_rpmbuild
def test_failure_mail_once_per_day_then_fixed_mail(trunk, smtp):
    config, settings, clock = trunk.config(), mail_settings(smtp.port), Clock(T0)
    assert cycle(trunk, settings, clock).exit_code == 1
    (row,) = outbox(config)
    assert (row.kind, row.channel, row.project_name, row.sent) == ("ftbfs", "email", BROKEN, None)
    assert last_email(config) == T0

    report = deliver(config, settings, T0)
    assert (report.sent, report.retried) == (1, 0)
    ((rcpt, message),) = smtp.inbox.messages
    _, commit_hash, distro_hash, *_ = trunk.newest(BROKEN)
    relpath = trunk.hash_dir(commit_hash, distro_hash).relative_to(trunk.repos)
    assert rcpt == ["dave@example.org"] and message["To"] == "dave@example.org"
    assert message["From"] == "trunk@example.org"
    assert message["Subject"] == f"[conveyor] {BROKEN} master package build failed"
    assert message["Auto-Submitted"] == "auto-generated"
    body = body_of(message)
    log_url = f"{config.baseurl}/{relpath}/rpmbuild.log"
    assert log_url in body
    assert Path(log_url.removeprefix("file://")).is_file()  # the URL is the published log
    assert f"Commit:     {commit_hash}" in body  # file:// upstream: the bare hash
    assert f"{BROKEN}: failing on purpose" in body
    assert "error: Bad exit status" in body
    assert f"{BROKEN}-0.1" in body  # the NVR, from the log's header
    assert outbox(config)[0].sent == T0
    assert deliver(config, settings, T0 + 5).sent == 0  # nothing sent twice

    # Still failing an hour later: no second mail.
    clock.now = T0 + 3600
    example.add_upstream_commit(trunk.root, BROKEN, "Still broken")
    assert cycle(trunk, settings, clock).exit_code == 1
    assert len(outbox(config)) == 1 and last_email(config) == T0

    # A day later, still failing: one more.
    clock.now = T0 + DAY + 60
    example.add_upstream_commit(trunk.root, BROKEN, "Broken for a day")
    assert cycle(trunk, settings, clock).exit_code == 1
    assert [r.kind for r in outbox(config)] == ["ftbfs", "ftbfs"]
    assert last_email(config) == T0 + DAY + 60

    # Fixed in the distgit: the "fixed" mail names where the failure started.
    clock.now = T0 + DAY + 120
    example.fix_broken_package(trunk.root)
    assert cycle(trunk, settings, clock).exit_code == 0
    assert [r.kind for r in outbox(config)] == ["ftbfs", "ftbfs", "fixed"]
    assert deliver(config, settings, clock.now).sent == 2
    fixed = smtp.inbox.messages[-1][1]
    assert fixed["Subject"] == f"[conveyor] {BROKEN} master package build fixed"
    assert f"It had failed since commit {commit_hash}." in body_of(fixed)
    assert "/repos/" in body_of(fixed) and "Repository:" in body_of(fixed)
    assert last_email(config) == T0 + DAY + 60  # a fixed mail is not a failure mail


@needs_rpmbuild
def test_webhook_posts_signed_json(trunk, receiver):
    config = trunk.config()
    settings = NotificationsConfig(webhook_url=receiver.url, webhook_secret=SECRET)
    assert cycle(trunk, settings, Clock(T0)).exit_code == 1
    (row,) = outbox(config)
    assert row.channel == "webhook"
    assert deliver(config, settings, T0).sent == 1
    ((headers, body),) = receiver.requests
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Conveyor-Event"] == "ftbfs"
    assert headers["X-Conveyor-Delivery"] == str(row.id)
    data = json.loads(body)
    assert (data["event"], data["package"], data["version"]) == ("ftbfs", BROKEN, 1)
    assert data["log_url"].endswith("/rpmbuild.log") and data["maintainers"] == ["dave@example.org"]
    assert "failing on purpose" in data["excerpt"]


@needs_rpmbuild
def test_mail_server_down_keeps_the_notification_until_it_is_up(trunk):
    config, settings = trunk.config(), mail_settings(free_port())
    assert cycle(trunk, settings, Clock(T0)).exit_code == 1  # the build is as it was
    assert trunk.newest(BROKEN)[0] == "FAILED"

    report = deliver(config, settings, T0)
    assert (report.sent, report.retried) == (0, 1)
    (row,) = outbox(config)
    assert (row.attempts, row.sent, row.next_attempt) == (1, None, T0 + backoff(1))
    assert "ConnectionRefusedError" in (row.last_error or "")
    assert deliver(config, settings, T0 + 30).sent == 0  # not due yet: not tried

    with SmtpServer() as server:
        up = mail_settings(server.port)
        assert deliver(config, up, T0 + backoff(1)).sent == 1
        assert len(server.inbox.messages) == 1
    (row,) = outbox(config)
    assert (row.attempts, row.sent, row.last_error) == (2, T0 + backoff(1), None)


# Outbox rows written directly, for delivery tests that need no build.


@pytest.fixture
def site(tmp_path) -> Config:
    """A builder's configuration with an empty database: enough for delivery."""
    return Config(datadir=tmp_path / "data")


def add_rows(config: Config, count: int, channel: str = "email") -> None:
    payload = Payload(
        event=EventKind.FTBFS,
        package=BROKEN,
        project=BROKEN,
        component=None,
        branch="master",
        status="FAILED",
        commit_hash=SHA,
        distro_hash=SHA,
        extended_hash=None,
        upstream="https://github.com/example/broken",
        commit_url=commit_url("https://github.com/example/broken", SHA),
        distgit="file:///srv/distgit",
        distro_commit_url=None,
        nvr=None,
        dt_build=T0,
        notes="rpmbuild failed (exit 1)",
        log_url="http://trunk/repos/0d/96/x/rpmbuild.log",
        repo_url=None,
        excerpt="error: Bad exit status",
        failing_since=None,
        maintainers=("dave@example.org",),
    )
    db = Database(config.database_url)
    try:
        with db.transaction() as session:
            commit = Commit(project_name=BROKEN, commit_hash=SHA, status="FAILED", flags=0)
            session.add(commit)
            session.flush()
            for _ in range(count):
                session.add(
                    Notification(
                        kind="ftbfs",
                        channel=channel,
                        project_name=BROKEN,
                        commit_id=commit.id,
                        payload=payload.model_dump_json(),
                        created=T0,
                        attempts=0,
                        next_attempt=T0,
                    )
                )
    finally:
        db.close()


def test_a_refusing_server_is_retried_then_given_up(site, smtp):
    add_rows(site, 1)
    smtp.inbox.refuse = "550 5.7.1 Relaying denied"
    settings = mail_settings(smtp.port, max_attempts=3)
    assert deliver(site, settings, T0).retried == 1
    (row,) = outbox(site)
    assert row.attempts == 1 and "550" in (row.last_error or "")
    assert row.next_attempt == T0 + 60

    smtp.inbox.refuse = None
    assert deliver(site, settings, T0 + 60).sent == 1
    assert outbox(site)[0].sent == T0 + 60
    assert commit_url("https://github.com/example/broken", SHA) in body_of(
        smtp.inbox.messages[0][1]
    )

    add_rows(site, 1)
    smtp.inbox.refuse = "550 5.1.1 No such user"
    now = T0
    for _ in range(3):
        report = deliver(site, settings, now)
        now += backoff(3)
    assert report.abandoned == 1
    row = outbox(site)[-1]
    assert (row.sent, row.attempts) == (SENT_ABANDONED, 3)
    assert deliver(site, settings, now + DAY).retried == 0  # abandoned rows stay abandoned


def test_a_hanging_server_costs_one_timeout_and_webhooks_still_go(site, silent_smtp, receiver):
    add_rows(site, 3, "email")
    add_rows(site, 1, "webhook")
    settings = mail_settings(
        silent_smtp, timeout=0.5, webhook_url=receiver.url, webhook_secret=SECRET
    )
    started = time.monotonic()
    report = deliver(site, settings, T0)
    assert time.monotonic() - started < 5  # one 0.5 s timeout, not a hang
    # One mail tried and timed out; the two others were not even tried; the webhook went.
    assert (report.retried, report.deferred, report.sent) == (1, 2, 1)
    emails = [r for r in outbox(site) if r.channel == "email"]
    assert [r.attempts for r in emails] == [1, 0, 0]
    assert "timed out" in (emails[0].last_error or "")
    assert all(r.sent is None for r in emails)


def test_webhook_errors_and_redirects_are_retried(site, receiver):
    add_rows(site, 1, "webhook")
    settings = NotificationsConfig(webhook_url=receiver.url, webhook_secret=SECRET)
    for day, status in enumerate((500, 302)):
        receiver.status = status
        report = deliver(site, settings, T0 + day * DAY)
        assert report.retried == 1, report.errors
        assert f"HTTP {status}" in report.errors[0]
    assert len(receiver.requests) == 2  # the redirect was not followed
    receiver.status = 200
    assert deliver(site, settings, T0 + 10 * DAY).sent == 1


def test_nothing_is_sent_or_written_without_a_channel(site):
    add_rows(site, 1)
    report = deliver(site, NotificationsConfig(), T0)
    assert (report.sent, report.retried, report.deferred) == (0, 0, 0)
    assert outbox(site)[0].attempts == 0  # kept for when e-mail is configured


@needs_rpmbuild
@pytest.mark.skipif(
    "notifications" not in Config.model_fields, reason="[notifications] is not wired into Config"
)
def test_conveyor_run_sends_what_conveyor_toml_configures(trunk, smtp, receiver):
    with trunk.config_path.open("a") as toml:
        toml.write(
            "\n[notifications]\n"
            f'smtp_server = "127.0.0.1"\nsmtp_port = {smtp.port}\n'
            f'webhook_url = "{receiver.url}"\nwebhook_secret = "{SECRET}"\n'
        )
    code, output = trunk.run("--package", BROKEN)
    assert code == 1, output
    ((rcpt, message),) = smtp.inbox.messages
    assert rcpt == ["dave@example.org"] and "failing on purpose" in body_of(message)
    ((headers, body),) = receiver.requests
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    assert {(r.channel, r.sent is not None) for r in outbox(trunk.config())} == {
        ("email", True),
        ("webhook", True),
    }
