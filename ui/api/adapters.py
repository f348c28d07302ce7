"""``/adapters``: list, detail, removal (admin), download as a zip of an export, preview PNG."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from loradex.types import public_detail
from ui.api.deps import ADMIN, AdminDep, ServiceDep
from ui.api.errors import ApiError
from ui.api.schemas import ERRORS, AdapterDetail, AdapterSummary, TryRequest

router = APIRouter(prefix="/adapters", tags=["adapters"], responses=ERRORS)


@router.get("", response_model=list[AdapterSummary],
            responses={200: {"headers": {"X-Total-Count": {"description": "adapters passing the filters"},
                                         "Link": {"description": '<url of the next page>; rel="next"'}}}})  # fmt: skip
def list_adapters(
    request: Request,
    response: Response,
    service: ServiceDep,
    family: str | None = None,
    format: str | None = None,
    origin: str | None = None,
    tag: Annotated[list[str] | None, Query(description="required tag (repeatable)")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    sort: Annotated[
        str,
        Query(
            max_length=16,
            description="id, name, family, format, origin, created, size, params; '-' first for descending",
        ),
    ] = "id",  # fmt: skip
) -> list[dict[str, Any]]:
    """One page of adapters; the total is in ``X-Total-Count`` and the next page in ``Link``."""
    filters = {"family": family, "format": format, "origin": origin, "tags": tag}
    rows: list[dict[str, Any]] = service.list(**filters, limit=limit, offset=offset, sort=sort)
    total = int(service.count(**filters))
    response.headers["X-Total-Count"] = str(total)
    if limit is not None and rows and offset + len(rows) < total:
        response.headers["Link"] = f'<{request.url.include_query_params(offset=offset + len(rows))}>; rel="next"'
    return rows


@router.get("/{ref}", response_model=AdapterDetail)
def get_adapter(ref: str, service: ServiceDep, admin: AdminDep) -> dict[str, Any]:
    """By id, sha256 (prefix) or exact name; the server path of its source only with the admin token."""
    info: dict[str, Any] = service.get(ref)
    return info if admin else public_detail(info)


@router.get("/{ref}/usage", response_model=dict[str, str])
def usage(ref: str, service: ServiceDep) -> dict[str, str]:
    """export format → a snippet that loads the downloaded zip's content (diffusers, PEFT, kohya tools)."""
    return service.usage(ref)  # type: ignore[no-any-return]


@router.post("/{ref}/try", responses={200: {"content": {"application/json": {}, "image/png": {}},
                                            "description": "text rows (base vs adapter) or a PNG (base row, adapter row)"}})  # fmt: skip
def try_it(ref: str, req: TryRequest, service: ServiceDep) -> Any:
    """Run the adapter on your inputs beside the bare base of its family: JSON rows for language
    families, a PNG for image families with a pipeline; ``bad_request`` naming how to register a base otherwise."""
    out: dict[str, Any] = service.try_it(ref, req.inputs)
    if out["kind"] == "image":
        return Response(out.pop("png"), media_type="image/png")
    return out


@router.delete("/{ref}", response_model=AdapterSummary, tags=["admin"], dependencies=ADMIN)
def remove_adapter(ref: str, service: ServiceDep) -> dict[str, Any]:
    return service.remove(ref)  # type: ignore[no-any-return]


@router.get("/{ref}/download", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "zip of the exported files"}})  # fmt: skip
def download(ref: str, service: ServiceDep,
             format: Annotated[str, Query(description="diffusers | peft | kohya")]) -> FileResponse:  # fmt: skip
    from registry.formats import writers

    if format not in writers():
        raise ApiError(400, "bad_request", f"unknown export format {format!r}; known: {', '.join(sorted(writers()))}")
    info = service.get(ref)
    tmp = Path(tempfile.mkdtemp(prefix="loradex-export-"))
    try:
        out = tmp / "out"
        files = service.export(info["id"], format, out)
        archive = tmp / "export.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            for f in files:
                z.write(f, Path(f).relative_to(out).as_posix())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    name = re.sub(r"[^\w.-]+", "_", info["name"]).strip("._")[:100] or f"adapter-{info['id']}"
    return FileResponse(archive, media_type="application/zip", filename=f"{name}-{format}.zip",
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))  # fmt: skip


@router.get("/{ref}/preview.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "base (top row) vs adapter (bottom row)"}})  # fmt: skip
def preview(ref: str, service: ServiceDep) -> Response:
    """The adapter rendered through its family's base pipeline, under the bare base; rendered
    once, then cached. ``no_preview`` (404) for families without a pipeline."""
    png = service.preview(ref)
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})
