"""The Gradio web UI (``app``: ``build_ui``, ``WebUI``; ``charts``: SVG fingerprints and the registry
map; ``style.css`` and ``templates/`` beside them). Mounted on the REST API by ``ui.server.mount_ui``."""

from loradex.usage import export_formats
from ui.web.app import WebUI, build_ui, page_options

__all__ = ["WebUI", "build_ui", "export_formats", "page_options"]
