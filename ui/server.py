"""``loradex serve``: the REST API on localhost, ready on a fresh data dir.

``prepare`` migrates the database, ingests the bundled adapter sets (``loradex.settings``:
the samples and whatever sets installed distributions declare, plus ``LORADEX_ADAPTER_DIRS``) when
the database was fresh, fits the registry's text map on the paraphrases those sets declare
(``fit_bundled_text_map``), and finds the admin token (``LORADEX_ADMIN_TOKEN``, else ``<data dir>/admin_token``,
generated at first start with mode 0600). ``serve`` leaves that ingestion to a job
(``start_bundled_ingest``: the port opens at once, ``/health`` says ``starting`` until it ends),
then fine-tunes the text encoder on the same paraphrases in a second job (``start_text_tune``:
searches use the plain map until the tuned one is swapped in), and runs uvicorn, bound to 127.0.0.1
unless told otherwise, with the Gradio web UI mounted at ``/ui`` of the API app (``mount_ui``:
one process, one port; ``/`` redirects there). ``BackgroundServer`` runs an app in a thread on a
free port (tests, benchmarks, notebooks).
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from loradex.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from loradex.service import LocalService
    from loradex.types import IngestReport

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
TOKEN_ENV = "LORADEX_ADMIN_TOKEN"
TOKEN_FILE = "admin_token"
REPO = Path(__file__).resolve().parents[1]


def bundled_adapters(settings: Settings | None = None) -> list[Path]:
    """What a fresh data dir starts with (``Settings.bundled_adapters``): the sample adapters, the
    folders of the other registered adapter sets (a zoo's, once it is built), ``LORADEX_ADAPTER_DIRS``."""
    return (settings or Settings.from_env()).bundled_adapters()


BUNDLED_PENDING = "bundled_ingest.pending"
BUNDLED_TUNE_STEPS: int | None = None  # the first start's text-encoder tune (``start_text_tune``): every step
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
UI_PATH = "/ui"


def admin_token(home: Path) -> tuple[str, Path | None]:
    """(token, file it is stored in); the file is None when it comes from ``LORADEX_ADMIN_TOKEN``."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, None
    path = Path(home) / TOKEN_FILE
    if path.is_file() and not path.is_symlink():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)  # readable by others: tighten before trusting it
        token = path.read_text().strip()
        if token:
            return token, path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token, path


@dataclass
class Prepared:
    service: LocalService
    token: str
    token_path: Path | None  # None: the token comes from LORADEX_ADMIN_TOKEN
    fresh: bool  # the database had no schema before this start
    samples: IngestReport | None  # the sample ingestion, when it ran
    pending: list[Path] | None = None  # bundled folders left for ``start_bundled_ingest`` (background=True)
    text_map: str | None = None  # what the start did about the text map (``fit_bundled_text_map``)


def prepare(
    home: str | Path | None = None,
    db_url: str | None = None,
    *,
    samples: bool = True,
    text_model: str | None = None,
    index_type: str = "flat",
    background: bool = False,
    mode: str = "embedded",
    blob_dir: str | Path | None = None,
    catch_up_interval: float = 0.5,
    blobs_url: str | None = None,
) -> Prepared:
    """Migrate, ingest the bundled samples on a fresh database, find or make the admin token.
    ``background``: leave the bundled ingestion to ``start_bundled_ingest`` (``Prepared.pending``).
    In ``shared`` mode the service follows the change log in the background (other replicas' writes)."""
    from loradex.service import LocalService

    service = LocalService.open(home, db_url, text_model=text_model, index_type=index_type, mode=mode,
                                blob_dir=blob_dir, blobs_url=blobs_url, catch_up_interval=catch_up_interval)  # migrates, syncs  # fmt: skip
    fresh, home = bool(service.fresh), service.home
    bundled = bundled_adapters()
    pending = home / BUNDLED_PENDING  # written before the bundled ingestion, removed once it is complete
    report = None
    todo = None
    if (fresh or pending.is_file()) and samples and bundled:
        pending.write_text("the first start's ingestion of the bundled adapters has not finished\n")
        if background:
            todo = bundled
        else:
            report = service.ingest(bundled)  # idempotent: an interrupted first start is completed here
            said = fit_bundled_text_map(service)
            pending.unlink()
    token, token_path = admin_token(home)
    return Prepared(service, token, token_path, fresh, report, todo, None if report is None else said)


def fit_bundled_text_map(service: LocalService) -> str | None:
    """Fit the registry's text map on the bundled sets' paraphrases (``Settings.bundled_texts``) when
    it has none yet; part of a first start, before it counts as finished. Returns what was done
    (None: no set declares paraphrases). A map that cannot be fitted does not stop the start: the
    registry keeps plain text search and the reason is returned."""
    from encoders.weight.registry_training import EncoderTrainingError

    texts = Settings.from_env().bundled_texts()
    if not texts:
        return None
    if any(e["kind"] == "text" for e in service.encoders()):
        return "text map: the registry has one already"
    try:
        fitted = service.train_text_map(texts)
    except EncoderTrainingError as e:
        return f"text map not fitted ({e}); text search uses plain cosines"
    m = fitted["metrics"]
    return f"text map {fitted['version']} fitted on {m['texts']} texts of {m['adapters']} adapters"


def start_text_tune(app: Any, service: LocalService) -> str | None:
    """A first start's second job: fine-tune the text encoder on the bundled paraphrases and swap
    the tuned map in (``train-encoder --text --bundled --tune``; ``encoders.registry_text_tune``),
    once the plain map is serving. Held-out phrasings find their adapters more often with it
    (``benchmarks/results/retrieval_text_tune.md``), but it takes a minute or two of CPU, so the
    port does not wait for it: searches use the plain map meanwhile and wait out the few seconds of
    the swap (``registry.swap``), and it runs on the runner's background lane, so jobs users submit
    meanwhile (generate, compose, ingest) do not queue behind it. None (nothing started): ``Settings.text_tune`` off, no bundled
    paraphrases, no plain map fitted (nothing to improve on), a map tuned already, or an int8 text
    encoder (the tune trains the float one). A failed tune leaves the plain map."""
    from encoders.registry_text_tune import TuneConfig
    from loradex.jobs import BACKGROUND, submit_train_text_map

    settings = Settings.from_env()
    texts = settings.bundled_texts()
    mapped = service.text_map()
    if not settings.text_tune or not texts or mapped is None or mapped["tuned"]:
        return None
    if getattr(getattr(service.text_encoder, "config", None), "quantize", False):
        return None
    tune = replace(TuneConfig(), max_steps=BUNDLED_TUNE_STEPS).to_dict()
    return str(submit_train_text_map(app.state.jobs, service, texts, None, tune, lane=BACKGROUND).id)


def start_bundled_ingest(app: Any, prep: Prepared, out: TextIO | None = None) -> str | None:
    """Ingest ``prep.pending`` as a job of ``app``'s runner, so the port is open meanwhile; ``/health``
    answers ``starting`` until it ends. Returns the job id (None: nothing to do)."""
    if not prep.pending:
        return None
    folders, pending = prep.pending, prep.service.home / BUNDLED_PENDING

    def work(h: Any) -> None:
        report = prep.service.ingest(folders, progress=h.add_result, on_total=lambda n: h.update(total=n))
        before = prep.service.text_map()
        prep.text_map = fit_bundled_text_map(prep.service)
        fitted_now = prep.service.text_map() not in (None, before)  # not a map someone fitted meanwhile
        pending.unlink(missing_ok=True)  # an interrupted start leaves it: the next start completes the work
        prep.samples = report
        if out is not None:
            print(bundled_message(prep), file=out, flush=True)
        tune = start_text_tune(app, prep.service) if fitted_now else None
        app.state.tuning = tune  # /health says so in its detail while it runs
        if tune is not None and out is not None:
            print(f"fine-tuning the text encoder on the bundled paraphrases (job {tune}); search uses the plain "
                  "text map until it is done", file=out, flush=True)  # fmt: skip

    job = app.state.jobs.submit("ingest", work, what="ingestion of the bundled adapters", result=_report())
    app.state.starting = job.id
    return str(job.id)


def _report() -> IngestReport:
    from loradex.types import IngestReport

    return IngestReport()


def bundled_message(prep: Prepared) -> str:
    """What the start did with the bundled adapters (a fresh data dir, or finishing an interrupted start)."""
    r = prep.samples
    assert r is not None, "no bundled ingestion ran"
    where = ", ".join(str(d.relative_to(REPO)) if d.is_relative_to(REPO) else str(d) for d in bundled_adapters())
    tail = f"; {prep.text_map}" if prep.text_map else ""
    if prep.fresh:
        return f"fresh data dir: ingested {r.count('ingested')} bundled adapters from {where}{tail}"
    return (f"finished the interrupted first start: ingested {r.count('ingested')} more bundled adapters "
            f"({r.count('duplicate')} already in the registry) from {where}{tail}")  # fmt: skip


def mount_ui(app: Any, service: LocalService, admin_token: str | None, *, path: str = UI_PATH,
             max_upload_bytes: int | None = None) -> Any:  # fmt: skip
    """Mount the Gradio web UI (``ui.web.build_ui``) on the REST API's FastAPI ``app`` at ``path``,
    its upload ingestion on the API's job runner; ``GET /`` redirects to it. The API's routes stay as they are (they are matched first)."""
    import gradio as gr
    from fastapi.responses import RedirectResponse

    from ui.api import UploadLimits
    from ui.web import build_ui, page_options

    limits = UploadLimits(max_unpacked_bytes=max(4 * max_upload_bytes, 1 << 30)) if max_upload_bytes else None
    demo = build_ui(service, admin_token, api_root="..", limits=limits, jobs=getattr(app.state, "jobs", None))
    if path != "/":

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse(f"{path}/")

    return gr.mount_gradio_app(app, demo, path=path, max_file_size=max_upload_bytes, footer_links=["api", "settings"],
                               show_error=True, ssr_mode=False, **page_options())  # fmt: skip


def serve(
    home: str | Path | None = None,
    db_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    samples: bool = True,
    cors_origins: Sequence[str] | None = None,
    max_upload_bytes: int | None = None,
    log_level: str = "info",
    ui: bool = True,
    out: TextIO | None = None,
    mode: str = "embedded",
    blob_dir: str | Path | None = None,
    catch_up_interval: float = 0.5,
    blobs_url: str | None = None,
) -> int:
    """Run the API (and the web UI at ``/ui`` unless ``ui=False``) until interrupted. Prints the
    URL and where the admin token is."""
    import uvicorn

    from ui.api import DEFAULT_MAX_UPLOAD_BYTES, create_app

    out = out or sys.stdout
    # Embedded: the bundled ingestion runs as a job after the port opens. Shared: jobs go to the
    # queue's workers, so it runs here first (deploy-local does it before starting any replica).
    prep = prepare(home, db_url, samples=samples, background=mode != "shared", mode=mode, blob_dir=blob_dir,
                   catch_up_interval=catch_up_interval, blobs_url=blobs_url)  # fmt: skip
    app = create_app(prep.service, admin_token=prep.token, cors_origins=cors_origins,
                     max_upload_bytes=max_upload_bytes or DEFAULT_MAX_UPLOAD_BYTES)  # fmt: skip
    if ui:
        app = mount_ui(app, prep.service, prep.token, max_upload_bytes=max_upload_bytes or DEFAULT_MAX_UPLOAD_BYTES)
    shown = f"[{host}]" if ":" in host else host
    print(f"loradex: {prep.service.health().adapters} adapters, data dir {prep.service.home}", file=out)
    if prep.samples is not None:
        print(bundled_message(prep), file=out)
    job = start_bundled_ingest(app, prep, out)  # the port opens now; the bundled adapters arrive meanwhile
    if job is not None:
        print(f"ingesting the bundled adapters in the background (job {job}); /health says 'starting' until "
              "they are in", file=out)  # fmt: skip
    if mode == "shared":
        print(f"shared mode: following the change log of {prep.service.database}", file=out)
    page = f"web UI http://{shown}:{port}{UI_PATH}/, " if ui else ""
    print(f"serving http://{shown}:{port}/  ({page}API docs /docs, schema /openapi.json)", file=out)
    where = f"{prep.token_path} (mode 0600)" if prep.token_path else f"${TOKEN_ENV}"
    print(f"admin token: {where}", file=out)
    if host not in LOOPBACK:
        print(f"warning: bound to {host}: the API is reachable from other machines", file=out)
    out.flush()
    uvicorn.run(app, host=host, port=port, log_level=log_level)
    return 0


class BackgroundServer:
    """uvicorn serving ``app`` in a daemon thread on ``host`` and a free port; a context manager."""

    def __init__(self, app: Any, host: str = DEFAULT_HOST, port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
