"""The HTTP interface: the DLRN-compatible API, the repositories, pages and metrics."""

from conveyor.api.app import create_app

__all__ = ["create_app"]
