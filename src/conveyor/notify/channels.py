"""What delivery needs from a channel (mail, webhook), and the two ways a send can fail."""

from __future__ import annotations

from typing import Protocol

from conveyor.notify.events import Payload

EMAIL = "email"
WEBHOOK = "webhook"


class DeliveryFailed(Exception):
    """This message was not delivered; the next one may be."""


class ChannelDown(DeliveryFailed):
    """The channel cannot be reached (refused, timed out, bad login): the other messages of
    this pass would fail the same way, so they wait for the next pass untried."""


class Channel(Protocol):
    def send(self, payload: Payload, notification_id: int) -> None:
        """Deliver one message; raises DeliveryFailed (or ChannelDown) and nothing else."""

    def close(self) -> None:
        """Release connections kept between messages of one pass; never raises."""
