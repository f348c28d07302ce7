"""``Client``: the loradex REST API from Python; implements ``loradex.protocol.Service`` like ``LocalService``.

``list`` / ``get`` / ``remove`` return the same dicts, ``search`` the same ``SearchHit`` objects
(equal to in-process ones), ``ingest`` the same ``IngestReport`` (paths are the caller's local
paths, as with ``LocalService``), ``export`` the written files. ``health`` and ``stats`` return
``loradex.types`` dataclasses. Errors come back as the exceptions of ``loradex.errors``
(``AdapterNotFoundError``, ``SearchError``, ``ExportError`` …) or ``ClientError`` carrying the API's
stable code. Importing this module does not import torch.

    from loradex import Client
    c = Client("http://127.0.0.1:7860", token=open(".loradex/admin_token").read().strip())
    hits = c.search("a soft watercolor painting", k=5)
"""

from __future__ import annotations

import builtins
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from loradex.errors import (
    ERROR_CODES,
    AdapterFormatError,
    AdapterNotFoundError,
    AuthError,
    ClientError,
    ExportError,
    InvalidQueryError,
    JobNotFoundError,
    PreviewUnavailableError,
    SearchError,
)
from loradex.types import (
    ComposeResult,
    Filters,
    GenerateResult,
    Health,
    IngestReport,
    IngestResult,
    Job,
    MergeOutcome,
    SearchResults,
    Stats,
    hit_from_dict,
)
from registry.formats import resolve_source
from registry.ingest import discover

_CHUNK = 1 << 20

__all__ = ["AuthError", "Client", "ClientError"]

ErrorMap = dict[str, Callable[[str], Exception]]
Progress = Callable[[int, int], None]  # progress(done, total) of a job, as the server reports it


class Client:
    """HTTP client of a loradex server. ``token`` is the admin token (needed by ingest / remove)."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 120.0, http: httpx.Client | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._http = http if http is not None else httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, admin: bool = False, errors: ErrorMap | None = None,
                 stream: bool = False, **kw: Any) -> httpx.Response:  # fmt: skip
        """Send; on an error response raise (``errors`` maps API codes to exceptions). With
        ``stream`` the body is left unread: the caller iterates and closes the response. ``admin``
        marks calls that need the token (the server decides; the token is sent whenever there is one)."""
        # The token goes with every request when the client has one: admins also read what only
        # they may see (source paths); ``admin`` calls without one are refused by the server.
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            r = self._http.send(self._http.build_request(method, path, headers=headers, **kw), stream=stream)
            if r.is_success:
                return r
            r.read()
            r.close()
        except httpx.HTTPError as e:
            raise ClientError(0, "unreachable", f"{self.url}{path}: {e}") from e
        try:
            err = r.json()["error"]
            code, message = str(err["code"]), str(err["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", r.text[:300] or r.reason_phrase
        make = (errors or {}).get(code)
        if make is not None:
            raise make(message)
        raise (AuthError if code in ("unauthorized", "forbidden") else ClientError)(r.status_code, code, message)

    @staticmethod
    def _ref(ref: str | int) -> str:
        return quote(str(ref), safe="")

    # -- meta ------------------------------------------------------------------------------
    def health(self) -> Health:
        return Health.from_dict(self._request("GET", "/health").json())

    def stats(self) -> Stats:
        return Stats.from_dict(self._request("GET", "/stats").json())

    # -- registry --------------------------------------------------------------------------
    def list(self, filters: Filters | None = None, *, limit: int | None = None, offset: int = 0, sort: str = "id",
             **kw: Any) -> builtins.list[dict[str, Any]]:  # fmt: skip
        params = self._list_params(Filters.of(filters, **kw), limit=limit, offset=offset,
                                   sort=None if sort == "id" else sort)  # fmt: skip
        return list(self._request("GET", "/adapters", params=params, errors={"bad_request": InvalidQueryError}).json())

    def count(self, filters: Filters | None = None, **kw: Any) -> int:
        r = self._request("GET", "/adapters", params=self._list_params(Filters.of(filters, **kw), limit=1),
                          errors={"bad_request": InvalidQueryError})  # fmt: skip
        return int(r.headers["X-Total-Count"])

    @staticmethod
    def _list_params(filters: Filters, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = filters.to_dict()
        params["tag"] = params.pop("tags", None)
        given = {k: v for k, v in extra.items() if v is not None}  # limit 0 goes to the server, which refuses it
        return {k: v for k, v in params.items() if v} | given

    def get(self, ref: str | int) -> dict[str, Any]:
        not_found: ErrorMap = {"not_found": lambda _: AdapterNotFoundError(ref)}
        return dict(self._request("GET", f"/adapters/{self._ref(ref)}", errors=not_found).json())

    def usage(self, ref: str | int) -> dict[str, str]:
        not_found: ErrorMap = {"not_found": lambda _: AdapterNotFoundError(ref)}
        return dict(self._request("GET", f"/adapters/{self._ref(ref)}/usage", errors=not_found).json())

    def try_it(self, ref: str | int, inputs: Sequence[str]) -> dict[str, Any]:
        """Like ``LocalService.try_it``: text rows (base vs adapter) for language families, or
        ``{"kind": "image", "png": bytes}`` (base row, adapter row) for image families."""
        errors: ErrorMap = {"not_found": lambda _: AdapterNotFoundError(ref), "bad_request": SearchError}
        r = self._request("POST", f"/adapters/{self._ref(ref)}/try", json={"inputs": list(inputs)}, errors=errors)
        if r.headers.get("content-type", "").startswith("image/png"):
            info = self.get(ref)
            return {"adapter": {"id": info["id"], "name": info["name"]}, "family": info["family"], "kind": "image",
                    "png": r.content}  # fmt: skip
        return dict(r.json())

    def remove(self, ref: str | int) -> dict[str, Any]:
        not_found: ErrorMap = {"not_found": lambda _: AdapterNotFoundError(ref)}
        return dict(self._request("DELETE", f"/adapters/{self._ref(ref)}", admin=True, errors=not_found).json())

    def preview(self, ref: str | int) -> bytes:
        """The adapter's preview PNG (see ``LocalService.preview``)."""
        errors: ErrorMap = {"not_found": lambda _: AdapterNotFoundError(ref),
                            "no_preview": lambda m: PreviewUnavailableError("", [], m)}  # fmt: skip
        return self._request("GET", f"/adapters/{self._ref(ref)}/preview.png", errors=errors).content

    def export(self, ref: str | int, fmt: str, out_dir: str | Path) -> builtins.list[Path]:
        """Download ``ref`` written as ``fmt`` and unpack it into ``out_dir``; the written files."""
        errors: ErrorMap = {"not_found": lambda _: AdapterNotFoundError(ref), "bad_request": ExportError,
                            "refused": ExportError}  # fmt: skip
        r = self._request("GET", f"/adapters/{self._ref(ref)}/download", params={"format": fmt}, errors=errors,
                          stream=True)  # fmt: skip
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        root = out.resolve()
        written = []
        with tempfile.TemporaryFile() as tmp:
            try:
                for chunk in r.iter_bytes(_CHUNK):
                    tmp.write(chunk)
            except httpx.HTTPError as e:
                raise ClientError(0, "unreachable", f"{self.url}: download interrupted ({e})") from e
            finally:
                r.close()
            tmp.seek(0)
            with zipfile.ZipFile(tmp) as z:
                for info in z.infolist():
                    parts = [p for p in info.filename.split("/") if p not in ("", ".")]
                    target = out.joinpath(*parts)
                    if info.is_dir() or ".." in parts or not target.resolve().is_relative_to(root):
                        continue  # only plain files inside out_dir
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, target.open("wb") as dst:
                        while chunk := src.read(_CHUNK):
                            dst.write(chunk)
                    written.append(target)
        return written

    # -- search ----------------------------------------------------------------------------
    def search(self, prompt: str, k: int = 10, *, mode: str = "hybrid", filters: Filters | None = None,
               examples: Sequence[tuple[str, str]] | None = None, images: Sequence[bytes | str | Path] | None = None,
               progress: Callable[[int, int], None] | None = None, **kw: Any) -> SearchResults:  # fmt: skip
        """``LocalService.search`` on the server. ``images`` (example pictures: bytes or paths) go as
        base64; ``progress`` is accepted for parity (the server renders without reporting)."""
        body: dict[str, Any] = {"prompt": prompt, "k": k, "mode": mode, **Filters.of(filters, **kw).to_dict()}
        if examples:
            body["examples"] = [list(e) for e in examples]
        if images:
            import base64

            try:
                raw = [Path(item).read_bytes() if isinstance(item, str | Path) else bytes(item) for item in images]
            except OSError as e:
                raise SearchError(f"example picture {e.filename}: cannot be read ({e.strerror})") from None
            body["images"] = [base64.b64encode(data).decode() for data in raw]
        wait = None if images else httpx.USE_CLIENT_DEFAULT  # a first render of every candidate takes minutes
        r = self._request("POST", "/search", json=body, errors={"bad_request": SearchError}, timeout=wait)
        data = r.json()
        return SearchResults([hit_from_dict(h) for h in data["hits"]], data.get("nothing_fits"),
                             data.get("relevance_threshold"), data.get("read"), data.get("reason"))  # fmt: skip

    # -- ingestion -------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        workers: int | None = None,  # accepted for LocalService parity; the server decides
        progress: Callable[[IngestResult], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        poll: float = 0.1,
        timeout: float | None = None,
    ) -> IngestReport:
        """Upload files and folders (each adapter with its sidecars, as one zip) and wait for the
        server's ingestion job. The report lists the caller's paths, in ``LocalService`` order."""
        units = discover([Path(p) for p in paths])
        if on_total:
            on_total(len(units))
        local: dict[int, IngestResult] = {}
        groups: dict[int, tuple[str, Path]] = {}  # unit index → (prefix in the upload, local folder)
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buf:
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
                for i, unit in enumerate(units):
                    try:
                        if unit.problem:
                            raise AdapterFormatError(unit.path, unit.problem)
                        src = resolve_source(unit.path)
                    except AdapterFormatError as e:
                        local[i] = IngestResult(str(unit.path), "refused", reason=str(e))
                        if progress:
                            progress(local[i])
                        continue
                    base = src.weights.parent
                    prefix = f"{i:05d}/{base.resolve().name or 'adapter'}"
                    groups[i] = (prefix, base)
                    for f in [*src.files, *_sidecars(src.weights)]:
                        z.write(f, f"{prefix}/{f.name}")
            if not groups:
                return IngestReport([local[i] for i in range(len(units))])
            buf.seek(0)
            r = self._request("POST", "/ingest", admin=True, files=[("files", ("upload.zip", buf, "application/zip"))])
        job = self.wait(Job.from_dict(r.json()).id, poll=poll, timeout=timeout,
                        on_result=(lambda res: progress(_to_local(res, groups))) if progress else None)  # fmt: skip
        if job.status != "done" or job.result is None:
            err = job.error
            raise ClientError(0, err.code if err else "failed", err.message if err else f"ingest job {job.id} failed")
        remote = {_group_of(res.path): _to_local(res, groups) for res in job.result.results}
        return IngestReport(
            [local[i] if i in local else remote[i] for i in range(len(units)) if i in local or i in remote]
        )

    def train_encoder(self, family: str, *, texts: dict[str, Any] | None = None, train_config: Any = None,
                      poll: float = 0.2, timeout: float | None = None, **_: Any) -> dict[str, Any]:  # fmt: skip
        """Train ``family``'s weight encoder on the server (a job) and wait; returns family, version and
        the best metrics. ``texts``: adapter name or sha256 → extra descriptions (or ``{"texts": [...]}``)."""
        body: dict[str, Any] = {"family": family}
        if train_config is not None:
            body.update(epochs=train_config.epochs, val_fraction=train_config.val_fraction, seed=train_config.seed)
        if texts:
            body["texts"] = {k: (v["texts"] if isinstance(v, dict) else list(v)) for k, v in texts.items()}
        r = self._request("POST", "/encoders/train", admin=True, json=body)
        job = self.wait(Job.from_dict(r.json()).id, poll=poll, timeout=timeout)
        if job.status != "done" or job.encoder is None:
            err = job.error
            raise ClientError(0, err.code if err else "failed", err.message if err else f"training job {job.id} failed")
        return job.encoder

    def train_text_map(self, texts: dict[str, Any] | None = None, config: Any = None, *, tune: Any = None,
                       poll: float = 0.2, timeout: float | None = None, **_: Any) -> dict[str, Any]:  # fmt: skip
        """Fit the registry's text map on the server (a job) and wait; returns its version and metrics.
        ``texts``: adapter name or sha256 → paraphrases (or ``{"texts": [...]}``); ``config``: a
        ``TextMapConfig`` (its fields are sent; left out: the registry's defaults); ``tune``: a
        ``TuneConfig`` or its fields as a dict (fine-tune the text encoder too; None: no tune)."""
        body: dict[str, Any] = {}
        if config is not None:
            body.update({k: getattr(config, k) for k in ("steps", "lr", "temperature", "reg", "seed")})
        if tune is not None:  # the REST request takes the modules as the default only: left out
            from encoders.registry_text_tune import TuneConfig  # no torch

            default = list(TuneConfig().target_modules)
            body["tune"] = {k: v for k, v in (dict(tune) if isinstance(tune, dict) else tune.to_dict()).items()
                            if k != "target_modules" or list(v) != default}  # fmt: skip
        if texts:
            body["texts"] = {k: (v["texts"] if isinstance(v, dict) else list(v)) for k, v in texts.items()}
        return self._job_output("/encoders/text-map", body, poll, timeout)

    # -- generation and composition (jobs on the server) --------------------------------------
    def generators(self) -> dict[str, dict[str, dict[str, Any]]]:
        """family → method → version, source, metrics (like ``LocalService.generators``, without paths)."""
        return dict(self._request("GET", "/generators").json())

    def generate(self, description: str, *, family: str, method: str | None = None,
                 examples: Sequence[tuple[str, str]] | None = None, seed: int = 0, rank: int | None = None,
                 poll: float = 0.1, timeout: float | None = None, progress: Progress | None = None,
                 **_: Any) -> GenerateResult:  # fmt: skip
        """Generate and register an adapter on the server (a job) and wait for it; ``progress(done,
        total)`` sees the job's counts as they change (``wait``)."""
        body = {"description": description, "family": family, "method": method, "seed": seed, "rank": rank,
                "examples": [list(e) for e in examples] if examples else None}  # fmt: skip
        return GenerateResult.from_dict(self._job_output("/generate", body, poll, timeout, progress))

    def merge(self, refs: Sequence[str | int], weights: Sequence[float] | None = None, *, strategy: str = "cat",
              rank: int | None = None, seed: int = 0, name: str | None = None,
              options: dict[str, Any] | None = None, poll: float = 0.1, timeout: float | None = None,
              progress: Progress | None = None) -> MergeOutcome:  # fmt: skip
        """Merge registered adapters into a new registered adapter on the server (a job); ``options``:
        the strategy's options, as ``LocalService.merge``; ``progress(done, total)``: a learned
        strategy's fit as the job reports it (``zip``)."""
        body = {"adapters": [str(r) for r in refs], "weights": list(weights) if weights is not None else None,
                "strategy": strategy, "rank": rank, "seed": seed, "name": name, "options": options}  # fmt: skip
        return MergeOutcome.from_dict(self._job_output("/merge", body, poll, timeout, progress))

    def compose(self, prompt: str, *, adapters: Sequence[str | int] | None = None, auto: int | None = None,
                strategy: str = "auto", weights: Sequence[float] | None = None,
                inputs: Sequence[str] | None = None, family: str | None = None, seed: int = 0, n_images: int = 1,
                steps: int | None = None, options: dict[str, Any] | None = None, poll: float = 0.1,
                timeout: float | None = None, progress: Progress | None = None, **_: Any) -> ComposeResult:  # fmt: skip
        """Compose adapters at run time on the server (a job): images or outputs, and the gate plot;
        ``progress(done, total)``: the job's steps as it reports them (as ``LocalService.compose``)."""
        body = {"prompt": prompt, "adapters": [str(a) for a in adapters] if adapters else None, "auto": auto,
                "strategy": strategy, "weights": list(weights) if weights is not None else None,
                "inputs": list(inputs) if inputs else None, "family": family, "seed": seed, "n_images": n_images,
                "steps": steps, "options": options}  # fmt: skip
        return ComposeResult.from_dict(self._job_output("/compose", body, poll, timeout, progress))

    def _job_output(self, path: str, body: dict[str, Any], poll: float, timeout: float | None,
                    progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
        """POST ``body``, wait for the job, return its output; a failed job raises like an error response."""
        r = self._request("POST", path, admin=True, json=body)
        job = self.wait(Job.from_dict(r.json()).id, poll=poll, timeout=timeout, on_progress=progress)
        if job.status != "done" or job.output is None:
            err = job.error
            code, message = (err.code, err.message) if err else ("failed", f"job {job.id} failed")
            if code == "not_found":
                raise AdapterNotFoundError(message)
            raise ClientError(ERROR_CODES.get(code, 0), code, message)
        return job.output

    def job(self, job_id: str) -> Job:
        not_found: ErrorMap = {"not_found": lambda _: JobNotFoundError(job_id)}
        return Job.from_dict(self._request("GET", f"/jobs/{self._ref(job_id)}", admin=True, errors=not_found).json())

    def wait(self, job_id: str, *, poll: float = 0.1, timeout: float | None = None,
             on_result: Callable[[IngestResult], None] | None = None,
             on_progress: Progress | None = None) -> Job:  # fmt: skip
        """Poll a job until it is done or failed (``on_result`` sees each new result once;
        ``on_progress(done, total)`` each change of the job's counts once it has a total, the last
        one included)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen, delay = 0, min(poll, 0.05)
        counts: tuple[int, int] | None = None
        while True:
            job = self.job(job_id)
            results = job.result.results if job.result else []
            for res in results[seen:]:
                if on_result:
                    on_result(res)
            seen = len(results)
            if on_progress is not None and job.total is not None and (job.done, job.total) != counts:
                counts = (job.done, job.total)
                on_progress(*counts)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s ({job.done}/{job.total})")
            time.sleep(delay)
            delay = min(delay * 2, max(poll, 0.05))


def _sidecars(weights: Path) -> builtins.list[Path]:
    """The files next to ``weights`` that ``registry.formats.sidecars`` reads."""
    stem = weights.stem
    names = (f"{stem}.description.txt", "description.txt", f"{stem}.civitai.info", f"{stem}.json", "README.md",
             f"{stem}.md")  # fmt: skip
    return [p for n in dict.fromkeys(names) if (p := weights.parent / n).is_file() and not p.is_symlink()]


def _group_of(path: str) -> int:
    head = path.split("/", 1)[0]
    return int(head) if head.isdigit() else -1


def _to_local(res: IngestResult, groups: dict[int, tuple[str, Path]]) -> IngestResult:
    """A server result (paths relative to the upload) with the caller's paths put back."""
    g = groups.get(_group_of(res.path))
    if g is None:
        return res
    prefix, base = g

    def local(s: str) -> str:
        rest = s[len(prefix) :].lstrip("/")
        return str(base / rest) if rest else str(base)

    path = local(res.path) if res.path.startswith(prefix) else res.path
    reason = res.reason
    if reason and prefix in reason:
        local_base = "" if str(base) == "." else f"{base}{os.sep}"
        reason = reason.replace(f"{prefix}/", local_base).replace(prefix, str(base))
    return IngestResult(path, res.status, res.adapter_id, res.name, res.family, res.format, reason)
