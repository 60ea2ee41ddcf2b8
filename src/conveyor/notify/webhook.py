"""The generic webhook: the payload POSTed as JSON, signed the way GitHub signs its hooks.

`X-Conveyor-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with webhook_secret>`.
A receiver recomputes it over the bytes it received and compares in constant time
(`verify_signature`). `X-Conveyor-Event` names the event, `X-Conveyor-Delivery` the outbox
row: a receiver that sees the same delivery id twice (after a lost answer) can drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import urllib.error
import urllib.request

from conveyor.config import NotificationsConfig
from conveyor.notify.channels import ChannelDown, DeliveryFailed
from conveyor.notify.events import Payload

SIGNATURE_HEADER = "X-Conveyor-Signature"
EVENT_HEADER = "X-Conveyor-Event"
DELIVERY_HEADER = "X-Conveyor-Delivery"


def signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(signature(secret, body), header)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would replay a redirected POST as a GET without its body: refuse instead.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebhookChannel:
    def __init__(self, settings: NotificationsConfig) -> None:
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret.get_secret_value()
        self.timeout = settings.timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, payload: Payload, notification_id: int) -> None:
        body = payload.to_json()
        # S310: the scheme is http(s), the configuration refuses any other.
        request = urllib.request.Request(  # noqa: S310
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "conveyor-notify/1",
                EVENT_HEADER: payload.event.value,
                DELIVERY_HEADER: str(notification_id),
                SIGNATURE_HEADER: signature(self.secret, body),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            # The receiver answered: it is up, this message was not accepted.
            raise DeliveryFailed(f"{self.url}: HTTP {exc.code} {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ChannelDown(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        return None
