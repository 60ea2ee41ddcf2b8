"""Which URLs conveyor shows as links: a rule of the domain, not of one interface.

The API checks it when a vote is reported (`report_result` refuses other URLs) and the vote
pages (reports/civotes.py) check it again when they show a vote, since rows imported from DLRN
or written before the check may hold any URL. Both import it from here, so the rule they
apply cannot drift apart.
"""

from __future__ import annotations

from urllib.parse import urlsplit

HTTP_SCHEMES = frozenset({"http", "https"})


def is_http_url(text: str) -> bool:
    """Whether `text` is an absolute http(s) URL with a host, the only URLs the vote pages link
    to: a `javascript:` or `data:` link would run in the pages' origin when clicked. Browsers
    drop leading spaces and controls, and tabs and newlines anywhere, before reading the scheme
    (" java<TAB>script:" runs), so a URL holding any of them is refused, not second-guessed."""
    if any(char.isspace() or not char.isprintable() for char in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.netloc)
