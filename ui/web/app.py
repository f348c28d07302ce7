"""The Gradio web UI: ``build_ui(service, admin_token)`` → ``gr.Blocks``.

Everything it shows comes from the service (``loradex.LocalService``); it opens no database
session and touches no index. Its CSS is ``style.css`` and its larger HTML pieces are templates
in ``templates/`` (``string.Template``), both beside this file.

Mounted on the REST API's FastAPI app by ``ui.server.mount_ui`` (one process, one port).
Tabs: **Search** (prompt, filters, result cards with score breakdown, weight fingerprint and
download links, a 2-D map of the registry), **Browse** (``browse.py``: every adapter, paged, sorted
and filtered, its state in the URL), **Adapter** (metadata, modules, lineage,
fingerprint, similar adapters, export), **Admin** (token-checked upload / server-folder
ingestion with progress, removal, fitting the text map; an upload is ingested as the same job
``POST /ingest`` submits, on the API's job runner). Registry errors become ``gr.Error`` here and nowhere else.
Uploads go through the REST API's own checks (``ui.api.stage_uploads``: bare file names, safe
zips, caps). Theme and CSS are handed to ``mount_gradio_app`` / ``launch`` (``page_options``).
"""

from __future__ import annotations

import hmac
import html
import shutil
import tempfile
import time
import uuid
import zipfile
from contextlib import ExitStack
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

import gradio as gr

from loradex.errors import AdapterNotFoundError, RegistryError
from loradex.jobs import JobRunner, submit_ingest
from loradex.service import LocalService
from loradex.types import SEARCH_MODES, Filters, IngestReport, IngestResult, Job, SearchHit, public_detail
from loradex.usage import export_formats, usage_snippet
from ui.api import ApiError, UploadLimits, stage_uploads
from ui.web.browse import ROW_CLICK_JS, build_browse_tab
from ui.web.charts import FingerprintCache, RegistryMap, block_of, fingerprint_svg, map_figure

HERE = Path(__file__).resolve().parent

ANY = "any"
RESULT_HEADERS = ["status", "path", "id", "name", "family", "format", "reason"]
MODULE_HEADERS = ["module", "block", "kind", "rank", "in", "out", "scale", "‖ΔW‖_F"]
MAX_CHOICES = 1000  # adapters listed in the picker; others are reached by typing an id or name

EXAMPLES = [["a soft watercolor painting of a lake"], ["pixel art game sprite"], ["write SQL queries"],
            ["speak like Shakespeare"], ["glowing neon city at night"]]  # fmt: skip


@cache
def template(name: str) -> Template:
    """``templates/<name>.html`` as a ``string.Template`` (``$field`` placeholders)."""
    return Template((HERE / "templates" / f"{name}.html").read_text(encoding="utf-8").rstrip("\n"))


@cache
def css() -> str:
    return (HERE / "style.css").read_text(encoding="utf-8")


def theme() -> Any:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def page_options() -> dict[str, Any]:
    """Theme, CSS and head script for ``gr.mount_gradio_app`` / ``Blocks.launch`` (Gradio 6 takes them there)."""
    return {"theme": theme(), "css": css(), "head": HEAD}


# Clicking a point of the registry map (gr.Plot has no click event) opens that adapter's page: a
# point's customdata is its adapter id. Bound once per plot element, which Gradio keeps across updates.
MAP_CLICK_JS = """setInterval(() => {
  document.querySelectorAll("#ldx-map .js-plotly-plot").forEach((el) => {
    if (el.dataset.ldxClick || typeof el.on !== "function") return;
    el.dataset.ldxClick = "1";
    el.on("plotly_click", (ev) => {
      const id = ev && ev.points && ev.points.length ? ev.points[0].customdata : undefined;
      if (id !== undefined && id !== null && id !== "") window.location.href = "?adapter=" + id;
    });
  });
}, 400);"""

# Back / Forward over the searches and browse views put in the address bar: load that page again.
HEAD = ('<script>window.addEventListener("popstate", () => window.location.reload());\n'
        f"{ROW_CLICK_JS}\n{MAP_CLICK_JS}</script>")  # fmt: skip


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _ref(choice: str | int | None) -> str:
    """An adapter reference from a picker value (``"12 · name"``) or a typed id / name / sha."""
    text = str(choice or "").strip()
    return text.split(" · ", 1)[0].strip() if " · " in text else text


def _rows(report: IngestReport) -> list[list[Any]]:
    return [[r.status, r.path, r.adapter_id or "", r.name or "", r.family or "", r.format or "", r.reason or ""]
            for r in report.results]  # fmt: skip


class WebUI:
    """State and handlers behind the Blocks (one per app)."""

    def __init__(self, service: LocalService, admin_token: str | None, *, api_root: str | None = "..",
                 limits: UploadLimits | None = None, jobs: Any = None) -> None:  # fmt: skip
        self.service = service
        self._token = admin_token.encode() if admin_token else None
        self._jobs = jobs  # the API's runner (``app.state.jobs``: the queue in shared mode); else one of its own
        self.queued_wait = 120.0  # seconds an upload's job may stay queued before the page stops waiting for it
        self.api_root = api_root
        self.limits = limits or UploadLimits()
        self.fingerprints = FingerprintCache(service.home / "cache" / "fingerprints")
        self.map = RegistryMap(service)
        self._exports = Path(tempfile.mkdtemp(prefix="loradex-ui-export-"))

    # -- shared --------------------------------------------------------------------------------
    @property
    def jobs(self) -> Any:
        if self._jobs is None:
            self._jobs = JobRunner(store=self.service.job_store())
        return self._jobs

    def check_token(self, token: str | None) -> None:
        if self._token is None:
            raise gr.Error("admin is disabled: the server has no admin token", title="Admin")
        if not hmac.compare_digest((token or "").strip().encode(), self._token):
            raise gr.Error("wrong admin token", title="Admin")

    def resolve(self, ref: str) -> dict[str, Any]:
        """Adapter detail by id, sha256 (prefix) or exact name; ``gr.Error`` when there is none."""
        try:
            return self.service.get(ref)
        except AdapterNotFoundError:
            raise gr.Error(
                f"no adapter {ref!r} in the registry (give an id, a name or a sha256)", title="Adapter"
            ) from None
        except RegistryError as e:  # a name several adapters share
            raise gr.Error(str(e), title="Adapter") from None

    def fingerprint(self, info: dict[str, Any], width: int = 220, height: int = 64, labels: bool = False) -> str:
        try:
            return fingerprint_svg(self.fingerprints.get(self.service, info), width, height, labels=labels)
        except (RegistryError, OSError) as e:
            return f'<div class="ldx-note">fingerprint unavailable ({_esc(e)})</div>'

    def choices(self) -> list[str]:
        return [f"{a['id']} · {a['name']}" for a in self.service.list(limit=MAX_CHOICES)]

    def stats_html(self) -> str:
        st = self.service.stats()
        fams = ", ".join(f"{f} {n}" for f, n in st.families.items()) or "none"
        idx = " · ".join(f"{i.kind} index {i.size}" for i in st.indexes)
        return (f'<div class="ldx-header"><span class="ldx-logo">loradex</span>'
                f'<span class="ldx-sub">LoRA adapter registry · <b>{st.adapters}</b> adapters · {_esc(fams)}'
                f" · {_esc(idx)}</span></div>")  # fmt: skip

    def filter_choices(self) -> tuple[list[str], list[str], list[str]]:
        st = self.service.stats()
        return [ANY, *st.families], [ANY, *st.formats], [ANY, *st.origins]

    # -- search --------------------------------------------------------------------------------
    def search(self, prompt: str, family: str, fmt: str, origin: str, tags: str, mode: str, k: float,
               examples: str = "", picture: str | None = None,
               progress: gr.Progress = gr.Progress()) -> tuple[str, Any, Any]:  # noqa: B008  # fmt: skip
        """Prompt → (result cards HTML, registry map figure, the "generate one" button: shown when nothing fits).
        ``examples``: one ``INPUT=>OUTPUT`` per line (``loradex.examples``): candidates are run on their
        family's base model and ranked by how many examples they reproduce; ``picture`` (a file path):
        an example of the look wanted, an image family's candidates rendered and ranked by how much
        they look like it (``loradex.verify_images``). The prompt may then be empty."""
        from loradex.examples import parse_examples

        try:
            pairs = parse_examples(examples)
        except RegistryError as e:
            raise gr.Error(str(e), title="Examples") from None
        if not (prompt or "").strip() and not pairs and not picture:
            note = '<div class="ldx-note">Type what the adapter should do or look like.</div>'
            return note, self.map_plot(), gr.Button(visible=False)
        filters = Filters(family=None if family in (None, "", ANY) else family,
                          format=None if fmt in (None, "", ANY) else fmt,
                          origin=None if origin in (None, "", ANY) else origin,
                          tags=tuple(t for t in (tags or "").split(",") if t.strip()))  # fmt: skip
        try:
            if picture:
                hits = self.service.search(prompt or "", max(1, int(k)), filters=filters, images=[picture],
                                           progress=lambda done, total: progress(done / max(total, 1),
                                                                                 desc="rendering candidates"))  # fmt: skip
            else:
                hits = self.service.search(prompt or "", max(1, int(k)), mode=mode or "hybrid", filters=filters,
                                           examples=pairs or None)  # fmt: skip
        except RegistryError as e:
            raise gr.Error(str(e), title="Search") from None
        if not hits:
            cards = '<div class="ldx-note">No adapter matches these filters.</div>'
        else:
            cards = "".join(self.card(h, i + 1) for i, h in enumerate(hits))
        nothing_fits = bool(getattr(hits, "nothing_fits", None))
        if nothing_fits:
            cards = f'<div class="ldx-nofit" id="ldx-nofit">{_esc(hits.verdict())}</div>' + cards
        if getattr(hits, "read", None):
            cards = f'<div class="ldx-note" id="ldx-read">Searched for: {_esc(hits.read)}</div>' + cards
        query = self.service.embed_prompt(prompt) if (prompt or "").strip() else None  # (dim,), LRU-cached
        regmap = self.map_plot(query, [h.adapter["id"] for h in hits])
        return f'<div class="ldx-cards">{cards}</div>', regmap, gr.Button(visible=nothing_fits)

    def map_plot(self, query: Any = None, hits: list[int] | None = None) -> Any:
        """The registry map (plotly figure) with the query and its hits."""
        return map_figure(self.map.data(), query, hits)

    def card(self, hit: SearchHit, rank: int) -> str:
        a = hit.adapter
        info = self.service.get(a["id"])
        ranks = "/".join(str(r) for r in a.get("ranks") or []) or "?"
        badges = "".join(f'<span class="ldx-badge {c}">{_esc(t)}</span>' for c, t in
                         (("fam", a["family"]), ("fmt", a["format"]), ("", f"rank {ranks}"),
                          ("", f"{a.get('module_count', '?')} modules"), ("", a.get("origin", ""))) if t)  # fmt: skip
        bars = "".join(self._score_bar(kind, v) for kind, v in hit.scores.items())
        desc = a.get("description") or ""
        desc_html = (f'<div class="ldx-desc">{_esc(desc[:400])}{"…" if len(desc) > 400 else ""}</div>' if desc
                     else '<div class="ldx-desc ldx-muted">no description: found by its weights</div>')  # fmt: skip
        trig = [str(t) for t in a.get("trigger_words") or []]
        trig_html = (f'<div class="ldx-trig">trigger words: {" ".join(f"<code>{_esc(t)}</code>" for t in trig[:8])}</div>'
                     if trig else "")  # fmt: skip
        tags = "".join(f'<span class="ldx-tag">{_esc(t)}</span>' for t in (a.get("tags") or [])[:8])
        links = ""
        if self.api_root is not None:
            fmts = export_formats(info["modules"])
            links = "".join(f'<a class="ldx-dl" href="{self.api_root}/adapters/{a["id"]}/download?format={f}" '
                            f'download>⬇ {f}</a>' for f in fmts)  # fmt: skip
        return template("card").substitute(name=_esc(a["name"]), id=a["id"], rank=rank, badges=badges,
                                           desc_html=desc_html, trig_html=trig_html, score=self._score(hit),
                                           bars=bars, why=_esc(hit.why), tags=tags, links=links,
                                           picture=self.picture(info))  # fmt: skip

    def preview_src(self, info: dict[str, Any]) -> str | None:
        """URL of the adapter's preview image, when its family has a preview pipeline and the API is mounted."""
        if self.api_root is None or not self.service.has_preview(info["family"]):
            return None
        return f"{self.api_root}/adapters/{info['id']}/preview.png"

    def picture(self, info: dict[str, Any]) -> str:
        """A card's picture: the preview (base row above, adapter row below) or the weight fingerprint."""
        src = self.preview_src(info)
        if src is not None:
            return (f'<div class="ldx-fp" title="top: base model, bottom: with this adapter">'
                    f'<img class="ldx-preview" src="{src}" alt="preview of {_esc(info["name"])}" width="220" '
                    f'loading="lazy"><div class="ldx-fp-cap">base (top) · with adapter (bottom)</div></div>')  # fmt: skip
        return (
            f'<div class="ldx-fp" title="per-layer weight fingerprint">{self.fingerprint(info)}'
            '<div class="ldx-fp-cap">‖ΔW‖ per module, by block</div></div>'
        )

    @staticmethod
    def _score(hit: SearchHit) -> str:
        """The card's headline: calibrated relevance where known, then the ranking score."""
        rank = f"score {hit.score:.2f}"
        if hit.relevance is None:
            return rank
        return (f'<span title="chance that this adapter does what you asked, calibrated across queries">'
                f"relevance {hit.relevance:.0%}</span> · {rank}")  # fmt: skip

    @staticmethod
    def _score_bar(kind: str, v: float | None) -> str:
        if v is None:
            return f'<span class="ldx-bar ldx-muted">{_esc(kind)} –</span>'
        pct = max(0.0, min(1.0, float(v))) * 100
        return (f'<span class="ldx-bar" title="cosine of the prompt with the {_esc(kind)} embedding">{_esc(kind)}'
                f'<span class="ldx-track"><span class="ldx-fill {_esc(kind)}" style="width:{pct:.0f}%"></span>'
                f"</span>{v:.2f}</span>")  # fmt: skip

    # -- adapter page --------------------------------------------------------------------------
    def adapter(self, choice: str) -> tuple[str, list[list[Any]], Any, str]:
        """(detail HTML with lineage and similar adapters, modules table, export format dropdown,
        usage snippet for the first format)."""
        ref = _ref(choice)
        if not ref:
            return '<div class="ldx-note">Pick an adapter.</div>', [], gr.Dropdown(choices=[], value=None), ""
        info = self.resolve(ref)
        norms = {}
        try:
            norms = {n: v for n, _, v in self.fingerprints.get(self.service, info)}
        except (RegistryError, OSError):
            pass
        modules = [[m["name"], block_of(m["name"]), m.get("kind", ""), m.get("rank", ""), m.get("in", ""),
                    m.get("out", ""), round(float(m.get("scale") or 0), 4),
                    round(norms[m["name"]], 5) if m["name"] in norms else ""] for m in info["modules"]]  # fmt: skip
        fmts = export_formats(info["modules"])
        dd = gr.Dropdown(choices=fmts, value=fmts[0] if fmts else None)
        return self.detail_html(info), modules, dd, usage_snippet(info, fmts[0]) if fmts else ""

    def try_it(self, choice: str, text: str) -> tuple[str, Any]:
        """(rows HTML for a language adapter, image for a diffusion one): the adapter beside its bare base."""
        ref = _ref(choice)
        if not ref:
            raise gr.Error("pick an adapter first", title="Try it")
        inputs = [line for line in (text or "").splitlines() if line.strip()]
        try:
            out = self.service.try_it(self.resolve(ref)["id"], inputs)
        except RegistryError as e:
            raise gr.Error(str(e), title="Try it") from None
        if out["kind"] == "image":
            import io

            from PIL import Image

            return "", gr.Image(value=Image.open(io.BytesIO(out["png"])), visible=True)
        rows = "".join(f"<tr><td><code>{_esc(r['input'])}</code></td><td><code>{_esc(r['base'])}</code></td>"
                       f"<td><b><code>{_esc(r['adapter'])}</code></b></td></tr>" for r in out["rows"])  # fmt: skip
        table = (f'<table class="ldx-kv ldx-try"><tr><th>input</th><th>base</th><th>with {_esc(out["adapter"]["name"])}'
                 f"</th></tr>{rows}</table>")  # fmt: skip
        return table, gr.Image(visible=False)

    def usage(self, choice: str, fmt: str | None) -> str:
        """How to load the adapter once downloaded as ``fmt`` (``loradex.usage``)."""
        ref = _ref(choice)
        if not ref or not fmt:
            return ""
        return usage_snippet(self.resolve(ref), fmt)

    def detail_html(self, info: dict[str, Any]) -> str:
        def names(links: list[dict[str, Any]]) -> str:
            out = []
            for ln in links:
                try:
                    name = self.service.get(ln["id"])["name"]
                except RegistryError:
                    name = "?"
                out.append(f'<a href="?adapter={ln["id"]}">{_esc(name)}</a> ({_esc(ln["method"])}, '
                           f"weight {float(ln['weight']):.2f})")  # fmt: skip
            return ", ".join(out) or "–"

        meta_rows = [("id", info["id"]), ("family", info["family"]), ("format", info["format"]),
                     ("origin", info["origin"]), ("ranks", ", ".join(map(str, info["ranks"]))),
                     ("modules", info["module_count"]), ("parameters", f"{info['param_count']:,}"),
                     ("file size", f"{info['file_size'] / 1024:,.0f} KiB"), ("files", ", ".join(info["files"])),
                     ("base model", info.get("base_model") or "–"), ("license", info.get("license") or "–"),
                     ("source", public_detail(info).get("source") or "–"), ("sha256", info["sha256"]),
                     ("added", info.get("created_at") or "–"), ("tags", ", ".join(info["tags"]) or "–"),
                     ("trigger words", ", ".join(map(str, info["trigger_words"])) or "–")]  # fmt: skip
        table = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in meta_rows)
        warn = "".join(f"<li>{_esc(w)}</li>" for w in info.get("warnings") or [])
        extra = {k: v for k, v in (info.get("metadata") or {}).items() if not str(k).startswith("peft_config")}
        meta = "".join(
            f"<tr><th>{_esc(k)}</th><td>{_esc(str(v)[:300])}</td></tr>" for k, v in sorted(extra.items())[:60]
        )
        return template("detail").substitute(
            name=_esc(info["name"]), description=_esc(info.get("description") or "no description"), table=table,
            preview=self.preview_block(info), fingerprint=self.fingerprint(info, 520, 150, labels=True),
            parents=names(info["parents"]), children=names(info["children"]),
            warnings=f'<div class="ldx-warn"><b>warnings</b><ul>{warn}</ul></div>' if warn else "",
            similar=self.similar_html(self.similar(info)), n_meta=len(extra), meta=meta,
        )  # fmt: skip

    def preview_block(self, info: dict[str, Any]) -> str:
        src = self.preview_src(info)
        if src is None:
            return ""
        return (f'<img class="ldx-preview ldx-preview-big" src="{src}" alt="preview of {_esc(info["name"])}">'
                '<div class="ldx-fp-cap">rendered by the base pipeline: without (top) and with the adapter (bottom), '
                "same prompts and seeds</div>")  # fmt: skip

    def similar_html(self, rows: list[list[Any]]) -> str:
        if not rows:
            return '<div class="ldx-note">nothing else is embedded yet</div>'
        body = "".join(
            f'<tr data-id="{i}"><td><a href="?adapter={i}">{_esc(name)}</a></td><td>{_esc(fam)}</td>'
            f"<td>{self._score_bar('weights', w if w != '' else None)}</td>"
            f"<td>{self._score_bar('text', t if t != '' else None)}</td></tr>"
            for i, name, fam, w, t in rows
        )
        return f'<table class="ldx-kv ldx-similar"><tr><th>name</th><th>family</th><th colspan="2">cosine</th></tr>{body}</table>'

    def similar(self, info: dict[str, Any], k: int = 8) -> list[list[Any]]:
        """Nearest adapters by this adapter's own stored embeddings: [id, name, family, weights cos, text cos]."""
        rows = []
        for near in self.service.similar(info["id"], k):
            a, w, t = near["adapter"], near["scores"].get("weights"), near["scores"].get("text")
            rows.append([a["id"], a["name"], a["family"], round(w, 3) if w is not None else "",
                         round(t, 3) if t is not None else ""])  # fmt: skip
        return rows

    def download(self, choice: str, fmt: str) -> str:
        """Export as ``fmt`` and zip; the path goes to a ``gr.File``."""
        ref = _ref(choice)
        if not ref or not fmt:
            raise gr.Error("pick an adapter and a format", title="Download")
        info = self.resolve(ref)
        try:
            for old in sorted(self._exports.iterdir())[:-8]:  # keep the last few exports
                shutil.rmtree(old, ignore_errors=True)
            tmp = self._exports / f"{uuid.uuid4().hex}"
            files = self.service.export(info["id"], fmt, tmp / "out")
        except RegistryError as e:
            raise gr.Error(str(e), title="Download") from None
        name = (
            "".join(c if c.isalnum() or c in "-_." else "_" for c in info["name"]).strip("._")
            or f"adapter-{info['id']}"
        )
        archive = tmp / f"{name}-{fmt}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            for f in files:
                z.write(f, Path(f).relative_to(tmp / "out").as_posix())
        return str(archive)

    # -- admin ---------------------------------------------------------------------------------
    def _ingest(self, paths: list[Path], progress: gr.Progress) -> IngestReport:
        total = [0]
        done: list[IngestResult] = []

        def on_result(r: IngestResult) -> None:
            done.append(r)
            progress((len(done), total[0] or None), desc=f"{r.status}: {Path(r.path).name}", unit="adapters")

        def on_total(n: int) -> None:
            total[0] = n
            progress((0, n), desc=f"found {n} adapter(s)", unit="adapters")

        try:
            report = self.service.ingest(paths, progress=on_result, on_total=on_total)
        except RegistryError as e:
            raise gr.Error(str(e), title="Ingest") from None
        if not report.results:  # only other files: say what was there, not "0 units"
            from registry.ingest import nothing_found

            raise gr.Error(nothing_found(paths), title="Ingest")
        return report

    def _wait(self, job_id: str, progress: gr.Progress, poll: float = 0.2) -> Job:
        """Poll job ``job_id`` until it finishes, showing its progress, or until it has been queued
        for ``queued_wait`` seconds (no worker free): the job belongs to the runner (in shared mode
        a worker runs it), so it goes on, and stays listed, when this page stops waiting or goes away."""
        start = time.monotonic()
        while not (job := self.jobs.get(job_id)).finished:
            if job.status == "queued" and time.monotonic() - start > self.queued_wait:
                return job
            last = job.result.results[-1] if job.result and job.result.results else None
            desc = f"job {job.id[:8]} {job.status}" + (f" · {last.status}: {Path(last.path).name}" if last else "")
            progress((job.done, job.total or None), desc=desc, unit="adapters")
            time.sleep(poll)
        return job

    def _after_ingest(self, report: IngestReport, job_id: str | None = None) -> tuple[str, list[list[Any]], Any, str]:
        counts = ", ".join(f"{n} {s}" for s in ("ingested", "duplicate", "refused") if (n := report.count(s)))
        summary = f"**{len(report.results)} unit(s):** {counts or 'nothing found'}"
        if job_id:
            summary += f" (job `{job_id}`)"
        return summary, _rows(report), gr.Dropdown(choices=self.choices()), self.stats_html()

    def ingest_files(self, token: str, files: list[str] | None, folder: str,
                     progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], Any, str]:  # noqa: B008  # fmt: skip
        """Admin: ingest uploaded files / zips, checked and staged like ``POST /ingest`` and ingested
        by the same job (``loradex.jobs.submit_ingest``, which removes the staged folder), waited for here."""
        self.check_token(token)
        if not files:
            raise gr.Error("no files: drop adapter files, sidecars or a zip first", title="Ingest")
        job_id = uuid.uuid4().hex
        root = self.service.uploads / job_id  # where the API stages (in shared mode, where workers read)
        try:
            with ExitStack() as stack:
                parts = [(Path(f).name, stack.enter_context(open(f, "rb"))) for f in files]  # noqa: SIM115
                stage_uploads(parts, root, self.limits, (folder or "").strip() or None)
        except ApiError as e:
            raise gr.Error(e.message, title="Upload refused") from None
        job = self._wait(submit_ingest(self.jobs, self.service, root, job_id).id, progress)
        if not job.finished:
            note = (f"**job `{job.id}` is queued** behind other jobs (or, in shared mode, until a worker "
                    f"runs): it ingests the upload then; follow it with `GET /jobs/{job.id}`")  # fmt: skip
            return note, [], gr.Dropdown(choices=self.choices()), self.stats_html()
        if job.status != "done" or job.result is None:
            raise gr.Error(job.error.message if job.error else f"ingest job {job.id} failed", title="Ingest")
        return self._after_ingest(job.result, job.id)

    def ingest_folder(self, token: str, folder: str,
                      progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[Any]], Any, str]:  # noqa: B008  # fmt: skip
        """Admin: ingest a file or folder that is already on the server, in this process (like ``loradex
        ingest`` there): the path is this machine's, and the ingest job removes what it ingests."""
        self.check_token(token)
        path = Path((folder or "").strip()).expanduser()
        if not str(folder or "").strip() or not path.exists():
            raise gr.Error(f"no such file or folder on the server: {folder!r}", title="Ingest")
        return self._after_ingest(self._ingest([path], progress))

    def remove(self, token: str, choice: str) -> tuple[str, Any, str]:
        self.check_token(token)
        ref = _ref(choice)
        if not ref:
            raise gr.Error("name the adapter to remove (id, name or sha256)", title="Remove")
        try:
            info = self.service.remove(self.resolve(ref)["id"])
        except RegistryError as e:
            raise gr.Error(str(e), title="Remove") from None
        return (
            f"removed **{_esc(info['name'])}** (id {info['id']})",
            gr.Dropdown(choices=self.choices()),
            self.stats_html(),
        )

    def fit_text_map(self, token: str, texts_file: str | None,
                     progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008  # fmt: skip
        """Admin: fit the registry's text map on an uploaded texts file (``ui.web.text_map``)."""
        from ui.web.text_map import fit_text_map

        return fit_text_map(self, token, texts_file, progress)

    # -- page load -----------------------------------------------------------------------------
    def on_load(self, request: gr.Request) -> tuple[Any, ...]:
        """Fresh stats / choices / map; ``?adapter=<id>`` opens that adapter's page; ``?q=<prompt>``
        (what the search box writes into the address bar) runs that search, so a search can be shared;
        ``?browse=1`` opens the Browse tab (whose own load reads its state from the URL)."""
        fams, fmts, origins = self.filter_choices()
        params = request.query_params if request is not None else {}
        wanted = (params.get("adapter") or "").strip()
        query = (params.get("q") or "").strip()[:4000]
        choices = self.choices()
        value = next((c for c in choices if _ref(c) == wanted), wanted or None)
        browsing = bool(params.get("browse"))
        tab = gr.Tabs(selected="adapter") if wanted else gr.Tabs(selected="browse") if browsing else gr.Tabs()
        cards: Any = gr.skip()
        to_generate: Any = gr.skip()
        if query:
            cards, regmap, to_generate = self.search(query, ANY, ANY, ANY, "", "hybrid", 8)
        else:
            regmap = self.map_plot()
        return (self.stats_html(), gr.Dropdown(choices=fams), gr.Dropdown(choices=fmts), gr.Dropdown(choices=origins),
                regmap, gr.Dropdown(choices=choices, value=value), tab, query or gr.skip(), cards,
                gr.Dropdown(choices=choices), to_generate)  # fmt: skip


# Puts the search into the address bar (``?q=``) without a reload: shareable, and Back returns to it.
SEARCH_URL_JS = """(prompt, ...rest) => {
  const url = new URL(window.location.href);
  if (prompt && prompt.trim()) { url.searchParams.set("q", prompt.trim()); url.searchParams.delete("adapter"); }
  if (url.href !== window.location.href) { window.history.pushState({}, "", url); }
  return [prompt, ...rest];
}"""


def build_ui(service: LocalService, admin_token: str | None, *, api_root: str | None = "..",
             limits: UploadLimits | None = None, jobs: Any = None) -> gr.Blocks:  # fmt: skip
    """The web UI of ``service``. ``admin_token=None`` disables the admin tab's actions.
    ``api_root``: where the REST API is, relative to the UI page (``..`` when the UI is mounted at
    ``/ui`` of the API app); None hides the download links (no API beside the UI). ``jobs``: the
    API's job runner, which runs uploads' ingestion (default: a runner of the UI's own)."""
    ui = WebUI(service, admin_token, api_root=api_root, limits=limits, jobs=jobs)
    fams, fmts, origins = ui.filter_choices()
    with gr.Blocks(title="loradex", analytics_enabled=False) as demo:
        header = gr.HTML(ui.stats_html())
        with gr.Tabs() as tabs:
            with gr.Tab("Search", id="search"):
                with gr.Row(equal_height=True, elem_classes="ldx-searchbar"):
                    prompt = gr.Textbox(show_label=False, container=False, scale=6, lines=1, elem_id="ldx-prompt",
                                        placeholder="What should the adapter do or look like? e.g. a soft watercolor "
                                        "painting of a lake")  # fmt: skip
                    go = gr.Button("Search", variant="primary", scale=1, min_width=120, elem_id="ldx-search")
                with gr.Row():
                    family = gr.Dropdown(fams, value=ANY, label="family", allow_custom_value=True, min_width=120)
                    fmt = gr.Dropdown(fmts, value=ANY, label="format", allow_custom_value=True, min_width=120)
                    origin = gr.Dropdown(origins, value=ANY, label="origin", allow_custom_value=True, min_width=120)
                    tags = gr.Textbox(label="tags (all required)", placeholder="style, anime", min_width=140)
                    mode = gr.Radio(list(SEARCH_MODES), value="hybrid", label="signal", min_width=220)
                    k = gr.Slider(1, 50, value=8, step=1, label="results", min_width=140)
                with gr.Accordion("search by example: show what it should do", open=False):
                    examples = gr.Textbox(label="examples, one INPUT=>OUTPUT per line (e.g. hello=>olleh); candidates "
                                          "are run on their base model and ranked by how many they reproduce",
                                          lines=3, value="", elem_id="ldx-examples")  # fmt: skip
                    picture = gr.Image(type="filepath", label="or an example picture of the look wanted: an image "
                                       "family's adapters are rendered and ranked by how much they look like it",
                                       height=160, elem_id="ldx-example-picture")  # fmt: skip
                gr.Examples(EXAMPLES, inputs=[prompt], label="try")
                with gr.Row():
                    with gr.Column(scale=3):
                        to_generate = gr.Button("Generate an adapter from this description instead", visible=False,
                                                elem_id="ldx-to-generate")  # fmt: skip
                        cards = gr.HTML('<div class="ldx-note">Results appear here.</div>', elem_id="ldx-results")
                    with gr.Column(scale=2, elem_classes="ldx-mapcol"):
                        gr.Markdown(
                            "**Registry map** · PCA of the text and weight embeddings · hover for names, drag to "
                            "zoom, click a point to open it",
                            elem_classes="ldx-h",
                        )
                        regmap = gr.Plot(elem_id="ldx-map", show_label=False, elem_classes="ldx-mapbox")
            browse, browse_out = build_browse_tab(service)
            with gr.Tab("Adapter", id="adapter"):
                with gr.Row(equal_height=True):
                    pick = gr.Dropdown(ui.choices(), label="adapter (pick, or type an id / name)", scale=4,
                                       allow_custom_value=True, elem_id="ldx-pick")  # fmt: skip
                    dl_fmt = gr.Dropdown([], label="export as", min_width=110, scale=1)
                    dl_btn = gr.Button("Export zip", min_width=110, scale=1, elem_id="ldx-export")
                    dl_file = gr.File(
                        label="download", interactive=False, height=60, min_width=200, scale=2, elem_id="ldx-download"
                    )
                usage = gr.Code(language="python", label="use it (for the format picked above; copy button at the right)",
                                interactive=False, elem_id="ldx-usage")  # fmt: skip
                with gr.Row(equal_height=True):
                    try_in = gr.Textbox(label="try it: your input (LLM) or prompt (diffusion); several: one per line",
                                        lines=1, scale=5, elem_id="ldx-try-in")  # fmt: skip
                    try_btn = gr.Button("Run with and without it", scale=1, elem_id="ldx-try")
                with gr.Row():
                    try_text = gr.HTML(elem_id="ldx-try-out")
                    try_img = gr.Image(label="base (top) · with the adapter (bottom)", type="pil", visible=False,
                                       interactive=False, elem_id="ldx-try-img")  # fmt: skip
                detail = gr.HTML(elem_id="ldx-detail")
                modules = gr.Dataframe(headers=MODULE_HEADERS, label="modules and ranks", interactive=False,
                                       max_height=420, elem_id="ldx-modules",
                                       column_widths=["44%", "16%", "7%", "6%", "6%", "6%", "7%", "8%"])  # fmt: skip
            with gr.Tab("Admin", id="admin"):
                token = gr.Textbox(label="admin token", type="password", elem_id="ldx-token",
                                   placeholder="LORADEX_ADMIN_TOKEN or <data dir>/admin_token")  # fmt: skip
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("**Upload** adapter files, sidecars (.txt/.json) or a zip")
                        files = gr.File(file_count="multiple", label="files", elem_id="ldx-files")
                        folder = gr.Textbox(label="name for loose PEFT files (their folder name)",
                                            placeholder="peft_adapter")  # fmt: skip
                        up_btn = gr.Button("Ingest uploads", variant="primary", elem_id="ldx-ingest")
                    with gr.Column():
                        gr.Markdown("**Server folder**: a file or folder already on this machine")
                        server_path = gr.Textbox(label="path on the server", placeholder="/data/loras")
                        dir_btn = gr.Button("Ingest folder")
                        gr.Markdown("**Remove** an adapter")
                        victim = gr.Textbox(label="adapter id, name or sha256", elem_id="ldx-victim")
                        rm_btn = gr.Button("Remove", variant="stop", elem_id="ldx-remove")
                        rm_msg = gr.Markdown()
                        gr.Markdown("**Text map**: fit it on a texts file (adapter name or sha256 → paraphrases)")
                        texts_file = gr.File(file_types=[".json"], label="texts file", elem_id="ldx-texts")
                        tmap_btn = gr.Button("Fit the text map", elem_id="ldx-text-map")
                        tmap_msg = gr.Markdown(elem_id="ldx-text-map-msg")
                summary = gr.Markdown(elem_id="ldx-summary")
                table = gr.Dataframe(headers=RESULT_HEADERS, label="ingestion report", interactive=False,
                                     wrap=True, elem_id="ldx-report")  # fmt: skip
            from ui.web.make import build_make_tabs

            made = build_make_tabs(service, ui.choices(), ui.check_token)

        search_in = [prompt, family, fmt, origin, tags, mode, k, examples, picture]
        go.click(ui.search, search_in, [cards, regmap, to_generate], api_name="search", js=SEARCH_URL_JS)
        prompt.submit(ui.search, search_in, [cards, regmap, to_generate], api_visibility="private", js=SEARCH_URL_JS)
        to_generate.click(lambda p: (gr.Tabs(selected="generate"), p), [prompt], [tabs, made["description"]],
                          api_visibility="private")  # fmt: skip
        adapter_out = [detail, modules, dl_fmt, usage]
        pick.change(ui.adapter, [pick], adapter_out, api_name="adapter")
        dl_btn.click(ui.download, [pick, dl_fmt], [dl_file], api_name="download")
        dl_fmt.change(ui.usage, [pick, dl_fmt], [usage], api_name="usage")
        try_btn.click(ui.try_it, [pick, try_in], [try_text, try_img], api_name="try_it")
        ingest_out = [summary, table, pick, header]
        up_btn.click(
            ui.ingest_files, [token, files, folder], ingest_out, api_name="ingest_files", show_progress_on=table
        )
        dir_btn.click(ui.ingest_folder, [token, server_path], ingest_out, api_name="ingest_folder",
                      show_progress_on=table)  # fmt: skip
        rm_btn.click(ui.remove, [token, victim], [rm_msg, pick, header], api_name="remove", show_progress_on=rm_msg)
        tmap_btn.click(ui.fit_text_map, [token, texts_file], [tmap_msg], api_name="fit_text_map",
                       show_progress_on=tmap_msg)  # fmt: skip
        demo.load(ui.on_load, None, [header, family, fmt, origin, regmap, pick, tabs, prompt, cards, made["adapters"],
                                     to_generate],
                  api_visibility="private")  # fmt: skip
        demo.load(browse.on_load, None, browse_out, api_visibility="private")
    return demo
