"""The web UI's Generate and Compose tabs: a description (and examples) → a registered adapter with
its lineage and a try-it run; several adapters → images or outputs composed by a strategy, with
the gate plot. Every action goes through the service, like the other tabs.

What writes the registry takes the admin token, as the REST API's counterpart does: Generate
(``POST /generate``), Keep a merge (``POST /merge``) and Discard (``DELETE /adapters/{ref}``).
Running adapters together (Compose) registers nothing and is open, like Search and Try it.

The strategies offered are the service's (``loradex.composition.strategies``: every registered merge
strategy as ``merge:S``, ``merge:zip`` included); a merge's options are JSON text, checked before
anything runs and passed to the service with the ``merge:S`` strategy (Compose) or the merge (Keep)."""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

import gradio as gr

from loradex.bases import get_base
from loradex.composition import auto_strategy, compose_notes, pick_adapters, strategies
from loradex.errors import RegistryError
from loradex.usage import export_formats
from ui.cli_make import parse_options

SIDE_BY_SIDE = ("linear", "merge:cat", "gate")  # run over all the picked adapters, after each one alone


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _pil(png: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def parse_examples(text: str) -> list[tuple[str, str]]:
    """One ``INPUT=>OUTPUT`` (or ``->``, ``→``) per line (``loradex.examples``); blank lines are skipped."""
    from loradex.examples import parse_examples as parse

    try:
        return parse(text)
    except RegistryError as e:
        raise gr.Error(str(e), title="Examples") from None


def merge_options(text: str | None) -> dict[str, Any] | None:
    """The merge options box: a JSON object (empty: none); ``gr.Error`` saying what is wrong."""
    try:
        return parse_options(text, "merge options")
    except RegistryError as e:
        raise gr.Error(str(e), title="Merge options") from e


def _steps(progress: Any, desc: str) -> Callable[[int, int], None]:
    """The service's ``progress(done, total)`` shown on the handler's ``gr.Progress`` as ``desc``."""

    def update(done: int, total: int) -> None:
        progress((done, total or None), desc=desc, unit="steps")

    return update


def _refs(picked: list[str] | str | None) -> list[str]:
    """Adapter references from the picker (``"12 · name"`` entries or typed ids / names; a string:
    comma- or space-separated ids)."""
    items = picked.replace(",", " ").split() if isinstance(picked, str) else list(picked or [])
    return [str(t).split(" · ", 1)[0].strip() for t in items if str(t).strip()]


class MakeUI:
    def __init__(self, service: Any, check_token: Callable[[str | None], None]) -> None:
        self.service = service
        self.check_token = check_token  # ``WebUI.check_token``: gr.Error unless it is the admin token

    def families(self) -> list[str]:
        return sorted(self.service.generators())

    def methods(self, family: str) -> Any:
        have = sorted(self.service.generators().get(family) or {})
        return gr.Dropdown(choices=["(best available)", *have], value="(best available)")

    def generate(self, token: str, description: str, family: str, method: str, examples: str, seed: float,
                 try_input: str, progress: gr.Progress = gr.Progress()) -> tuple[str, Any, str, int | None, Any]:  # noqa: B008  # fmt: skip
        """Admin: → (card HTML, preview image or None, try-it text, id to discard (None when the adapter
        was already registered before), the discard button)."""
        self.check_token(token)
        progress(0, desc="generating")
        try:
            out = self.service.generate(description, family=family or "", examples=parse_examples(examples) or None,
                                        method=None if not method or method.startswith("(") else method,
                                        seed=int(seed or 0))  # fmt: skip
        except RegistryError as e:
            raise gr.Error(str(e)) from e
        a, lin = out.adapter, out.lineage
        progress(0.6, desc="trying it")
        preview, tried = None, ""
        try:
            if self.service.has_preview(a["family"]):
                preview = _pil(self.service.preview(a["id"]))
            elif try_input.strip():
                (row,) = self.service.try_it(a["id"], [try_input.strip()])["rows"]
                tried = f"{row['input']} → {row['adapter']}   (the bare base: {row['base']})"
        except RegistryError as e:
            tried = f"no try-it run: {e}"
        new = None if out.duplicate else int(a["id"])
        card = self.generated_card(a, lin, out.seconds, out.duplicate)
        return (
            card,
            gr.Image(value=preview, visible=preview is not None),
            tried,
            new,
            gr.Button(visible=new is not None),
        )

    def generated_card(self, a: dict[str, Any], lin: dict[str, Any], seconds: float, duplicate: bool) -> str:
        experts = ", ".join(f"{_esc(e['name'])} ({float(e['weight']):.2f})" for e in lin.get("experts") or [])
        kept = ("the same bytes were already registered as adapter" if duplicate
                else "kept in the registry as adapter")  # fmt: skip
        links = "".join(f'<a class="ldx-dl" href="../adapters/{a["id"]}/download?format={f}" download>⬇ {f}</a>'
                        for f in export_formats(a["modules"]))  # fmt: skip
        return (
            f'<div class="ldx-card ldx-gen" data-name="{_esc(a["name"])}" data-id="{a["id"]}"><div class="ldx-card-main">'
            f'<div class="ldx-title"><a href="?adapter={a["id"]}" title="open the adapter page">{_esc(a["name"])}</a>'
            f'<span class="ldx-badge fam">{_esc(a["family"])}</span><span class="ldx-badge fmt">{_esc(a["format"])}</span></div>'
            f'<div class="ldx-desc">{_esc(a.get("description") or "")}</div>'
            f'<p class="ldx-kept">{kept} <b>{a["id"]}</b> · sha256 <code>{_esc(a["sha256"][:12])}</code></p>'
            f"<p>generator <b>{_esc(lin.get('generator'))}</b> v{_esc(lin.get('version'))}, seed {_esc(lin.get('seed'))}, "
            f"{seconds * 1000:.0f} ms</p>"
            + (f'<p class="ldx-lineage">drawn from: {experts}</p>' if experts else "")
            + "".join(f'<p class="ldx-found"><a href="?adapter={int(e["id"])}">{_esc(e["name"])}</a> is already '
                      "registered and ranks first for this request; this adapter is a copy of its weights</p>"
                      for e in lin.get("experts") or [] if e.get("outside_library") and e.get("id") is not None)
            + f'<div class="ldx-foot"><span class="ldx-dls">{links}</span></div></div></div>'
        )  # fmt: skip

    def discard(self, token: str, new_id: int | None) -> tuple[str, None, Any]:
        """Admin: remove the adapter this session's Generate just registered (never one that was there
        before). ``new_id`` is the session's server-side state, which no client sets; the token is
        still checked, as ``DELETE /adapters/{ref}`` does: the one who may register may take it back."""
        self.check_token(token)
        if new_id is None:
            raise gr.Error("nothing to discard: this adapter was in the registry before", title="Discard")
        try:
            info = self.service.remove(int(new_id))
        except RegistryError as e:
            raise gr.Error(str(e), title="Discard") from e
        note = f'<div class="ldx-note">discarded <b>{_esc(info["name"])}</b> (was adapter {info["id"]})</div>'
        return note, None, gr.Button(visible=False)

    def compose(self, prompt: str, adapters: list[str] | str | None, auto: float, family: str, strategy: str,
                inputs: str, steps: float, side_by_side: bool = True, options: str = "",
                progress: gr.Progress = gr.Progress()) -> tuple[list[Any], Any, str]:  # noqa: B008  # fmt: skip
        """→ (captioned images, gate plot or None, text: adapters, weights and outputs). ``side_by_side``:
        each adapter alone, then linear, merge and gate over all of them (and the picked strategy), same seed.
        ``options``: merge options (JSON) for the picked ``merge:S`` strategy's run."""
        opts = merge_options(options)
        picked = strategy or "auto"
        refs: list[str | int] = list(_refs(adapters))
        lines = [x for x in (inputs or "").splitlines() if x.strip()]
        progress(0, desc="composing")
        try:
            rows = pick_adapters(self.service, prompt, refs or None, None if refs else int(auto or 2), family or None,
                                 per_step=picked in ("auto", "chain"))  # fmt: skip
            ids = [r["id"] for r in rows]
            why = {r["id"]: r.get("picked_for") for r in rows}
            decided: dict[str, Any] = {}
            mine = ids
            if picked == "auto":  # resolved here, so that side by side runs it once under its own name
                picked, chained, decided = auto_strategy(self.service, prompt, rows, get_base(rows[0]["family"]).kind)
                mine = [r["id"] for r in chained]
            runs = [(picked, mine)]
            if side_by_side and len(ids) > 1:
                runs = [(f"{r['name']} alone", [r["id"]]) for r in rows] + [(s, ids) for s in SIDE_BY_SIDE]
                if picked not in SIDE_BY_SIDE:
                    runs.append((picked, mine))
            results = []
            for n, (label, use) in enumerate(runs):
                desc = label if len(runs) == 1 else f"{label} ({n + 1}/{len(runs)})"
                progress((n, len(runs)), desc=desc)
                strat = "linear" if label.endswith(" alone") else label
                res = self.service.compose(prompt, adapters=use, strategy=strat, inputs=lines or None,
                                           steps=int(steps) if steps else None,
                                           options=opts if strat == picked else None,
                                           progress=_steps(progress, desc))  # fmt: skip
                results.append((label, res))
        except RegistryError as e:
            raise gr.Error(str(e)) from e
        main = next((r for label, r in results if label == picked), results[-1][1])
        text = [f"**{main.strategy}** over {len(main.adapters)} adapters of {main.family}"
                f" ({sum(r.seconds for _, r in results):.1f} s for {len(results)} run(s))"]  # fmt: skip
        for a, w in zip(main.adapters, main.weights or [None] * len(main.adapters), strict=False):
            part = why.get(a["id"])  # the part of the prompt an auto pick was searched for
            text.append(f"- {a['id']} {a['name']}" + (f" · {main.strategy} weight {w:.3f}" if w is not None else "")
                        + (f" · for “{part}”" if part else ""))  # fmt: skip
        text += [f"- {note}" for note in compose_notes(main.info)]
        how = decided.get("auto")
        if isinstance(how, dict):  # auto ran a chain: which adapter each step of the request went to
            text.append("- chained, in the order the steps run: "
                        + " → ".join(f"“{s['step']}” ({s['adapter']})" for s in how["steps"]))  # fmt: skip
        if lines:
            text += ["", "| input | " + " | ".join(label for label, _ in results) + " |",
                     "|---|" + "---|" * len(results)]  # fmt: skip
            for i, x in enumerate(lines):
                outs = [r.outputs[i] if i < len(r.outputs) else "" for _, r in results]
                text.append(f"| `{x}` | " + " | ".join(f"`{o}`" for o in outs) + " |")
        images = [(_pil(p), label) for label, r in results for p in r.images]
        plots = [r.gate_png for _, r in results if r.gate_png is not None]
        gate = _pil(main.gate_png) if main.gate_png is not None else (_pil(plots[0]) if plots else None)
        return images, gate, "\n".join(text)

    def keep_merge(self, token: str, prompt: str, adapters: list[str] | str | None, auto: float, family: str,
                   strategy: str, options: str = "",
                   progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008  # fmt: skip
        """Admin: merge the picked (or retrieved) adapters in weight space and register the result; the
        strategy is the picked ``merge:S`` one, else the exact ``cat``; ``options``: its options (JSON;
        ``zip``: ``steps``, ``samples`` …, fitted on the family's diffusion base, ``progress`` showing the
        fit). → a line naming the new adapter."""
        self.check_token(token)
        opts = merge_options(options)
        refs: list[str | int] = list(_refs(adapters))
        how = strategy.split(":", 1)[1] if (strategy or "").startswith("merge:") else "cat"
        try:
            rows = pick_adapters(self.service, prompt, refs or None, None if refs else int(auto or 2), family or None)
            out = self.service.merge([r["id"] for r in rows], strategy=how, options=opts,
                                     progress=_steps(progress, f"{how} fit"))  # fmt: skip
        except RegistryError as e:
            raise gr.Error(str(e)) from e
        a = out.adapter
        state = "already in the registry as" if out.duplicate else "kept in the registry as"
        parents = ", ".join(str(r["name"]) for r in rows)
        return f"merge ({how}) of {parents} {state} adapter **{a['id']} · {a['name']}** ([open it](?adapter={a['id']}))"


def _ask(label: str, placeholder: str, button: str, box_id: str, button_id: str) -> tuple[Any, Any]:
    """A row with a wide text box and its primary button."""
    with gr.Row():
        box = gr.Textbox(label=label, placeholder=placeholder, scale=4, elem_id=box_id)
        go = gr.Button(button, variant="primary", scale=1, elem_id=button_id)
    return box, go


def _token_box(elem_id: str) -> Any:
    return gr.Textbox(label="admin token (to register adapters)", type="password", elem_id=elem_id, scale=1,
                      placeholder="LORADEX_ADMIN_TOKEN or <data dir>/admin_token")  # fmt: skip


def build_make_tabs(service: Any, choices: list[str], check_token: Callable[[str | None], None]) -> dict[str, Any]:
    """Add the Generate and Compose tabs inside the caller's ``gr.Tabs()``; returns the components
    other tabs fill in: ``description`` (the Generate tab's description box) and ``adapters`` (the
    Compose tab's adapter picker, ``choices``: ``"id · name"`` entries, for the page load to refresh).
    ``check_token``: the admin check of what registers or removes adapters."""
    ui = MakeUI(service, check_token)
    fams = ui.families()
    ways = strategies()
    with gr.Tab("Generate", id="generate"):
        desc, gen_btn = _ask("describe the task or style", "shift every letter by eight · cyanotype blues with polka dots",
                             "Generate", "ldx-gen-desc", "ldx-generate")  # fmt: skip
        with gr.Row():
            fam = gr.Dropdown(fams, value=fams[0] if fams else None, label="family", elem_id="ldx-gen-family")
            method = gr.Dropdown(["(best available)"], value="(best available)", label="method")
            seed = gr.Number(0, label="seed", precision=0)
            gen_token = _token_box("ldx-gen-token")
        with gr.Row():
            examples = gr.Textbox(label="examples (optional), one INPUT=>OUTPUT per line", lines=3)
            try_in = gr.Textbox(label="try it on (language families)", value="hello", elem_id="ldx-gen-try-in")
        card = gr.HTML(elem_id="ldx-gen-card")
        new_id = gr.State(None)
        discard = gr.Button("Discard it (remove from the registry)", variant="stop", visible=False,
                            elem_id="ldx-gen-discard", size="sm")  # fmt: skip
        with gr.Row():
            preview = gr.Image(
                label="preview: base (top) vs generated adapter (bottom)",
                type="pil",
                height=260,
                elem_id="ldx-gen-preview",
                visible=False,
            )
            tried = gr.Textbox(label="try-it output", interactive=False, elem_id="ldx-gen-try")
    with gr.Tab("Compose", id="compose"):
        c_prompt, c_btn = _ask("prompt (diffusion) or task (language model)", "a star in sepia with polka dots",
                               "Compose", "ldx-comp-prompt", "ldx-compose")  # fmt: skip
        with gr.Row():
            c_ids = gr.Dropdown(
                choices,
                value=[],
                multiselect=True,
                allow_custom_value=True,
                scale=3,
                label="adapters (pick or type ids; none: retrieve the top K)",
                elem_id="ldx-comp-ids",
            )
            c_auto = gr.Slider(1, 8, value=2, step=1, label="K")
            c_fam = gr.Dropdown(["", *fams], value="", label="family (with K)", allow_custom_value=True)
            c_strat = gr.Dropdown(ways["compose"], value="auto", label="strategy", elem_id="ldx-comp-strategy")
            c_steps = gr.Slider(2, 50, value=20, step=1, label="steps", elem_id="ldx-comp-steps")
        with gr.Row():
            c_inputs = gr.Textbox(
                label="inputs (language families), one per line", lines=2, scale=4, elem_id="ldx-comp-inputs"
            )
            c_side = gr.Checkbox(
                True, label="side by side: each adapter alone, linear, merge, gate", scale=1, elem_id="ldx-comp-side"
            )
        learned = ", ".join(f"merge:{w}" for w in ways["learned"])
        c_opts = gr.Textbox(
            label=f"merge options (JSON, with a merge:<strategy>; {learned} is fitted on the diffusion base first)",
            placeholder='{"steps": 15, "samples": 8}  ·  {"density": 0.3}',
            elem_id="ldx-comp-options",
        )
        c_text = gr.Markdown(elem_id="ldx-comp-summary")
        with gr.Row():
            c_token = _token_box("ldx-comp-token")
            c_keep = gr.Button("Keep a merge of these adapters in the registry", scale=1, elem_id="ldx-comp-keep")
            c_kept = gr.Markdown(elem_id="ldx-comp-kept")
        with gr.Row():
            c_gallery = gr.Gallery(
                label="images (caption: how they were made)", columns=5, height=260, elem_id="ldx-comp-images"
            )
            c_gate = gr.Image(label="gate per layer over timesteps", type="pil", height=260, elem_id="ldx-comp-gate")
    fam.change(ui.methods, [fam], [method], api_visibility="private")
    gen_btn.click(ui.generate, [gen_token, desc, fam, method, examples, seed, try_in],
                  [card, preview, tried, new_id, discard], api_name="generate")  # fmt: skip
    discard.click(ui.discard, [gen_token, new_id], [card, new_id, discard], api_name="discard")
    c_keep.click(ui.keep_merge, [c_token, c_prompt, c_ids, c_auto, c_fam, c_strat, c_opts], [c_kept],
                 api_name="keep_merge")  # fmt: skip
    c_btn.click(ui.compose, [c_prompt, c_ids, c_auto, c_fam, c_strat, c_inputs, c_steps, c_side, c_opts],
                [c_gallery, c_gate, c_text], api_name="compose")  # fmt: skip
    return {"description": desc, "adapters": c_ids}
