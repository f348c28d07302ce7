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
    if cred is None:
        raise ApiError(401, "unauthorized", "admin endpoint: send 'Authorization: Bearer <admin token>'",
                       {"WWW-Authenticate": "Bearer"})  # fmt: skip
    if not hmac.compare_digest(cred.credentials.encode(), expected):
        raise ApiError(401, "unauthorized", "wrong admin token (LORADEX_ADMIN_TOKEN or <data dir>/admin_token "
                       "on the server)", {"WWW-Authenticate": 'Bearer error="invalid_token"'})  # fmt: skip


def is_admin(request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> bool:
    """Whether a read request carries the admin token (it then sees server internals such as paths)."""
    expected: bytes | None = request.app.state.admin_token
    return expected is not None and cred is not None and hmac.compare_digest(cred.credentials.encode(), expected)


ServiceDep = Annotated[Any, Depends(_service)]  # the LocalService (or anything with its methods)
JobsDep = Annotated[JobRunner, Depends(_jobs)]
LimitsDep = Annotated[UploadLimits, Depends(_limits)]
ADMIN = [Depends(require_admin)]
AdminDep = Annotated[bool, Depends(is_admin)]
