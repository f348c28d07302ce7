"""The Admin tab's text map control, through ``gradio_client`` against the real server (API + UI)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from loradex.service import LocalService
from tests.loradex.test_text_map_registry import PROMPT, SAMPLES, TEXTS

TOKEN = "web-text-map-token"


def test_admin_fits_the_text_map_from_a_texts_file(tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from ui.api import create_app
    from ui.server import BackgroundServer, mount_ui

    svc = LocalService.open(tmp_path / "home", f"sqlite:///{tmp_path / 'loradex.db'}")
    svc.ingest([SAMPLES])
    good = tmp_path / "texts.json"
    good.write_text(json.dumps(TEXTS))
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    app = mount_ui(create_app(svc, admin_token=TOKEN), svc, TOKEN)
    try:
        with BackgroundServer(app) as server:
            client = Client(f"{server.url}/ui/", verbose=False, analytics_enabled=False)
            try:
                with pytest.raises(AppError, match="wrong admin token"):
                    client.predict("nope", handle_file(str(good)), api_name="/fit_text_map")
                with pytest.raises(AppError, match="no texts file"):
                    client.predict(TOKEN, None, api_name="/fit_text_map")
                with pytest.raises(AppError, match=r"broken\.json: cannot read texts file"):
                    client.predict(TOKEN, handle_file(str(bad)), api_name="/fit_text_map")
                assert svc.encoders() == []

                msg = client.predict(TOKEN, handle_file(str(good)), api_name="/fit_text_map")
            finally:
                client.close()
        version = re.search(r"`(tmap:[0-9a-f]+)`", msg)
        assert version and "on 6 adapters" in msg, msg
        assert svc.registry.embedders["text"].map_version == version.group(1)
        assert svc.search(PROMPT, k=1, mode="text")[0].adapter["name"] == "Pixel Art XL"
    finally:
        svc.close()
