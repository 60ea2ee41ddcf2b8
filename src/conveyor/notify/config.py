"""The `[notifications]` section of `conveyor.toml`: every option has a default, and the
defaults send nothing (no mail server, no webhook)."""

from __future__ import annotations

import socket
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# DLRN's own interval between two failure mails of a project (reference/dlrn.md section 10).
DEFAULT_QUIET_HOURS = 24.0


class NotificationsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_server: str = Field(default="", description="mail server host; empty: no e-mail")
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_starttls: bool = False
    smtp_user: str = Field(default="", description="log in when set (after STARTTLS)")
    smtp_password: SecretStr = SecretStr("")
    mail_from: str = Field(default="", description="From address; empty: no-reply@<hostname>")
    webhook_url: str = Field(default="", description="http(s) URL POSTed JSON; empty: none")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC-SHA256 key of the X-Conveyor-Signature header; required with a URL",
    )
    timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    max_attempts: Annotated[int, Field(ge=1)] = 48
    quiet_hours: Annotated[float, Field(ge=0)] = DEFAULT_QUIET_HOURS

    @field_validator("smtp_server", "smtp_user", "mail_from")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # These end up in SMTP commands and mail headers, where a line break injects more.
        if any(c in value for c in "\r\n\0"):
            raise ValueError("must be a single line")
        return value.strip()

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        # urllib would also open file:// and ftp:// URLs; a webhook is HTTP.
        value = value.strip()
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> NotificationsConfig:
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            raise ValueError("webhook_secret is required when webhook_url is set")
        if self.smtp_user and not self.smtp_starttls:
            # smtplib refuses AUTH on a plain connection anyway; say so at load time.
            raise ValueError("smtp_user needs smtp_starttls = true (no password in clear)")
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_server)

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    @property
    def quiet_seconds(self) -> int:
        return int(self.quiet_hours * 3600)

    @property
    def sender(self) -> str:
        return self.mail_from or f"no-reply@{socket.gethostname() or 'localhost'}"


def notifications_of(config: object) -> NotificationsConfig:
    """`config.notifications` once the main configuration carries the section; all defaults
    (nothing sent) before that."""
    found = getattr(config, "notifications", None)
    return found if isinstance(found, NotificationsConfig) else NotificationsConfig()
