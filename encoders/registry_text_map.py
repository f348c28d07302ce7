"""A registry's own text map (``loradex train-encoder --text``): the text signal fitted to its adapters.

Plain MiniLM cosine ranks adapters by the words a request shares with their descriptions, so a
request in other words than the description ("change every letter to the one right after it")
misses. Given several texts per adapter (its metadata text and the paraphrases of a texts file,
the same file ``train-encoder --family`` reads), ``encoders.text_map.fit_text_map`` fits a
linear map W (d, d) under which each text is nearest to its own adapter's other texts; the
text index then stores mapped metadata-text vectors and prompts are mapped before the text
search (the weight signal keeps the prompt as encoded: the query heads were trained on it).

Items are adapters (not the texts file's tasks): grouping by adapter scored better on the
training-task queries of ``benchmarks/retrieval_voices.json`` (see
``benchmarks/results/retrieval_voices_notes.md``). A map is fitted for one base text encoder
(its version is in ``config.json``) and is used only with that encoder.

The folder ``<data dir>/encoders/text/<digest>/`` holds ``text_map.safetensors`` (W) and
``config.json``; ``LocalService.add_text_map`` records it (kind ``text``) and re-embeds.
Loading a map needs numpy and safetensors only.

Mapped cosines are a stronger and differently spread signal than plain ones, so a map carries how
search should use them (``config.json`` ``"search"``, see ``search_settings``): the hybrid fusion's
signal weights and the relevance calibration of mapped text cosines (the text-only fit, each weight
encoder's weights-and-text fit, the "nothing fits" thresholds). They are written at fit time from
``MAPPED_SEARCH`` (``text_map_search.json``, chosen on the zoos' training-task queries with their
maps fitted: ``benchmarks/results/retrieval_voices_fusion.md``); a registry may replace them in its
map's ``config.json`` and record the folder again (``LocalService.add_text_map``: the same version,
since it names W only, so nothing re-embeds; the row points at the edited files, and
other replicas reload the map on their next catch-up: ``registry.replica``). A registry without a map keeps the
plain-cosine settings (``loradex.search.SIGNAL_WEIGHTS``, ``encoders/text_calibration.json``).

``tune`` (opt-in, ``train-encoder --text --tune``) adds a LoRA fine-tune of the text encoder and a
second map on it to the folder (``encoders.registry_text_tune``): the text index then holds 2d-dim
vectors whose inner products are the mean of the plain-mapped and tuned-mapped cosines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from encoders.kind_prior import fit_kind_prior, prior_problem
from encoders.registry_text_tune import TUNE_FILES, Progress, TuneConfig, tune_and_fit, tune_problem
from encoders.text import metadata_text
from encoders.text_map import TextMapConfig
from encoders.weight.registry_training import EncoderTrainingError
from registry.storage import move_into_place

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MAP_FILE = "text_map.safetensors"
MAPPED_SEARCH = Path(__file__).resolve().parent / "text_map_search.json"  # search settings for mapped cosines
# for a tuned map's mean-of-both cosines (``retrieval_fusion_sweep fit-mapped … --tuned --write``)
TUNED_SEARCH = Path(__file__).resolve().parent / "text_map_search_tuned.json"
# reg 0.01 (vs text_map's 1e-3 for generator libraries): best MRR on the voices' training-task
# queries among {1e-3, 1e-2, 3e-2, 1e-1} (retrieval_voices_notes.md). lr 0.001 (was 0.01): at 0.01 Adam
# never settles on a registry of a few adapters (loss 0.87 where 0.05 is reachable) and texts embedded
# 1e-6 apart, as other batches give, fitted maps as far apart as the map is from the identity, so search
# ranked differently from machine to machine; at 0.001 the fit converges and is the same to 1e-4; on the
# bundled sets the map moves 2% and keeps its leave-one-out top-1 (0.6865) and loss (0.854)
REGISTRY_MAP_CONFIG = TextMapConfig(lr=0.001, reg=0.01)


def text_map_version(folder: Path) -> str:
    """``tmap:<digest>`` of W, then of a tuned map's LoRA and W_t (``registry_text_tune.TUNE_FILES``):
    names the map; a new map is a new version (stored vectors re-embed)."""
    h = hashlib.sha256((Path(folder) / MAP_FILE).read_bytes())  # a plain map: the digest of W alone
    for name in TUNE_FILES:
        if (Path(folder) / name).is_file():
            h.update(name.encode() + (Path(folder) / name).read_bytes())
    return "tmap:" + h.hexdigest()[:12]


def search_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """A map's search settings: ``{"signal_weights": {"weights": …, "text": …}, "untrained_top_weights":
    {"weights": …, "text": …} (optional: text-led fusion when text's best adapter is one its weight
    encoder was not trained on, ``loradex.search.Searcher.fusion_weights``), "family_signal_weights":
    {family: {"weights": …, "text": …}} (optional: a family's own weights when text's best adapter is
    of that family and known), "precision_weight": …
    (``loradex.search.rerank_by_precision``; absent: 0, no re-ranking), "calibration":
    {"text": [a_t, b], "families": {family: {"both": [a_w, a_t, b]}}, "nothing_fits_below": …,
    "nothing_fits_text_below": …}}`` from its config, or the bundled ``MAPPED_SEARCH`` for a map
    written without them."""
    found = cfg.get("search")
    return dict(found) if isinstance(found, dict) else json.loads(_bundled_search())


@functools.cache
def _bundled_search() -> str:
    return MAPPED_SEARCH.read_text()


def load_text_map(folder: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """W (d, d) float32 and the config of a map folder; a clear error when it is not one."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
        w = load_file(str(folder / MAP_FILE))["w"]
    except (OSError, ValueError, KeyError) as e:
        raise EncoderTrainingError(f"{folder}: not a text map folder ({e})") from e
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise EncoderTrainingError(f"{folder}: text map must be square, got shape {tuple(w.shape)}")
    problem = _search_problem(cfg.get("search"))
    if problem:
        raise EncoderTrainingError(f'{folder / "config.json"}: "search" {problem}')
    problem = tune_problem(folder, cfg, int(w.shape[0]))
    if problem:
        raise EncoderTrainingError(f"{folder}: {problem}")
    return w.astype("float32"), cfg


def _search_problem(found: Any) -> str | None:
    """What is wrong with a map config's ``"search"`` (None: absent or well formed)."""
    if found is None:
        return None
    if not isinstance(found, dict):
        return "must be an object"
    weights = found.get("signal_weights", {"weights": 1.0, "text": 1.0})
    if not (isinstance(weights, dict) and all(isinstance(weights.get(k), (int, float)) and weights[k] > 0
                                              for k in ("weights", "text"))):  # fmt: skip
        return f"signal_weights must give weights and text, each > 0; got {weights!r}"
    led = found.get("untrained_top_weights", {"weights": 1.0, "text": 1.0})
    if not (isinstance(led, dict) and all(isinstance(led.get(k), (int, float)) and led[k] > 0
                                          for k in ("weights", "text"))):  # fmt: skip
        return f"untrained_top_weights must give weights and text, each > 0; got {led!r}"
    by_family = found.get("family_signal_weights", {})
    if not isinstance(by_family, dict):
        return "family_signal_weights must be an object, family → {weights, text}"
    for family, pair in by_family.items():
        if not (isinstance(pair, dict) and all(isinstance(pair.get(k), (int, float)) and pair[k] > 0
                                               for k in ("weights", "text"))):  # fmt: skip
            return f"family_signal_weights[{family!r}] must give weights and text, each > 0; got {pair!r}"
    precision = found.get("precision_weight", 0.0)
    if not (isinstance(precision, (int, float)) and not isinstance(precision, bool) and precision >= 0):
        return f"precision_weight must be a number >= 0; got {precision!r}"
    cal = found.get("calibration", {})
    if not isinstance(cal, dict) or not isinstance(cal.get("families", {}), dict):
        return "calibration must be an object with a families object"
    if "kind_prior" in found:
        problem = prior_problem(found["kind_prior"])
        if problem:
            return f"kind_prior {problem}"
    return None


def registry_texts(registry: Any, texts: dict[str, dict[str, Any]] | None = None) -> list[list[str]]:
    """Per adapter with any text: its metadata text (what the text index embeds) first, then the
    texts file's texts for it (keyed by name or sha256), without repeats."""
    return [group for _, group in registry_text_groups(registry, texts)]


def registry_text_groups(registry: Any, texts: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, list[str]]]:
    """``registry_texts`` with each group's adapter family: (family, texts)."""
    texts = texts or {}
    out = []
    for row in registry.list():
        info = registry.get(row["id"])
        extra = texts.get(info["name"]) or texts.get(info["sha256"]) or {}
        mine = [t.strip() for t in [metadata_text(info), *(extra.get("texts") or [])]]
        mine = list(dict.fromkeys(t for t in mine if t))
        if mine:
            out.append((str(info["family"]), mine))
    return out


def fit_registry_text_map(registry: Any, text_encoder: Any, *, texts: dict[str, dict[str, Any]] | None = None,
                          config: TextMapConfig | None = None, tune: TuneConfig | None = None,
                          progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Fit the registry's text map and write its folder under ``<data dir>/encoders/text/``; with
    ``tune``, also fine-tune the text encoder and fit a second map on it
    (``encoders.registry_text_tune``; ``progress(steps done, steps)`` while it trains).

    Returns ``{"version", "path", "metrics"}``. Raises ``EncoderTrainingError`` when no adapter has
    a second text (nothing to learn from: give paraphrases with a texts file) or ``tune`` cannot be
    used (a tune config that is not a ``TuneConfig``, an int8 encoder); nothing is written then."""
    import torch
    from safetensors.numpy import save_file

    from encoders.text_map import fit_text_map

    cfg = config or REGISTRY_MAP_CONFIG
    if tune is not None and not isinstance(tune, TuneConfig):
        raise EncoderTrainingError(f"tune must be a TuneConfig, got {type(tune).__name__}")
    if tune is not None and getattr(getattr(text_encoder, "config", None), "quantize", False):
        raise EncoderTrainingError("--tune fine-tunes the float text encoder; this service encodes text in int8")
    families = registry_text_groups(registry, texts)
    groups = [group for _, group in families]
    if sum(len(g) > 1 for g in groups) < 2:
        raise EncoderTrainingError(
            f"{registry.home}: a text map needs adapters with more than one text each (found "
            f"{sum(len(g) > 1 for g in groups)} of {len(groups)}); give paraphrases in a texts file (--texts FILE) "
            "or in the request's texts"
        )
    flat = [t for g in groups for t in g]
    owner = torch.tensor([i for i, g in enumerate(groups) for _ in g])  # (m,)
    emb = torch.from_numpy(text_encoder.encode(flat))  # (m, d)
    w, metrics = fit_text_map(emb, owner, cfg)
    metrics = {**metrics, "adapters": len(groups), "texts": len(flat), "config": asdict(cfg)}
    root = Path(registry.home) / "encoders" / "text"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as d:
        tmp = Path(d) / "map"
        tmp.mkdir()
        save_file({"w": w.numpy().astype("float32")}, str(tmp / MAP_FILE))  # (d, d)
        found: dict[str, Any] = {"kind": "text-map", "base": text_encoder.version, "dim": int(w.shape[0])}
        if tune is not None:

            def fit_tuned(vecs: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:  # (m, d)
                return fit_text_map(torch.from_numpy(vecs), owner, cfg)

            metrics["tune"] = tune_and_fit(tmp, text_encoder, groups, tune, fit_tuned, progress)
            found.update(tune=tune.to_dict(), index_dim=2 * int(w.shape[0]))
        search = json.loads((TUNED_SEARCH if tune is not None else MAPPED_SEARCH).read_text())
        of_family = registry.family_kinds()
        prior = fit_kind_prior(emb.numpy(), [of_family.get(f, "") for f, g in families for _ in g])
        if prior is not None:  # what kind of adapter a prompt is about, when its words do not say
            search["kind_prior"] = prior
            metrics["kind_prior"] = prior["texts"]
        written = json.dumps({**found, "metrics": metrics, "search": search}, indent=1)
        (tmp / "config.json").write_text(written)
        version = text_map_version(tmp)
        dest = move_into_place(tmp, root / version.split(":")[1])  # the same map again: kept once
        if (dest / "config.json").read_text() != written:  # same vectors, newer settings (e.g. a kind prior)
            staged = dest / f"config.json.{os.getpid()}.tmp"  # one per writer: readers see one whole file or the other
            staged.write_text(written)
            os.replace(staged, dest / "config.json")
    return {"version": version, "path": str(dest), "metrics": metrics}
