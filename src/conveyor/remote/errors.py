"""Why an import is refused. Every message names the URL, file or key at fault."""

from __future__ import annotations


class ImportRefused(Exception):
    """The remote build cannot be imported; nothing was written."""


class FetchError(ImportRefused):
    """A remote file could not be downloaded, or is not what was asked for."""


class RemoteFileMissing(FetchError):
    """The server answered that the file does not exist (HTTP 404, or no such local file)."""


class CommitRecordError(ImportRefused):
    """commit.yaml is malformed or unsafe."""


class ArtifactError(ImportRefused):
    """A downloaded RPM is not a valid package, or not the one commit.yaml names."""
