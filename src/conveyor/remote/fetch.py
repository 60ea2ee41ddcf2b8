"""Downloading the files of a remote hash directory, over http(s) or from a file:// URL.

Every file is fetched under a time limit and a size limit, and a server that answers with an
HTML page (a login form, an error page, a directory index) is refused instead of saved: such a
page would otherwise surface much later as a "corrupt RPM" or "bad YAML".

The standard library is enough for this: a handful of plain GET requests do not justify a new
dependency (httpx is not installed). The opener is built by hand so that only http and https
are followed (urllib's default would also follow a redirect to ftp:// and open file:// URLs).
"""

from __future__ import annotations

import http.client
import os
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import quote, urlsplit, urlunsplit
from urllib.request import url2pathname

from conveyor.remote.errors import FetchError, ImportRefused, RemoteFileMissing

_CHUNK = 1024 * 1024
_SNIFF = 1024  # how much of a file is looked at to recognise an HTML page
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title")
_USER_AGENT = "conveyor-import"

# (file name, bytes so far, total when the server said it): drives a progress bar.
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Limits:
    """Per-file limits of an import."""

    timeout: float = 45.0  # seconds for one file, as DLRN's dlrn-remote
    max_rpm_bytes: int = 2 * 1024**3
    max_log_bytes: int = 256 * 1024**2
    max_record_bytes: int = 1024**2  # commit.yaml is a few hundred bytes

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("the download timeout must be positive")
        if min(self.max_rpm_bytes, self.max_log_bytes, self.max_record_bytes) <= 0:
            raise ValueError("size limits must be positive")


class _Stream(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


def looks_like_html(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_HTML_STARTS)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise FetchError(f"{req.full_url}: redirected to {newurl!r}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    opener.addheaders = [("User-Agent", _USER_AGENT)]
    for handler in (
        urllib.request.ProxyHandler(),  # honours http(s)_proxy and no_proxy like any client
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),  # certificates verified (the default context)
        urllib.request.HTTPDefaultErrorHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


@dataclass(frozen=True)
class _Opened:
    stream: _Stream
    size: int | None  # what the server announced, if anything
    content_type: str | None


class RemoteDirectory:
    """A hash directory published by another conveyor or DLRN, addressed by its URL."""

    def __init__(self, url: str, limits: Limits | None = None) -> None:
        self.url = url
        self.limits = limits or Limits()
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower()
        if self.scheme not in ("http", "https", "file"):
            raise ImportRefused(f"{url}: unsupported URL (use http://, https:// or file://)")
        if parts.query or parts.fragment:
            raise ImportRefused(f"{url}: a hash directory URL has no query or fragment")
        self._local: Path | None = None
        if self.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ImportRefused(f"{url}: a file:// URL must name a local path")
            self._local = Path(url2pathname(parts.path))
            if not self._local.is_absolute():
                raise ImportRefused(f"{url}: a file:// URL must hold an absolute path")
        elif not parts.hostname:
            raise ImportRefused(f"{url}: no host in the URL")
        # Names are appended below the directory whether or not the URL ends with a slash.
        self._base = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/"))
        self._opener = _opener()

    def url_of(self, name: str) -> str:
        return self._base + quote(name)

    # -- opening -----------------------------------------------------------------------------

    @contextmanager
    def _open_local(self, name: str) -> Iterator[_Opened]:
        assert self._local is not None
        path = self._local / name
        url = self.url_of(name)
        try:
            # O_NONBLOCK: a FIFO placed where a file is expected must not hang the import.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise RemoteFileMissing(f"{url}: no such file") from None
        except OSError as exc:
            raise FetchError(f"{url}: cannot open: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FetchError(f"{url}: not a regular file")
            yield _Opened(stream, info.st_size, None)

    @contextmanager
    def _open_http(self, name: str) -> Iterator[_Opened]:
        url = self.url_of(name)
        request = urllib.request.Request(url)  # noqa: S310 - scheme checked in __init__
        try:
            response = self._opener.open(request, timeout=self.limits.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (404, 410):
                raise RemoteFileMissing(f"{url}: not found (HTTP {exc.code})") from None
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise FetchError(f"{url}: cannot connect: {exc.reason}") from None
        except TimeoutError:
            raise FetchError(f"{url}: no answer within {self.limits.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"{url}: {exc}") from None
        with response:
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            content_type = response.headers.get_content_type() if response.headers else None
            yield _Opened(response, size, content_type)

    # -- reading -----------------------------------------------------------------------------

    def _chunks(
        self, name: str, what: str, max_bytes: int, progress: Progress | None
    ) -> Iterator[bytes]:
        """The file's bytes, chunk by chunk, each limit checked as they arrive."""
        url = self.url_of(name)
        timeout = self.limits.timeout
        deadline = time.monotonic() + timeout
        opener = self._open_local if self._local is not None else self._open_http
        with opener(name) as opened:
            if opened.content_type in _HTML_TYPES:
                raise FetchError(f"{url}: the server returned an HTML page instead of {what}")
            if opened.size is not None and opened.size > max_bytes:
                raise FetchError(
                    f"{url}: {opened.size} bytes, more than the {max_bytes}-byte limit"
                )
            done = 0
            head = b""
            while True:
                try:
                    chunk = opened.stream.read1(_CHUNK)
                except TimeoutError:
                    raise FetchError(f"{url}: stalled for {timeout:g} s") from None
                except (OSError, http.client.HTTPException) as exc:
                    raise FetchError(f"{url}: download interrupted: {exc}") from None
                if not chunk:
                    break
                done += len(chunk)
                if done > max_bytes:
                    raise FetchError(f"{url}: more than the {max_bytes}-byte limit")
                if len(head) < _SNIFF:
                    head += chunk[: _SNIFF - len(head)]
                    if len(head) >= _SNIFF and looks_like_html(head):
                        raise FetchError(
                            f"{url}: the server returned an HTML page instead of {what}"
                        )
                # The socket timeout bounds each read; this bounds the whole file, so a
                # server trickling bytes cannot hold the import (and the lock) for ever.
                if time.monotonic() > deadline:
                    raise FetchError(f"{url}: not downloaded within {timeout:g} s")
                if progress is not None:
                    progress(name, done, opened.size)
                yield chunk
            if len(head) < _SNIFF and looks_like_html(head):
                raise FetchError(f"{url}: the server returned an HTML page instead of {what}")
            if opened.size is not None and done != opened.size:
                raise FetchError(f"{url}: truncated ({done} of {opened.size} bytes)")

    def fetch_bytes(self, name: str, what: str, max_bytes: int) -> bytes:
        return b"".join(self._chunks(name, what, max_bytes, None))

    def fetch_file(
        self,
        name: str,
        dest: Path,
        what: str,
        max_bytes: int,
        progress: Progress | None = None,
    ) -> None:
        """Download `name` into `dest` (which must not exist); nothing is left on failure."""
        try:
            with dest.open("xb") as sink:
                for chunk in self._chunks(name, what, max_bytes, progress):
                    sink.write(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
