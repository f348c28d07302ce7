"""``LocalService``: the one place where the registry, the encoders (and generators, fusion) are
wired. Every surface (CLI, REST API, web UI) and the in-process user call it; ``loradex.Client``
has the same methods over HTTP (``loradex.protocol.Service``).

Constructing is cheap; ``open`` builds what was not handed in, runs the migrations and syncs the
indexes:

    svc = LocalService.open("~/.loradex")                    # or LocalService(home).setup()
    svc = LocalService.open(home, registry=reg, text_encoder=enc, weight_embedder=emb, sync=False)

``embed=False`` opens the bare registry (no encoders, no torch): listing, showing, exporting and
removing need nothing more; a later full open embeds what it missed.
"""

from __future__ import annotations

import builtins
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loradex.errors import InvalidQueryError, SearchError
from loradex.settings import env_flag
from loradex.types import (
    ComposeResult,
    EncoderInfo,
    Filters,
    GenerateResult,
    Health,
    IndexInfo,
    IngestReport,
    IngestResult,
    MergeOutcome,
    SearchResults,
    Stats,
)

if TYPE_CHECKING:  # pragma: no cover
    from loradex.previews import Previewer
    from loradex.search import Searcher
    from registry.store import Registry

MODES = ("embedded", "shared")  # one process on its data dir | replicas and workers on one database
MADE_NAME_TRIES = 20  # register_made: names chosen again when other writers commit each one first


class LocalService:
    """In-process service over one data dir / database."""

    def __init__(
        self,
        home: str | Path | None = None,
        db_url: str | None = None,
        *,
        text_model: str | None = None,
        text_int8: bool | None = None,
        index_type: str = "flat",
        embed: bool = True,
        registry: Registry | None = None,
        text_encoder: Any = None,
        weight_embedder: Any = None,
        mode: str = "embedded",
        catch_up_interval: float = 0.5,
        blob_dir: str | Path | None = None,
        blobs_url: str | None = None,
    ) -> None:
        """Cheap: remembers the settings and the ready-made parts; nothing is loaded or migrated.
        ``mode="shared"``: one of several replicas on one database; ``setup`` starts following the
        change log in the background (every ``catch_up_interval`` s, at once on PostgreSQL NOTIFY).
        ``text_int8``: the int8 text encoder (``encoders.text``, about 2.5× faster per text on a CPU but one
        text per pass, vectors within cosine 0.98 of the float ones, their own version); None reads
        ``LORADEX_TEXT_INT8`` (``1``/``true``).
        Every replica and worker of one database must agree, or each re-embeds the others' vectors."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.mode, self.catch_up_interval, self.blob_dir = mode, catch_up_interval, blob_dir
        self.blobs_url = blobs_url  # an fsspec URL for the blobs (``blob_dir`` is then their local cache)
        self._follower: Any = None
        self._home, self._db_url = home, db_url
        self.text_model, self.index_type, self.embed = text_model, index_type, embed
        self.text_int8 = env_flag("LORADEX_TEXT_INT8") if text_int8 is None else text_int8
        self._registry = registry
        self.text_encoder = text_encoder
        self.weight_embedder = weight_embedder
        self._previews: Previewer | None = None
        self._searcher: Searcher | None = None
        self.fresh: bool | None = None  # set by setup(sync=True): the database had no schema before

    @classmethod
    def open(cls, home: str | Path | None = None, db_url: str | None = None, *, sync: bool = True,
             **kw: Any) -> LocalService:  # fmt: skip
        """``LocalService(home, db_url, **kw).setup(sync=sync)``."""
        return cls(home, db_url, **kw).setup(sync=sync)

    def setup(self, *, sync: bool = True) -> LocalService:
        """Build the parts not handed in, migrate the database to head and (``sync``) embed what is
        missing and rebuild stale indexes."""
        if self.embed and self.text_encoder is None:
            from encoders.text import get_text_encoder

            self.text_encoder = get_text_encoder(self.text_model, quantize=self.text_int8)
        if self.embed and self.weight_embedder is None:
            from encoders.weight.embedder import WeightEmbedder

            self.weight_embedder = WeightEmbedder()
        if self._registry is None:
            from registry.store import Registry

            embedders: list[Any] = []
            if self.embed:
                from encoders.text import MetadataTextEmbedder

                embedders = [MetadataTextEmbedder(self.text_encoder), self.weight_embedder]
            self._registry = Registry(self._home, self._db_url, embedders=embedders, index_type=self.index_type,
                                      blob_dir=self.blob_dir, blobs_url=self.blobs_url)  # fmt: skip
        reg = self._registry
        if hasattr(self.weight_embedder, "set_sources"):
            self.weight_embedder.set_sources(lambda: [Path(e["path"]) for e in reg.encoders("weights")])
        text_sources = getattr(reg.embedders.get("text"), "set_sources", None)
        if callable(text_sources):  # the registry's text maps (``add_text_map``)
            text_sources(lambda: [Path(e["path"]) for e in reg.encoders("text")])
        if sync:
            self.fresh = not reg.initialized
            reg.init()
            if self.mode == "shared":
                self.follow()
        return self

    def follow(self, interval: float | None = None) -> Any:
        """Follow the change log on a background thread (``registry.replica.Follower``), so that what
        other replicas ingest and remove shows up in this one's indexes; idempotent."""
        if self._follower is None:
            from registry.replica import Follower

            self._follower = Follower(self.registry, interval or self.catch_up_interval).start()
        return self._follower

    def catch_up(self) -> Any:
        """Apply the change log now (``registry.replica.CatchUp``): what other replicas changed."""
        return self.registry.catch_up()

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("the service is not open: use LocalService.open(home) or svc.setup()")
        return self._registry

    @property
    def home(self) -> Path:
        """The data dir (database, blobs, indexes, caches, uploads)."""
        return Path(self.registry.home)

    @property
    def uploads(self) -> Path:
        """Where uploads are staged for an ingest job: the data dir, or in shared mode beside the
        blobs (a worker on another machine reads them there)."""
        if self.mode == "shared":
            return self.registry.blobs.root / ".uploads"
        return self.home / "uploads"

    @property
    def database(self) -> str:
        """The database URL, password hidden."""
        return str(self.registry.engine.url.render_as_string(hide_password=True))

    @property
    def previews(self) -> Previewer:
        if self._previews is None:
            from loradex.previews import Previewer

            self._previews = Previewer(self.home / "cache" / "previews")
        return self._previews

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            from loradex.search import Searcher

            self._searcher = Searcher(self.registry, self.text_encoder, self.weight_embedder)
        return self._searcher

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        if self._registry is not None:
            self._registry.close()

    # -- registry ----------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        origin: str = "ingested",
        lineage: builtins.list[dict[str, Any]] | None = None,
        workers: int | None = None,
        progress: Callable[[IngestResult], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Files and folders into the registry (see ``Registry.ingest``); ``lineage`` entries
        ``{"parent": id, "weight": float, "method": str}`` link each new adapter to its parents."""
        return self.registry.ingest(paths, workers=workers, progress=progress, on_total=on_total, origin=origin,
                                    lineage=lineage)  # fmt: skip

    @staticmethod
    def sort_keys() -> tuple[str, ...]:
        """The orders ``list`` accepts (each also with "-" first, descending)."""
        from registry.crud import SORT_KEYS

        return tuple(SORT_KEYS)

    def list(self, filters: Filters | None = None, *, limit: int | None = None, offset: int = 0, sort: str = "id",
             **kw: Any) -> builtins.list[dict[str, Any]]:  # fmt: skip
        """Adapter summaries ordered by ``sort`` (id, name, family, format, origin, created, size,
        params; "-" first for descending); ``kw``: ``family``, ``format``, ``origin``, ``tag``,
        ``tags`` (``Filters.of``). A family, format or origin the registry does not have is an
        ``InvalidQueryError`` that lists the ones it has."""
        if (limit is not None and limit < 1) or offset < 0:  # the REST API's bounds, for every surface
            raise InvalidQueryError(f"limit must be ≥ 1 and offset ≥ 0, got limit {limit}, offset {offset}")
        f = Filters.of(filters, **kw)
        self.registry.check_filters(f)
        return self.registry.list(f, limit=limit, offset=offset, sort=sort)

    def count(self, filters: Filters | None = None, **kw: Any) -> int:
        """How many adapters ``list`` would return without a limit."""
        f = Filters.of(filters, **kw)
        self.registry.check_filters(f)
        return self.registry.count(f)

    def get(self, ref: str | int) -> dict[str, Any]:
        """Adapter detail (modules, metadata, lineage) by id, sha256 (prefix) or exact name."""
        return self.registry.get(ref)

    def usage(self, ref: str | int) -> dict[str, str]:
        """export format → a snippet that loads the downloaded adapter (diffusers, PEFT, kohya tools)."""
        from loradex.usage import usage_snippets

        return usage_snippets(self.registry.get(ref))

    def remove(self, ref: str | int) -> dict[str, Any]:
        return self.registry.remove(ref)

    def export(self, ref: str | int, fmt: str, out_dir: str | Path) -> builtins.list[Path]:
        return self.registry.export(ref, fmt, out_dir)

    def load(self, ref: str | int) -> Any:
        """The canonical ``LoraAdapter`` of a registered adapter."""
        return self.registry.load(ref)

    def preview(self, ref: str | int) -> bytes:
        """PNG: the adapter rendered through its family's base pipeline (bottom row) under the bare
        base (top row). ``PreviewUnavailableError`` when the family has no pipeline."""
        return self.previews.png(self.registry, self.registry.get(ref))

    def try_it(self, ref: str | int, inputs: Sequence[str]) -> dict[str, Any]:
        """Run the adapter on your own inputs beside the bare base (``loradex.try_it``): text rows
        for language families, a PNG (base row, adapter row) for image families with a pipeline."""
        from loradex.try_it import try_adapter

        return try_adapter(self, ref, inputs)

    def has_preview(self, family: str) -> bool:
        return self.previews.available(family)

    def health(self) -> Health:
        """What ``GET /health`` answers."""
        from loradex import __version__

        return Health("ok", __version__, self.registry.engine.dialect.name, self.registry.count())

    def text_map(self) -> dict[str, Any] | None:
        """The registry's text map in use: ``{"version", "tuned"}`` (tuned: it has a fine-tuned text
        encoder side, ``encoders.registry_text_tune``); None while text search reads plain cosines."""
        embedder = self.registry.embedders.get("text")
        version = getattr(embedder, "map_version", None)
        return None if version is None else {"version": version, "tuned": bool(getattr(embedder, "tuned", False))}

    def stats(self) -> Stats:
        """Counts by family / format / origin, index sizes, encoders."""
        rows = self.registry.list()
        indexes = [
            IndexInfo(kind, len(ix), ix.dim, ix.version, ix.index_type)
            for kind, ix in sorted(self.registry.indexes.items())
        ]
        encoders = []
        if self.text_encoder is not None:
            mapped = self.text_map()
            encoders.append(EncoderInfo("text", None, self.text_encoder.version, "bundled"))
            if mapped:
                encoders.append(EncoderInfo("text", None, mapped["version"], "trained"))
        if self.weight_embedder is not None:
            trained = {e["version"] for e in self.registry.encoders("weights")}
            encoders += [
                EncoderInfo("weights", fam, ver, "trained" if ver in trained else "bundled")
                for fam, ver in sorted(self.weight_embedder.families.items())
            ]
        return Stats(
            adapters=len(rows),
            families=_counts(r["family"] for r in rows),
            formats=_counts(r["format"] for r in rows),
            origins=_counts(r["origin"] for r in rows),
            indexes=indexes,
            encoders=encoders,
        )

    # -- search ------------------------------------------------------------------------
    def search(self, prompt: str, k: int = 10, *, mode: str = "hybrid", filters: Filters | None = None,
               examples: Sequence[tuple[str, str]] | None = None, images: Sequence[bytes | str | Path] | None = None,
               progress: Callable[[int, int], None] | None = None, **kw: Any) -> SearchResults:  # fmt: skip
        """Prompt → top-k adapters with a per-signal score breakdown (``loradex.search.Searcher``);
        ``kw``: ``family``, ``format``, ``origin``, ``tags`` refine ``filters``. With ``examples``
        (input → output pairs) the candidates are run on the family's base and ranked by how many
        examples they reproduce (``loradex.verify``); with ``images`` (example pictures: bytes or
        paths) an image family's candidates are rendered and ranked by how much their pictures look
        like them (``loradex.verify_images``; ``progress(done, total)`` as they render). The prompt
        may then be empty."""
        f = Filters.of(filters, **kw)
        try:
            self.registry.check_filters(f)
        except InvalidQueryError as e:  # every refusal of a search is a SearchError
            raise SearchError(str(e)) from None
        if k < 1:
            raise SearchError(f"k must be ≥ 1, got {k}")
        if examples and images:
            raise SearchError("give examples (INPUT=>OUTPUT) or example pictures, not both")
        if images:
            from loradex.verify_images import search_by_image

            return search_by_image(self, prompt or "", list(images), k, f, progress)
        if examples:
            from loradex.verify import search_by_example

            pairs = [(str(i), str(o)) for i, o in examples]
            return search_by_example(self, prompt or "", pairs, k, f)
        written, words = self._by_written_examples(prompt, k, f) if mode == "hybrid" else (None, prompt)
        if written is not None:
            return written
        hits = self.searcher.search(words, k, mode, f)
        if words != prompt and hits.read is None:
            hits.read = words  # the samples were left out: say what was searched for
        return hits

    def _by_written_examples(self, prompt: str, k: int, f: Filters) -> tuple[SearchResults | None, str]:
        """A request with examples written in it ("reverse it: hello -> olleh", ``loradex.examples.examples_in``)
        is searched by them (``loradex.verify``) when a candidate reproduces at least one: (hits, prompt).
        Otherwise (None, the text the ordinary search should read): the prompt when it holds none or
        none is reproduced (they were not examples after all, or no adapter does them); when they
        cannot be run (no single language-model family to run them on, inputs its base cannot read,
        adapters the registered base cannot take: any ``RegistryError``), the words without them if
        every example is set apart by an arrow or quotes ("shouting mode: 'Hello there' -> 'HELLO
        THERE'": the samples' own words would only mislead), else the prompt. ``read`` lists the examples used."""
        from loradex.examples import examples_in, examples_set_apart, words_without_examples

        found = examples_in(prompt or "")
        if not found:
            return None, prompt
        from loradex.verify import search_by_example
        from registry.errors import RegistryError

        words = words_without_examples(prompt)  # they rank candidates that reproduce as many examples
        try:
            hits = search_by_example(self, words, found, k, f)
            if hits.nothing_fits and len(found) > 1:  # the shortest pair screened: it may be words misread
                hits = search_by_example(self, words, found, k, f, screen=False)
        except RegistryError:  # cannot be run here (no base for them, adapters of another shape …)
            return None, words if examples_set_apart(prompt) else prompt
        if hits.nothing_fits or not hits:
            return None, prompt
        hits.read = "examples: " + "; ".join(f"{i} → {o}" for i, o in found)
        return hits, prompt

    def similar(self, ref: str | int, k: int = 8) -> builtins.list[dict[str, Any]]:
        """Nearest adapters by this adapter's own stored embeddings (weights and text), best first:
        ``{"adapter": summary, "score": mean cosine, "scores": {kind: cosine | None}}``."""
        return self.searcher.similar(self.registry.get(ref), k)

    def embed_prompt(self, prompt: str) -> Any:
        """The prompt as search embeds it (``readable_for``): a normalized (dim,) vector (LRU-cached)."""
        from loradex.reading import readable_for

        return self.text_encoder.encode([readable_for(self.text_encoder, prompt, self.searcher.speller())])[0]

    def index_state(self) -> str:
        """Changes whenever an index's encoder version or membership changes (a cache key)."""
        import hashlib

        h = hashlib.sha256()
        for kind, index in sorted(self.registry.indexes.items()):
            h.update(f"{kind}:{index.version}:".encode())
            h.update(",".join(map(str, sorted(index.ids))).encode())
        return h.hexdigest()

    def embeddings(self) -> builtins.list[tuple[int, str, Any]]:
        """(adapter id, kind, vector) of every current embedding, by kind then id."""
        return self.registry.current_embeddings()

    # -- encoders ----------------------------------------------------------------------
    def encoders(self) -> builtins.list[dict[str, Any]]:
        """Trained encoder checkpoints recorded in the registry, oldest first."""
        return self.registry.encoders()

    def train_encoder(self, family: str, **kw: Any) -> dict[str, Any]:
        """Train a weight encoder for ``family`` on the registry's described adapters, record it,
        and re-embed (see ``encoders.weight.registry_training``)."""
        from encoders.weight.registry_training import train_from_registry

        result = train_from_registry(self.registry, family, self.text_encoder, **kw)
        self.add_encoder(Path(result["path"]), result["metrics"]["best"])
        return result

    def add_encoder(self, folder: Path, metrics: dict[str, Any] | None = None) -> str:
        """Record a weight-encoder checkpoint folder in the registry, load it and re-embed; its version."""
        from encoders.weight.model import checkpoint_version

        version = checkpoint_version(folder)
        self._swap_in("weights", version.split(":")[1], version, folder, metrics or {}, self.weight_embedder)
        return version

    def train_text_map(self, texts: dict[str, dict[str, Any]] | None = None, config: Any = None, *,
                       tune: Any = None, progress: Any = None) -> dict[str, Any]:  # fmt: skip
        """Fit the registry's text map on its adapters' metadata texts and ``texts`` (a texts file's
        paraphrases, ``load_texts_file``), record it and re-embed the text index
        (``encoders.registry_text_map``): ``{"version", "path", "metrics"}``. ``tune``: a
        ``encoders.registry_text_tune.TuneConfig`` (or its fields as a dict) to fine-tune the text
        encoder too (``progress(steps done, steps)`` while it trains); None: a linear map only."""
        from encoders.registry_text_map import fit_registry_text_map
        from encoders.registry_text_tune import TuneConfig
        from encoders.weight.registry_training import EncoderTrainingError

        if isinstance(tune, dict):
            try:
                tune = TuneConfig.from_dict(tune)
            except (TypeError, ValueError) as e:
                raise EncoderTrainingError(str(e)) from None
        result = fit_registry_text_map(self.registry, self.text_encoder, texts=texts, config=config, tune=tune,
                                       progress=progress)  # fmt: skip
        self.add_text_map(Path(result["path"]), result["metrics"])
        return result

    def add_text_map(self, folder: Path, metrics: dict[str, Any] | None = None) -> str:
        """Record a text map folder in the registry (kind ``text``), load it and re-embed; its version."""
        from encoders.registry_text_map import load_text_map, text_map_version
        from encoders.weight.registry_training import EncoderTrainingError

        _, cfg = load_text_map(folder)  # refuses a folder that is not a map before anything is recorded
        if self.text_encoder is not None and cfg.get("base") != self.text_encoder.version:
            raise EncoderTrainingError(f"{folder}: text map fitted for encoder {cfg.get('base')}, this service uses "
                              f"{self.text_encoder.version}")  # fmt: skip
        version = text_map_version(folder)
        self._swap_in(
            "text", "*", version, folder, metrics or cfg.get("metrics") or {}, self.registry.embedders.get("text")
        )
        return version

    def _swap_in(self, kind: str, family: str, version: str, folder: Path, metrics: dict[str, Any],
                 embedder: Any) -> None:  # fmt: skip
        """Record ``version`` of a ``kind`` encoder, reload ``embedder`` and re-embed, under the
        registry's swap lock (``registry.swap``): searches wait out the change instead of mixing versions."""
        with self.registry.swap.writing():
            self.registry.record_encoder(kind, family, version, folder, metrics)
            if callable(getattr(embedder, "reload", None)):
                embedder.reload()
            self.registry.sync_indexes()

    def register_made(self, adapter: Any, name: str, *, origin: str,
                      lineage: builtins.list[dict[str, Any]]) -> IngestResult:  # fmt: skip
        """Register an adapter this service made (generated, merged): written in its own format with
        its description as a sidecar, ingested with ``origin`` and ``lineage``, and the staged files
        removed. A refusal raises ``RegistryError`` naming the reason.

        Names are references, so the new row is named ``name``, or ``name-2``, ``name-3`` … when that
        already resolves to an adapter; header titles inherited from a parent (a generator's expert,
        a merge's first input) are dropped so they cannot name it instead. The name is not written
        into the file: the same request still gives the same bytes (and is reported a duplicate).

        The free name is chosen before the insert, so two writers (workers, replicas) may choose the
        same one at once: made adapters' names are unique in the database (``uq_adapters_made_name``),
        the later insert fails with ``NameTakenError`` and this chooses again (the winner's row is
        committed by then), up to ``MADE_NAME_TRIES`` times."""
        from registry.errors import NameTakenError, RegistryError

        for _ in range(MADE_NAME_TRIES):
            try:
                res = self._register_named(adapter, self._free_name(name), origin=origin, lineage=lineage)
                break
            except NameTakenError:
                continue
        else:
            raise RegistryError(f"the {origin} adapter could not be registered: no free name after {name!r} "
                                f"in {MADE_NAME_TRIES} tries (other writers took each one first)")  # fmt: skip
        if res.status == "refused" or res.adapter_id is None:
            raise RegistryError(f"the {origin} adapter could not be registered: {res.reason}")
        return res

    def _free_name(self, stem: str) -> str:
        """``stem``, or ``stem-2``, ``stem-3`` … : the first that names no adapter yet."""
        from registry.errors import AdapterNotFoundError, RegistryError

        name = stem
        for n in itertools.count(2):
            try:
                self.registry.get(name)
            except AdapterNotFoundError:
                return name
            except RegistryError:
                pass  # a name several adapters already share (ambiguous): taken
            name = f"{stem}-{n}"
        raise AssertionError("unreachable")

    def _register_named(self, adapter: Any, name: str, *, origin: str,
                        lineage: builtins.list[dict[str, Any]]) -> IngestResult:  # fmt: skip
        """Write ``adapter`` into a staging folder called ``name`` (the folder names the row: header titles
        are dropped) and ingest it."""
        from loradex.job_store import staging_folder
        from registry.formats import write_adapter
        from registry.ingest import NAME_KEYS

        adapter.metadata = {k: v for k, v in adapter.metadata.items() if k not in NAME_KEYS}
        with staging_folder(self.home / "staging", f".{origin}-") as tmp:  # a killed writer's: clean_staging
            folder = tmp / name  # every writer's weight file has a generic name
            folder.mkdir()
            files = write_adapter(adapter, adapter.format, folder)
            (folder / "description.txt").write_text(f"{adapter.description}\n")  # the sidecar ingestion reads
            target = folder if (folder / "adapter_config.json").is_file() else files[0]
            (res,) = self.ingest([target], origin=origin, lineage=lineage).results
        return res

    def fsck(self, *, repair: bool = False) -> Any:
        """``registry.fsck.FsckReport``: rows vs blobs vs embeddings vs index entries (``repair``: fix
        orphan blobs, stale temporary folders, stale embeddings and index drift)."""
        return self.registry.fsck(repair=repair)

    def job_runner(self) -> Any:
        """What runs this server's jobs: in shared mode on PostgreSQL the queue (``loradex.queue.
        QueueRunner``: ``loradex worker`` processes run them); otherwise a ``JobRunner`` thread saving
        to the jobs table, which in embedded mode first fails the jobs an earlier process left
        unfinished and removes their staged uploads (in shared mode they may be another replica's).
        Either way the staging folders of merged / generated adapters left by a killed process go."""
        from loradex.jobs import JobRunner

        if self.mode == "shared" and self.registry.engine.dialect.name == "postgresql":
            from loradex.queue import QueueRunner

            return QueueRunner(self)
        from loradex.job_store import clean_staging

        clean_staging(self.home / "staging")  # made adapters a killed process was writing (any mode: flocked)
        store = self.job_store()
        if self.mode == "embedded":
            store.recover(self.uploads)
        return JobRunner(store=store)

    def job_store(self) -> Any:
        """``loradex.job_store.JobStore`` over this registry's database (jobs that survive a restart)."""
        from loradex.job_store import JobStore

        return JobStore(self.registry)

    # -- generation (loradex.generation) -----------------------------------------------------
    def generators(self) -> dict[str, dict[str, dict[str, Any]]]:
        """family → method → {path, version, source: bundled | trained, metrics}."""
        from loradex import generation

        return generation.catalog(self)

    def generate(self, description: str, *, family: str, method: str | None = None,
                 examples: Sequence[tuple[str, str]] | None = None, seed: int = 0, rank: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> GenerateResult:  # fmt: skip
        """A new adapter for ``description`` (and input → output ``examples``) from ``family``'s
        generator, written in the family's native format and registered with its lineage."""
        from loradex import generation

        return generation.generate(self, description, family=family, method=method,
                                   examples=builtins.list(examples) if examples else None, seed=seed,
                                   rank=rank, progress=progress)  # fmt: skip

    def train_generator(self, family: str, method: str, **kw: Any) -> dict[str, Any]:
        """Train and record ``method`` for ``family`` on the registry's described adapters."""
        from loradex import generation

        return generation.train(self, family, method, **kw)

    # -- composition (loradex.composition) ---------------------------------------------------
    def merge(self, refs: Sequence[str | int], weights: Sequence[float] | None = None, *, strategy: str = "cat",
              rank: int | None = None, seed: int = 0, name: str | None = None,
              options: dict[str, Any] | None = None,
              progress: Callable[[int, int], None] | None = None) -> MergeOutcome:  # fmt: skip
        """Merge registered adapters in weight space into a new registered adapter (``origin=merged``).
        ``options``: the strategy's options (``density`` …; ``zip``: ``steps``, ``lr``, ``prompts`` …).
        ``progress(done, total)``: a learned strategy's fit (``zip``); the others report nothing."""
        from loradex import composition

        return composition.merge(self, builtins.list(refs), None if weights is None else builtins.list(weights),
                                 strategy=strategy, rank=rank, seed=seed, name=name, options=options,
                                 progress=progress)  # fmt: skip

    def compose(self, prompt: str, *, adapters: Sequence[str | int] | None = None, auto: int | None = None,
                strategy: str = "auto", weights: Sequence[float] | None = None,
                inputs: Sequence[str] | None = None, family: str | None = None, seed: int = 0, n_images: int = 1,
                steps: int | None = None, options: dict[str, Any] | None = None,
                progress: Any = None) -> ComposeResult:  # fmt: skip
        """Render (diffusion) or run ``inputs`` (language) with several adapters composed at run time.
        ``options``: a ``merge:S`` strategy's merge options (``merge:zip``: ``steps``, ``samples`` …).
        ``progress(done, total)``: images: the denoising steps, after a ``merge:zip`` fit's units."""
        from loradex import composition

        return composition.compose(
            self, prompt, refs=builtins.list(adapters) if adapters else None, auto=auto, strategy=strategy,
            weights=None if weights is None else builtins.list(weights), inputs=builtins.list(inputs or []),
            family=family, seed=seed, n_images=n_images, steps=steps, options=options, progress=progress,
        )  # fmt: skip


def _counts(values: Any) -> dict[str, int]:
    return dict(sorted(Counter(str(v) for v in values).items()))
