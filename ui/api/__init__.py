"""REST API over a ``LocalService`` (FastAPI): ``create_app(service)`` builds the app.

``app`` (the factory), ``schemas`` (pydantic bodies), ``errors`` (error mapping, body limit),
``uploads`` (staging and zip checks), ``deps`` (service, jobs, admin token) and one module of
routes per resource: ``meta``, ``adapters``, ``search``, ``admin`` (ingest, encoder training, jobs).
Uploads are capped (``max_upload_bytes``, checked while the body streams in); CORS is off unless
``cors_origins`` is given.
"""

from ui.api.app import DEFAULT_MAX_UPLOAD_BYTES, create_app
from ui.api.errors import ApiError
from ui.api.uploads import UploadLimits, stage_uploads

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "ApiError", "UploadLimits", "create_app", "stage_uploads"]
