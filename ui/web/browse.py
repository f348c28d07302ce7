"""The web UI's Browse tab: every adapter, a page at a time, sorted and filtered like the REST API's
``GET /adapters`` (the same ``LocalService.list`` / ``count`` call). Its state (page, size, sort,
filters) lives in the address bar (``?browse=1&pg=2&sort=-size…``; not ``page`` or ``view``, which
Gradio reads itself), so a view can be shared and Back returns to it; a row opens the adapter page
(``ROW_CLICK_JS`` in the page head)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from loradex.errors import RegistryError
from loradex.service import LocalService

ANY = "any"
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_SIZE, DEFAULT_SORT = 25, "id"
SORT_LABELS = {"id": "id (oldest first)", "-id": "id (newest first)", "name": "name A→Z", "-name": "name Z→A",
               "size": "file size ↑", "-size": "file size ↓", "params": "parameters ↑", "-params": "parameters ↓",
               "created": "created ↑", "-created": "created ↓"}  # fmt: skip


def sort_choices() -> list[tuple[str, str]]:
    """(label, value) for every sort ``GET /adapters?sort=`` accepts, ascending then descending."""
    return [(SORT_LABELS.get(s, s.lstrip("-") + (" ↓" if s[0] == "-" else " ↑")), s)
            for k in LocalService.sort_keys() for s in (k, f"-{k}")]  # fmt: skip


@dataclass(frozen=True)
class Paging:
    """One page of ``total`` rows: 1-based ``page`` of ``pages`` (≥ 1), ``size`` rows from ``offset``."""

    total: int
    size: int
    page: int
    pages: int
    offset: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def label(self) -> str:
        if not self.total:
            return "page 1 of 1 · no adapters"
        last = min(self.total, self.offset + self.size)
        return f"page {self.page} of {self.pages} · adapters {self.offset + 1}–{last} of {self.total}"


def paging(total: int, page: Any, size: Any) -> Paging:
    """Clamp a requested page (anything ``int()`` takes; junk → 1) into ``1 … pages`` for ``size`` rows a page."""
    size_n = max(1, _int(size, DEFAULT_SIZE))
    total = max(0, int(total))
    pages = max(1, -(-total // size_n))
    page_n = min(max(1, _int(page, 1)), pages)
    return Paging(total=total, size=size_n, page=page_n, pages=pages, offset=(page_n - 1) * size_n)


def _int(v: Any, default: int) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return default


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _size(n: int | None) -> str:
    return f"{(n or 0) / 1024:,.0f} KiB"


class BrowseUI:
    def __init__(self, service: Any) -> None:
        self.service = service

    def view(self, family: str, fmt: str, origin: str, tag: str, sort: str, size: Any,
             page: Any) -> tuple[str, str, int, Any, Any]:  # fmt: skip
        """→ (table HTML, "page N of M …", the page shown, previous button, next button)."""
        filters = {"family": None if family in (None, "", ANY) else family,
                   "format": None if fmt in (None, "", ANY) else fmt,
                   "origin": None if origin in (None, "", ANY) else origin,
                   "tags": [t.strip() for t in (tag or "").split(",") if t.strip()]}  # fmt: skip
        try:
            pg = paging(self.service.count(**filters), page, size)
            rows = self.service.list(**filters, limit=pg.size, offset=pg.offset, sort=sort or "id")
        except RegistryError as e:
            raise gr.Error(str(e), title="Browse") from None
        return (self.table(rows), pg.label(), pg.page, gr.Button(interactive=pg.has_prev),
                gr.Button(interactive=pg.has_next))  # fmt: skip

    @staticmethod
    def table(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return '<div class="ldx-note">No adapter matches these filters.</div>'
        body = "".join(
            f'<tr data-id="{a["id"]}" data-href="?adapter={a["id"]}"><td>{a["id"]}</td>'
            f'<td><a href="?adapter={a["id"]}">{_esc(a["name"])}</a></td><td>{_esc(a["family"])}</td>'
            f'<td>{_esc(a["format"])}</td><td>{_esc(a["origin"])}</td>'
            f"<td>{_esc('/'.join(map(str, a.get('ranks') or [])) or '?')}</td><td>{a.get('module_count', '')}</td>"
            f"<td>{(a.get('param_count') or 0):,}</td><td>{_size(a.get('file_size'))}</td>"
            f'<td class="ldx-muted">{_esc((a.get("description") or "")[:90])}</td></tr>'
            for a in rows
        )  # fmt: skip
        head = "".join(f"<th>{h}</th>" for h in ("id", "name", "family", "format", "origin", "ranks", "modules",
                                                  "parameters", "size", "description"))  # fmt: skip
        return f'<table class="ldx-kv ldx-browse"><tr>{head}</tr>{body}</table>'

    def on_load(self, request: gr.Request) -> tuple[Any, ...]:
        """The Browse tab as the address bar asks (``?browse=1&pg=&size=&sort=&family=…``)."""
        fams, fmts, origins = self.facets()
        q = request.query_params if request is not None else {}
        want = {k: (q.get(k) or "").strip() for k in ("family", "format", "origin", "tag", "sort", "size", "pg")}
        sort = want["sort"] if want["sort"] in {v for _, v in sort_choices()} else DEFAULT_SORT
        size = _int(want["size"], DEFAULT_SIZE)
        size = size if size in PAGE_SIZES else DEFAULT_SIZE
        fam, fmt, org = [want[k] if want[k] in have else ANY
                         for k, have in (("family", fams), ("format", fmts), ("origin", origins))]  # fmt: skip
        table, label, page, prev, nxt = self.view(fam, fmt, org, want["tag"], sort, size, want["pg"] or 1)
        return (gr.Dropdown(choices=[ANY, *fams], value=fam), gr.Dropdown(choices=[ANY, *fmts], value=fmt),
                gr.Dropdown(choices=[ANY, *origins], value=org), want["tag"], sort, size, page, table, label, prev,
                nxt)  # fmt: skip

    def facets(self) -> tuple[list[str], list[str], list[str]]:
        st = self.service.stats()
        return list(st.families), list(st.formats), list(st.origins)


def url_js(step: int | None = None) -> str:
    """Browse state → the address bar (one history entry per change). ``step``: None starts at page 1
    (new filters or sort), 0 keeps the typed page, ±1 moves to the previous / next page."""
    move = "page = 1;" if step is None else f"page = Math.max(1, (parseInt(page) || 1) + ({step}));"
    return f"""(family, fmt, origin, tag, sort, size, page) => {{
  {move}
  const url = new URL(window.location.href);
  for (const k of ["q", "adapter"]) url.searchParams.delete(k);
  const state = {{browse: "1", family, format: fmt, origin, tag, sort, size, pg: page}};
  const dflt = {{family: "{ANY}", format: "{ANY}", origin: "{ANY}", tag: "", sort: "{DEFAULT_SORT}",
                size: "{DEFAULT_SIZE}", pg: "1"}};
  for (const [k, v] of Object.entries(state)) {{
    if (v === null || v === undefined || String(v).trim() === "" || String(v) === dflt[k]) url.searchParams.delete(k);
    else url.searchParams.set(k, String(v).trim());
  }}
  if (url.href !== window.location.href) window.history.pushState({{}}, "", url);
  return [family, fmt, origin, tag, sort, size, page];
}}"""


# Rows of the browse table open their adapter page (the name is a link too).
ROW_CLICK_JS = """document.addEventListener("click", (e) => {
  const row = e.target.closest && e.target.closest("table.ldx-browse tr[data-href]");
  if (row && !e.target.closest("a")) window.location.href = row.dataset.href;
});"""


def build_browse_tab(service: Any) -> tuple[Any, list[Any]]:
    """The Browse tab inside the caller's ``gr.Tabs()``; → (the UI, its on_load outputs)."""
    ui = BrowseUI(service)
    fams, fmts, origins = ui.facets()
    with gr.Tab("Browse", id="browse"):
        with gr.Row():
            family = gr.Dropdown([ANY, *fams], value=ANY, label="family", min_width=120, elem_id="ldx-b-family")
            fmt = gr.Dropdown([ANY, *fmts], value=ANY, label="format", min_width=120, elem_id="ldx-b-format")
            origin = gr.Dropdown([ANY, *origins], value=ANY, label="origin", min_width=120, elem_id="ldx-b-origin")
            tag = gr.Textbox(
                label="tags (all required)", placeholder="style, anime", min_width=140, elem_id="ldx-b-tag"
            )
            sort = gr.Dropdown(sort_choices(), value=DEFAULT_SORT, label="sort", min_width=160, elem_id="ldx-b-sort")
            size = gr.Dropdown(list(PAGE_SIZES), value=DEFAULT_SIZE, label="per page", min_width=90,
                               elem_id="ldx-b-size")  # fmt: skip
        with gr.Row(equal_height=True, elem_classes="ldx-pager"):
            prev = gr.Button("← previous", size="sm", interactive=False, min_width=100, scale=0, elem_id="ldx-b-prev")
            label = gr.Markdown(elem_id="ldx-b-pos")
            page = gr.Number(1, label="page", precision=0, minimum=1, min_width=90, scale=0, elem_id="ldx-b-page")
            nxt = gr.Button("next →", size="sm", min_width=100, scale=0, elem_id="ldx-b-next")
        table = gr.HTML(elem_id="ldx-browse")
    inputs = [family, fmt, origin, tag, sort, size, page]
    outputs = [table, label, page, prev, nxt]
    for box in (family, fmt, origin, sort, size):
        box.input(ui.view, inputs, outputs, js=url_js(), api_visibility="private")
    tag.submit(ui.view, inputs, outputs, js=url_js(), api_visibility="private")
    page.submit(ui.view, inputs, outputs, js=url_js(0), api_visibility="private")
    prev.click(ui.view, inputs, outputs, js=url_js(-1), api_visibility="private")
    nxt.click(ui.view, inputs, outputs, js=url_js(+1), api_name="browse")
    return ui, [family, fmt, origin, tag, sort, size, page, table, label, prev, nxt]
