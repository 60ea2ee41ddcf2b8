"""E-mail to package maintainers: the message text, and the SMTP adapter that sends it.

One SMTP connection serves all the mails of a delivery pass. Every socket operation is
bounded by `timeout`, so a server that accepts and never answers costs one timeout, not a
hung builder.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from conveyor.config import NotificationsConfig
from conveyor.notify.channels import ChannelDown, DeliveryFailed
from conveyor.notify.events import EventKind, Payload

log = logging.getLogger(__name__)

# Refusals of one message (a recipient, the sender, the content): the connection is fine.
_MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def valid_recipient(address: str) -> bool:
    """An address that can go into a To header and an RCPT command as it is."""
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() or c in "<>,;" for c in address)


def _facts(payload: Payload) -> list[str]:
    rows = [
        ("Package", f"{payload.package} (project {payload.project})"),
        ("Branch", payload.branch),
        ("Commit", payload.commit_ref),
        ("Distgit", payload.distro_commit_url or payload.distro_hash or "-"),
        ("NVR", payload.nvr or "unknown"),
    ]
    if payload.event is EventKind.FTBFS:
        # The notes' first line is the reason; the failing lines follow as the excerpt below.
        reason = (payload.notes or "").partition("\n")[0].strip() or "-"
        rows += [("Log", payload.log_url), ("Reason", reason)]
    else:
        rows += [("Repository", payload.repo_url or "-"), ("Log", payload.log_url)]
    return [f"{name + ':':12}{value}" for name, value in rows]


def mail_body(payload: Payload, quiet_hours: float) -> str:
    if payload.event is EventKind.FTBFS:
        head = f"{payload.package} failed to build from {payload.branch}."
        excerpt = "\n".join(f"    {line}" for line in payload.excerpt.splitlines())
        tail = [
            "",
            "The build log, around the first error:",
            "",
            excerpt or "    (the log could not be read)",
            "",
            "--",
            f"You are a maintainer of {payload.package}. conveyor sends at most one such mail",
            f"per package every {quiet_hours:g} hours, and one more when the package builds again.",
        ]
    else:
        head = f"{payload.package} builds again from {payload.branch}."
        since = payload.failing_since or "-"
        tail = [
            "",
            f"It had failed since commit {since}.",
            "",
            "--",
            f"You are a maintainer of {payload.package}.",
        ]
    return "\n".join([head, "", *_facts(payload), *tail]) + "\n"


def render_mail(
    payload: Payload, settings: NotificationsConfig, notification_id: int
) -> EmailMessage:
    sender = settings.sender
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(payload.maintainers)
    message["Subject"] = payload.subject
    message["Date"] = formatdate(usegmt=True)
    # make_msgid without a domain asks DNS for this host's name; the sender's domain will do.
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(f"conveyor.{notification_id}", domain=domain)
    # RFC 3834: vacation responders must not answer a robot.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Conveyor-Event"] = payload.event.value
    message["X-Conveyor-Package"] = payload.package
    message.set_content(mail_body(payload, settings.quiet_hours))
    return message


class MailChannel:
    def __init__(self, settings: NotificationsConfig) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        smtp = smtplib.SMTP(settings.smtp_server, settings.smtp_port, timeout=settings.timeout)
        try:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, payload: Payload, notification_id: int) -> None:
        recipients = [a for a in payload.maintainers if valid_recipient(a)]
        if not recipients:
            raise DeliveryFailed("no valid maintainer address")
        try:
            message = render_mail(payload, self.settings, notification_id)
        except (ValueError, TypeError) as exc:  # a header the email package refuses
            raise DeliveryFailed(f"cannot write the message: {exc}") from exc
        server = f"{self.settings.smtp_server}:{self.settings.smtp_port}"
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            refused = self._smtp.send_message(message, to_addrs=recipients)
        except _MESSAGE_ERRORS as exc:
            raise DeliveryFailed(f"{server} refused the message: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Refused connection, timeout, TLS or login failure, a server that hung up.
            self._drop()
            raise ChannelDown(f"{server}: {type(exc).__name__}: {exc}") from exc
        if refused:
            # The others got it; sending again would mail them twice.
            log.warning("%s refused some recipients of %s: %s", server, payload.package, refused)

    def _drop(self) -> None:
        # No QUIT: a server that just timed out would make us wait once more.
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        smtp = self._smtp
        if smtp is None:
            return
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
        self._drop()
