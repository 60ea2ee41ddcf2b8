"""Telling people about builds: FTBFS and "fixed" mails to maintainers, and a signed webhook.

- `listener.NotificationListener`: a trunk BuildListener that decides (events.py) and writes
  outbox rows in the build's own transaction.
- `delivery.deliver_pending`: sends due rows by mail (mail.py) and webhook (webhook.py),
  retrying with backoff; called after every cycle.
- The `[notifications]` section of conveyor.toml is `conveyor.config.NotificationsConfig`.
"""
