"""What routes get from the app: the service, the job runner, the upload limits, the admin check.

Read endpoints are open; admin endpoints need ``Authorization: Bearer <admin token>``, compared in
constant time; with no token configured they answer 403.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loradex.jobs import JobRunner
from ui.api.errors import ApiError
from ui.api.uploads import UploadLimits

# Module level: annotations are strings here (PEP 563), resolved in the module's namespace.
BEARER = HTTPBearer(auto_error=False, description="the admin token (LORADEX_ADMIN_TOKEN or <data dir>/admin_token)")


def _service(request: Request) -> Any:
    return request.app.state.service


def _jobs(request: Request) -> JobRunner:
    return request.app.state.jobs  # type: ignore[no-any-return]


def _limits(request: Request) -> UploadLimits:
    return request.app.state.limits  # type: ignore[no-any-return]


def require_admin(request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
    expected: bytes | None = request.app.state.admin_token
    if expected is None:
        raise ApiError(403, "forbidden", "admin endpoints are disabled: the server has no admin token")
    given = cred.credentials.encode() if cred is not None else b""
    if not hmac.compare_digest(given, expected):
        raise ApiError(401, "unauthorized", "admin endpoint: send 'Authorization: Bearer <admin token>'",
                       {"WWW-Authenticate": "Bearer"})  # fmt: skip


ServiceDep = Annotated[Any, Depends(_service)]  # the LocalService (or anything with its methods)
JobsDep = Annotated[JobRunner, Depends(_jobs)]
LimitsDep = Annotated[UploadLimits, Depends(_limits)]
ADMIN = [Depends(require_admin)]
