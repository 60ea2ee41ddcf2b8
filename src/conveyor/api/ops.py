"""Admin writes of the DLRN API: rechecking a package, importing a remote build."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from conveyor.api import openapi as doc
from conveyor.api.context import Admin, Ctx, audit
from conveyor.api.errors import ApiError
from conveyor.api.params import Body
from conveyor.metadata.errors import MetadataError

router = APIRouter(prefix="/api", tags=["dlrn"])


@router.post("/recheck_package", status_code=201, **doc.RECHECK_PACKAGE)
def recheck_package(request: Request, ctx: Ctx, user: Admin, p: Body) -> JSONResponse:
    from conveyor.metadata.targets import TargetError
    from conveyor.trunk.recheck import LastBuildSucceeded, RecheckRefused, recheck

    package = p.req("package_name")
    try:
        commit = recheck(ctx.config, package, db=ctx.db)
    except LastBuildSucceeded as exc:
        raise ApiError(str(exc), 409) from None
    except (RecheckRefused, TargetError, MetadataError) as exc:
        raise ApiError(str(exc), 400) from None
    with ctx.db.transaction() as session:
        audit(session, request, user, 201, {"package_name": package, "commit_id": commit.id})
    return JSONResponse({"result": "ok"}, status_code=201)


@router.post("/remote/import", status_code=201, **doc.REMOTE_IMPORT)
def remote_import(request: Request, ctx: Ctx, user: Admin, p: Body) -> JSONResponse:
    """Runs in the server's thread pool, never on the event loop."""
    from conveyor.assembly.builder import Builder
    from conveyor.publish.locks import BuilderBusy
    from conveyor.remote import ImportRefused

    repo_url = p.req("repo_url")
    if urlsplit(repo_url).scheme not in ("http", "https"):
        raise ApiError("repo_url must be an http or https URL", 400)
    details: dict[str, Any] = {"repo_url": repo_url}
    builder = Builder(ctx.config, ctx.db)
    try:
        report = builder.import_commit(repo_url)
    except BuilderBusy as exc:
        raise ApiError(f"Remote import failed with error: {exc}", 409) from None
    except (ImportRefused, Exception) as exc:
        raise ApiError(f"Remote import failed with error: {exc}", 500) from None
    finally:
        builder.close()
    details["skipped"] = report.skipped
    with ctx.db.transaction() as session:
        audit(session, request, user, 201, details)
    return JSONResponse({"repo_url": repo_url}, status_code=201)
