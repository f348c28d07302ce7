"""Suite ``retrieval`` (quality on the zoos) and the zoo weight-encoder trainer.

``python -m benchmarks.retrieval train-encoder text|image`` trains the ``zoo-text`` /
``zoo-image`` weight encoder through the registry (``train_from_registry``) on the zoo's
*training* tasks and training paraphrases only, and writes it to
``encoders/weight/checkpoints/zoo-<kind>/`` (bundled). Its defaults are the bundled encoders'
recipe (``BUNDLED_RECIPE``): 100 epochs, no validation split, a query head of width 256 whose
search query keeps half the prompt as encoded, trained on both query forms. Training is
deterministic on CPU: the command rewrites the bundled checkpoint bit for bit. The checkpoint also
records which adapters it was trained on (``encoders.weight.trained``; ``… record-training text|image``
writes that alone for a checkpoint trained before it was recorded).

For each built zoo, the suite ingests it into a fresh registry through ``LocalService`` and asks it, for
every query, the rank of the first adapter of the query's task, in modes weights / text /
hybrid, plus a random ranking. Query sets: paraphrases of training tasks that were held out
of encoder training, and held-out tasks (never trained on); then, per voice of
``retrieval_voices.json`` (keywords, everyday wording, jargon, long requests: other words than the
paraphrases'), its queries on training tasks and on held-out tasks, named ``VOICE/training tasks``
and ``VOICE/held-out tasks``. The file's ``held_out_voice`` is used for no tuning choice. A second
registry holds the same adapters with their descriptions removed (weights are all there is).
The described registry fits its text map (``LocalService.train_text_map``) on the zoo's training
texts (``benchmarks.zoo.training_texts``: training tasks, training paraphrases), as a fresh start of
the service does with the texts the zoo sets declare; ``--no-text-map`` keeps plain cosines;
``--tune-text`` also fine-tunes the text encoder with it (``encoders.registry_text_tune``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from encoders.weight import BUNDLED  # the bundled checkpoint folders, one per family
from encoders.weight.config import QUERY_HEAD_RECIPE, RAW_QUERY_WEIGHT

REPO = Path(__file__).resolve().parents[1]
ZOO_TEXT = REPO / "benchmarks" / "zoo" / "text"
ZOO_IMAGE = REPO / "benchmarks" / "zoo" / "image"
ZOOS = {"text": ZOO_TEXT, "image": ZOO_IMAGE}
VOICES = REPO / "benchmarks" / "retrieval_voices.json"  # queries in other voices than the paraphrases
# safetensors metadata keys the registry reads as a name or as descriptive text
TEXT_KEYS = ("modelspec.title", "modelspec.description", "modelspec.tags", "modelspec.trigger_phrase",
             "ss_output_name", "title", "name")  # fmt: skip
SIDECARS = ("description.txt", "README.md")
# how the bundled zoo encoders were trained (``python -m benchmarks.retrieval train-encoder text|image``)
BUNDLED_RECIPE: dict[str, Any] = {
    "epochs": 100,
    "val_fraction": 0.0,
    "model_config": {"query_hidden": 256, **QUERY_HEAD_RECIPE},
    "raw_query_weight": RAW_QUERY_WEIGHT,
}


def zoo_family(manifest: dict[str, Any]) -> str:
    """The registry base family of a zoo's adapters (``zoo-text``, ``zoo-image``)."""
    return f"zoo-{manifest['kind']}"


def train_zoo_encoder(zoo: Path = ZOO_TEXT, family: str | None = None, *, epochs: int = 300,
                      out: Path | None = None, val_fraction: float = 0.15, seed: int = 0,
                      model_config: dict[str, Any] | None = None, lr: float = 2e-3,
                      val_paraphrases: int = 0, raw_query_weight: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """Train the zoo's weight encoder via a scratch registry and copy it to the bundled folder."""
    from tqdm import tqdm

    from benchmarks.zoo import training_texts
    from encoders.text import get_text_encoder
    from encoders.weight.registry_training import train_from_registry
    from encoders.weight.train import TrainConfig
    from registry.store import Registry

    manifest = json.loads((zoo / "manifest.json").read_text())
    family = family or zoo_family(manifest)
    out = out or BUNDLED / family
    with tempfile.TemporaryDirectory() as d:
        reg = Registry(home=d)
        reg.init()
        rep = reg.ingest([zoo / "adapters"])
        if rep.refused:
            raise RuntimeError(f"zoo adapters refused: {[r.reason for r in rep.results if r.status == 'refused']}")
        bar = tqdm(total=epochs, unit="epoch", desc=f"train {family}")

        def progress(epoch: int, total: int, m: dict[str, float]) -> None:
            bar.n = epoch
            bar.set_postfix(loss=f"{m['loss']:.3f}", r5=f"{m.get('val_recall@5', 0):.2f}")

        result = train_from_registry(
            reg, family, get_text_encoder(), texts=training_texts(manifest), only_listed=True,
            train_config=TrainConfig(epochs=epochs, val_fraction=val_fraction, seed=seed, lr=lr,
                                     val_paraphrases=val_paraphrases, raw_query_weight=raw_query_weight),
            progress=progress,
            model_config=model_config,
        )  # fmt: skip
        bar.close()
        reg.close()
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(result["path"], out)
    return result


def record_zoo_training(zoo: Path = ZOO_TEXT, out: Path | None = None) -> dict[str, Any]:
    """Write which adapters the bundled zoo encoder was trained on (``encoders.weight.trained``) into
    its checkpoint folder without retraining: the selection ``train_zoo_encoder`` trains on (the
    zoo's training tasks' adapters)."""
    from benchmarks.zoo import training_texts
    from encoders.weight.registry_training import record_training, training_selection
    from registry.store import Registry

    manifest = json.loads((zoo / "manifest.json").read_text())
    family = zoo_family(manifest)
    out = out or BUNDLED / family
    with tempfile.TemporaryDirectory() as d:
        reg = Registry(home=d)
        reg.init()
        reg.ingest([zoo / "adapters"])
        chosen = training_selection(reg, family, training_texts(manifest), only_listed=True)
        record_training(out, chosen)
        reg.close()
    return {"family": family, "adapters": len(chosen)}


def _queries(manifest: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Query sets: name → [(text, task id)]."""
    unseen_para, heldout = [], []
    for t in manifest["tasks"]:
        if t["split"] == "train":
            unseen_para += [(p["text"], t["id"]) for p in t["paraphrases"] if p["split"] == "heldout"]
        else:
            heldout += [(t["canonical"], t["id"])] + [(p["text"], t["id"]) for p in t["paraphrases"]]
    return {"unseen_paraphrases": unseen_para, "heldout_tasks": heldout, **voice_queries(manifest)}


def voice_queries(manifest: dict[str, Any], path: Path = VOICES) -> dict[str, list[tuple[str, str]]]:
    """``VOICE/training tasks`` and ``VOICE/held-out tasks`` → [(text, task id)] for the manifest's
    zoo, from ``retrieval_voices.json``; tasks the manifest lacks (a tiny zoo) are skipped."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    split = {t["id"]: t["split"] for t in manifest["tasks"]}
    out: dict[str, list[tuple[str, str]]] = {}
    for voice in data["voices"]:
        for name, want in (("training tasks", "train"), ("held-out tasks", "heldout")):
            qs = [(by_voice[voice], task) for task, by_voice in data.get(manifest["kind"], {}).items()
                  if split.get(task) == want]  # fmt: skip
            if qs:
                out[f"{voice}/{name}"] = qs
    return out


def _rank_metrics(first_ranks: list[int]) -> dict[str, float]:
    n = len(first_ranks)
    return {
        "recall@1": sum(r < 1 for r in first_ranks) / n,
        "recall@5": sum(r < 5 for r in first_ranks) / n,
        "recall@10": sum(r < 10 for r in first_ranks) / n,
        "mrr": sum(1 / (r + 1) for r in first_ranks) / n,
    }


def _strip_descriptions(src: Path, dst: Path) -> dict[str, str]:
    """Copy the zoo adapters without description files, without naming or descriptive
    safetensors metadata, under opaque folder names (weights are all that is left).
    Returns opaque name → original folder name."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    names = {}
    for i, folder in enumerate(sorted(f for f in src.iterdir() if f.is_dir())):
        opaque = f"adapter_{i:04d}"
        names[opaque] = folder.name
        (dst / opaque).mkdir(parents=True)
        for f in sorted(folder.iterdir()):
            if f.name in SIDECARS:
                continue
            if f.suffix != ".safetensors":
                shutil.copy(f, dst / opaque / f.name)
                continue
            with safe_open(str(f), "np") as fh:
                meta = {k: v for k, v in (fh.metadata() or {}).items() if k not in TEXT_KEYS}
            save_file(load_file(str(f)), str(dst / opaque / f.name), metadata=meta)
    return names


def adapter_tasks(manifest: dict[str, Any]) -> dict[str, str]:
    """Adapter folder name → task id."""
    return {a["path"].rsplit("/", 1)[-1]: t["id"] for t in manifest["tasks"] for a in t["adapters"]}


def evaluate_registry(svc: Any, queries: dict[str, list[tuple[str, str]]], modes: list[str],
                      folder_task: dict[str, str], family: str,
                      seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:  # fmt: skip
    """mode → query set → metrics, ranking the whole gallery of ``family``."""
    rows = svc.list(family=family)
    task_of = {r["id"]: folder_task[r["name"]] for r in rows}
    n = len(rows)
    out: dict[str, dict[str, dict[str, float]]] = {}
    rng = random.Random(seed)
    for mode in [*modes, "random"]:
        out[mode] = {}
        for qname, qs in queries.items():
            firsts = []
            for text, task in qs:
                if mode == "random":
                    order = list(task_of)
                    rng.shuffle(order)
                else:
                    order = [h.adapter["id"] for h in svc.search(text, n, mode=mode, family=family)]
                ranks = [i for i, a in enumerate(order) if task_of.get(a) == task]
                firsts.append(ranks[0] if ranks else n)
            out[mode][qname] = _rank_metrics(firsts)
    return out


def suite_retrieval(args: argparse.Namespace) -> dict[str, Any]:
    """Every built zoo (or only ``--zoo-dir``): one block of rows per zoo, tagged ``zoo``."""
    dirs = [Path(args.zoo_dir)] if getattr(args, "zoo_dir", None) else list(ZOOS.values())
    result: dict[str, Any] = {"zoos": {}, "rows": []}
    for zoo in dirs:
        if not (zoo / "manifest.json").is_file():
            result["zoos"][zoo.name] = {"missing": f"{zoo} has no manifest.json: python -m benchmarks.zoo build"}
            continue
        one = _suite_zoo(zoo, args)
        result["rows"] += [{"zoo": one["zoo"], **r} for r in one.pop("rows")]
        result["zoos"][one["zoo"]] = one
    if not result["rows"]:
        result["missing"] = "no zoo is built: python -m benchmarks.zoo build text|image"
    return result


def _suite_zoo(zoo: Path, args: argparse.Namespace) -> dict[str, Any]:
    from loradex.service import LocalService
    from registry.store import Registry

    manifest = json.loads((zoo / "manifest.json").read_text())
    family = zoo_family(manifest)
    queries = _queries(manifest)
    if getattr(args, "quick", False):
        queries = {k: v[:: max(1, len(v) // 20)] for k, v in queries.items()}
    result: dict[str, Any] = {
        "zoo": manifest["kind"],
        "family": family,
        "queries": {k: len(v) for k, v in queries.items()},
        "held_out_voice": json.loads(VOICES.read_text())["held_out_voice"] if VOICES.is_file() else None,
    }
    extra = getattr(args, "encoder_dir", None)  # an encoder other than the bundled one (tests, experiments)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        # ingestion throughput: bare registry vs the service (text + weight embeddings)
        t0 = time.perf_counter()
        bare = Registry(home=root / "bare")
        bare.init()
        bare.ingest([zoo / "adapters"])
        t_bare = time.perf_counter() - t0
        bare.close()
        svc = LocalService.open(root / "described")
        if extra:
            svc.add_encoder(Path(extra))
        t0 = time.perf_counter()
        rep = svc.ingest([zoo / "adapters"])
        t_embed = time.perf_counter() - t0
        n = rep.count("ingested")
        if getattr(args, "text_map", False):  # the registry's text map on the training texts (train-encoder --text)
            from benchmarks.zoo import training_texts

            t0 = time.perf_counter()
            tune = None
            if getattr(args, "tune_text", False):  # train-encoder --text --tune: a LoRA of the text encoder too
                from encoders.registry_text_tune import TuneConfig

                tune = TuneConfig()
            fitted = svc.train_text_map(training_texts(manifest), tune=tune)
            result["text_map"] = {"version": fitted["version"], "fit_and_reembed_s": time.perf_counter() - t0,
                                  **fitted["metrics"]}  # fmt: skip
        if family not in svc.weight_embedder.families:
            raise RuntimeError(
                f"no {family} weight encoder: python -m benchmarks.retrieval train-encoder {manifest['kind']}"
            )
        result["gallery"] = n
        result["ingest"] = {"adapters": n, "bare_s": t_bare, "with_embedding_s": t_embed,
                            "adapters_per_s_with_embedding": n / t_embed, "ratio_to_bare": t_embed / t_bare}  # fmt: skip
        folder_task = adapter_tasks(manifest)
        described = evaluate_registry(svc, queries, ["weights", "text", "hybrid"], folder_task, family)
        lat = []
        for text, _ in queries["unseen_paraphrases"][:100]:
            t0 = time.perf_counter()
            svc.search(text + " ", 10)  # a fresh prompt each time: no cache hit
            lat.append(time.perf_counter() - t0)
        result["search_latency_ms"] = {"p50": statistics.median(lat) * 1e3,
                                       "p99": sorted(lat)[int(0.99 * (len(lat) - 1))] * 1e3, "queries": len(lat)}  # fmt: skip
        result["encoder"] = svc.weight_embedder.families[family]
        stripped = root / "stripped"
        opaque = _strip_descriptions(zoo / "adapters", stripped)
        svc2 = LocalService.open(root / "undescribed")
        if extra:
            svc2.add_encoder(Path(extra))
        svc2.ingest([stripped])
        undescribed = evaluate_registry(
            svc2, queries, ["weights", "hybrid"], {o: folder_task[f] for o, f in opaque.items()}, family
        )
    rows = []
    for setting, res in (("described", described), ("descriptions hidden", undescribed)):
        for mode, sets in res.items():
            for qname, m in sets.items():
                rows.append({"registry": setting, "mode": mode, "queries": qname, **m})
    result["rows"] = rows
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.retrieval")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train-encoder", help="train the bundled zoo weight encoder")
    t.add_argument("zoo", choices=sorted(ZOOS))
    t.add_argument("--epochs", type=int, default=BUNDLED_RECIPE["epochs"])
    t.add_argument("--val-fraction", type=float, default=BUNDLED_RECIPE["val_fraction"])
    t.add_argument("--zoo-dir", type=Path, default=None, help="default: the committed zoo of that kind")
    t.add_argument("--out", type=Path, default=None)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--val-paraphrases", type=int, default=0, help="per task, training texts held out for selection")
    t.add_argument("--model-config", type=json.loads, default=BUNDLED_RECIPE["model_config"],
                   help='JSON, e.g. {"n_probes": 4, "d_model": 64, "query_hidden": 0}')  # fmt: skip
    t.add_argument("--raw-query-weight", type=float, default=BUNDLED_RECIPE["raw_query_weight"],
                   help="with a query head: loss weight on prompts as encoded")  # fmt: skip
    r = sub.add_parser("record-training", help="write what the bundled zoo encoder was trained on, without retraining")
    r.add_argument("zoo", choices=sorted(ZOOS))
    args = p.parse_args(argv)
    if args.command == "record-training":
        print(json.dumps(record_zoo_training(ZOOS[args.zoo])))
        return 0
    res = train_zoo_encoder(args.zoo_dir or ZOOS[args.zoo], epochs=args.epochs, out=args.out, val_fraction=args.val_fraction,
                            model_config=args.model_config, lr=args.lr, val_paraphrases=args.val_paraphrases,
                            raw_query_weight=args.raw_query_weight)  # fmt: skip
    print(json.dumps({"version": res["version"], "best": res["metrics"]["best"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
