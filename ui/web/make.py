"""The web UI's Generate and Compose tabs: a description (and examples) → a registered adapter with
its lineage and a try-it run; several adapters → images or outputs composed by a strategy, with
the gate plot. Every action goes through the service, like the other tabs."""

from __future__ import annotations

import html
import io
from typing import Any

import gradio as gr

from loradex.errors import RegistryError

STRATEGIES = ("gate", "linear", "switch", "composite", "chain", "merge:cat", "merge:ties", "merge:svd")


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _pil(png: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def parse_examples(text: str) -> list[tuple[str, str]]:
    """One ``INPUT=>OUTPUT`` per line; blank lines are skipped."""
    out = []
    for n, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        if "=>" not in line:
            raise gr.Error(f"example line {n} {line.strip()!r}: write it as INPUT=>OUTPUT, e.g. hello=>olleh")
        i, o = line.split("=>", 1)
        out.append((i.strip(), o.strip()))
    return out


def _ids(text: str) -> list[str]:
    return [t for t in (text or "").replace(",", " ").split() if t]


class MakeUI:
    def __init__(self, service: Any) -> None:
        self.service = service

    def families(self) -> list[str]:
        return sorted(self.service.generators())

    def methods(self, family: str) -> Any:
        have = sorted(self.service.generators().get(family) or {})
        return gr.Dropdown(choices=["(best available)", *have], value="(best available)")

    def generate(self, description: str, family: str, method: str, examples: str, seed: float, try_input: str,
                 progress: gr.Progress = gr.Progress()) -> tuple[str, Any, str]:  # noqa: B008  # fmt: skip
        """→ (card HTML, preview image or None, try-it text)."""
        progress(0, desc="generating")
        try:
            out = self.service.generate(description, family=family or "", examples=parse_examples(examples) or None,
                                        method=None if not method or method.startswith("(") else method,
                                        seed=int(seed or 0))  # fmt: skip
        except RegistryError as e:
            raise gr.Error(str(e)) from e
        a, lin = out.adapter, out.lineage
        experts = ", ".join(f"{_esc(e['name'])} ({float(e['weight']):.2f})" for e in lin.get("experts") or [])
        card = (
            f'<div class="ldx-card"><h3>{_esc(a["name"])}</h3>'
            f"<p>{'already registered' if out.duplicate else 'registered'} as adapter <b>{a['id']}</b> · "
            f"{_esc(a['family'])} · {_esc(a['format'])} · sha256 <code>{_esc(a['sha256'][:12])}</code></p>"
            f"<p>generator <b>{_esc(lin.get('generator'))}</b> v{_esc(lin.get('version'))}, seed {_esc(lin.get('seed'))}, "
            f"{out.seconds * 1000:.0f} ms</p>"
            + (f"<p>drawn from: {experts}</p>" if experts else "")
            + f'<p><a href="../adapters/{a["id"]}/download?format={_esc(a["format"])}">download</a></p></div>'
        )  # fmt: skip
        progress(0.6, desc="trying it")
        preview, tried = None, ""
        try:
            if self.service.has_preview(a["family"]):
                preview = _pil(self.service.preview(a["id"]))
            elif try_input.strip():
                res = self.service.compose(description, adapters=[a["id"]], strategy="linear",
                                           inputs=[try_input.strip()])  # fmt: skip
                tried = f"{try_input.strip()} → {res.outputs[0]}"
        except RegistryError as e:
            tried = f"no try-it run: {e}"
        return card, preview, tried

    def compose(self, prompt: str, adapters: str, auto: float, family: str, strategy: str, inputs: str,
                steps: float, progress: gr.Progress = gr.Progress()) -> tuple[list[Any], Any, str]:  # noqa: B008  # fmt: skip
        """→ (images, gate plot or None, text: adapters, weights and outputs)."""
        refs = _ids(adapters)
        progress(0, desc="composing")
        try:
            res = self.service.compose(
                prompt, adapters=refs or None, auto=None if refs else int(auto or 2), family=family or None,
                strategy=strategy or "gate", inputs=[x for x in (inputs or "").splitlines() if x.strip()] or None,
                steps=int(steps) if steps else None,
                progress=lambda d, t: progress((d, t), desc="denoising"),
            )  # fmt: skip
        except RegistryError as e:
            raise gr.Error(str(e)) from e
        lines = [f"**{res.strategy}** over {len(res.adapters)} adapters of {res.family} ({res.seconds:.1f} s)"]
        for a, w in zip(res.adapters, res.weights or [None] * len(res.adapters), strict=False):
            lines.append(f"- {a['id']} {a['name']}" + (f" · weight {w:.3f}" if w is not None else ""))
        for i, o in zip((inputs or "").splitlines(), res.outputs, strict=False):
            lines.append(f"- `{i}` → `{o}`")
        gate = _pil(res.gate_png) if res.gate_png is not None else None
        return [_pil(p) for p in res.images], gate, "\n".join(lines)


def _ask(label: str, placeholder: str, button: str, box_id: str, button_id: str) -> tuple[Any, Any]:
    """A row with a wide text box and its primary button."""
    with gr.Row():
        box = gr.Textbox(label=label, placeholder=placeholder, scale=4, elem_id=box_id)
        go = gr.Button(button, variant="primary", scale=1, elem_id=button_id)
    return box, go


def build_make_tabs(service: Any) -> dict[str, Any]:
    """Add the Generate and Compose tabs inside the caller's ``gr.Tabs()``; returns the components
    other tabs fill in (``description``: the Generate tab's description box)."""
    ui = MakeUI(service)
    fams = ui.families()
    with gr.Tab("Generate", id="generate"):
        desc, gen_btn = _ask("describe the task or style", "shift every letter by eight · cyanotype blues with polka dots",
                             "Generate", "ldx-gen-desc", "ldx-generate")  # fmt: skip
        with gr.Row():
            fam = gr.Dropdown(fams, value=fams[0] if fams else None, label="family", elem_id="ldx-gen-family")
            method = gr.Dropdown(["(best available)"], value="(best available)", label="method")
            seed = gr.Number(0, label="seed", precision=0)
        with gr.Row():
            examples = gr.Textbox(label="examples (optional), one INPUT=>OUTPUT per line", lines=3)
            try_in = gr.Textbox(label="try it on (language families)", value="hello world")
        card = gr.HTML(elem_id="ldx-gen-card")
        with gr.Row():
            preview = gr.Image(label="preview: base (top) vs generated adapter (bottom)", type="pil", height=260)
            tried = gr.Textbox(label="try-it output", interactive=False, elem_id="ldx-gen-try")
    with gr.Tab("Compose", id="compose"):
        c_prompt, c_btn = _ask("prompt (diffusion) or task (language model)", "a star in sepia with polka dots",
                               "Compose", "ldx-comp-prompt", "ldx-compose")  # fmt: skip
        with gr.Row():
            c_ids = gr.Textbox(label="adapter ids (empty: retrieve the top K)", elem_id="ldx-comp-ids")
            c_auto = gr.Slider(1, 8, value=2, step=1, label="K")
            c_fam = gr.Dropdown(["", *fams], value="", label="family (with K)", allow_custom_value=True)
            c_strat = gr.Dropdown(list(STRATEGIES), value="gate", label="strategy")
            c_steps = gr.Slider(2, 50, value=20, step=1, label="steps")
        c_inputs = gr.Textbox(label="inputs (language families), one per line", lines=2)
        c_text = gr.Markdown(elem_id="ldx-comp-summary")
        with gr.Row():
            c_gallery = gr.Gallery(label="images", columns=4, height=260, elem_id="ldx-comp-images")
            c_gate = gr.Image(label="gate per layer over timesteps", type="pil", height=260)
    fam.change(ui.methods, [fam], [method], api_visibility="private")
    gen_btn.click(ui.generate, [desc, fam, method, examples, seed, try_in], [card, preview, tried], api_name="generate")
    c_btn.click(ui.compose, [c_prompt, c_ids, c_auto, c_fam, c_strat, c_inputs, c_steps], [c_gallery, c_gate, c_text],
                api_name="compose")  # fmt: skip
    return {"description": desc}
