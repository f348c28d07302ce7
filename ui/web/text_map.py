"""Admin tab: fit the registry's text map from an uploaded texts file (``loradex train-encoder --text
--texts FILE``, ``POST /encoders/text-map``), as the same job the API submits, on the API's runner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:  # pragma: no cover
    from ui.web.app import WebUI


def fit_text_map(ui: WebUI, token: str, texts_file: str | None, progress: Any) -> str:
    """Check the token, read the texts file (a JSON object: adapter name or sha256 → paraphrases),
    run ``train-text-map`` and wait for it; a Markdown line saying what was fitted."""
    from encoders.weight.registry_training import EncoderTrainingError, load_texts_file
    from loradex.jobs import submit_train_text_map

    ui.check_token(token)
    if not texts_file:
        raise gr.Error("no texts file: give a JSON object of adapter name or sha256 → paraphrases", title="Text map")
    path = Path(texts_file)
    try:
        texts = load_texts_file(path)
    except EncoderTrainingError as e:  # names the upload's temporary path: say the file's own name
        raise gr.Error(str(e).replace(str(path), path.name), title="Text map") from None
    job = ui._wait(submit_train_text_map(ui.jobs, ui.service, texts).id, progress)
    if not job.finished:
        return (f"**job `{job.id}` is queued** behind other jobs (or, in shared mode, until a worker runs): "
                f"it fits the map then; follow it with `GET /jobs/{job.id}`")  # fmt: skip
    if job.status != "done" or job.output is None:
        raise gr.Error(job.error.message if job.error else f"text map job {job.id} failed", title="Text map")
    m = job.output["metrics"]
    return (f"fitted text map `{job.output['version']}` on {m['adapters']} adapters, {m['texts']} texts "
            f"(leave-one-out top-1 {m['loo_top1_before']} → {m['loo_top1_after']}); the text index was "
            f"re-embedded (job `{job.id}`)")  # fmt: skip
