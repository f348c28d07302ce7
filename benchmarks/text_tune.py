"""Would fine-tuning the bundled text encoder help the text signal? (issue 15, "a stronger text side")

A measurement, not a product path: the service ships the per-registry linear text map
(``encoders.registry_text_map``); this script asks what a contrastive fine-tune of MiniLM itself on the
same texts adds. Per zoo, each adapter's metadata text (``encoders.text.metadata_text`` of its name and
``description.txt``) is a document; the queries are ``retrieval_voices.json``'s, every voice, training
and held-out tasks apart; the score is MRR over *tasks* (seed variants of a task count once) of the text
cosine alone (no weights signal, no calibration). Rows:

- ``plain``: the bundled MiniLM; ``plain+map``: with the text map fitted as a registry fits it
  (``fit_text_map``, ``REGISTRY_MAP_CONFIG``, on the zoos' training texts, one group per adapter);
- ``tuned``: MiniLM after an in-batch contrastive fine-tune (``encoders.registry_text_tune.finetune``,
  the product's loop: symmetric InfoNCE, scale 20, one text per task in a batch) on the training tasks' canonical text + training paraphrases + adapter text,
  LoRA (PEFT, rank ``--rank`` on query/key/value/dense) or the full model (``--full``);
  ``tuned+map``: the map refitted on the tuned encoder;
- ``mean(tuned+map, plain+map)``: the mean of the two cosines (an ensemble of the two text sides);
- ``wise a``: the LoRA scaled by ``a`` (weight-space interpolation towards the plain model) + map.

``python -m benchmarks.text_tune --seed 0 [--epochs 1 --lr 5e-4 --rank 8 | --full --lr 2e-5]``
(CPU: ~1.5–5 min per fine-tune on the 2-core machine, depending on load). Prints one line per row:
per voice/split MRR, then the mean over the tuning voices (keywords, everyday, jargon) for training
and held-out tasks; ``--out FILE`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
TUNING_VOICES = ("keywords", "everyday", "jargon")
Encode = Callable[[Sequence[str]], np.ndarray]
Member = tuple[Encode, "np.ndarray | None"]


def zoo(kind: str) -> tuple[list[str], list[str], dict[str, str], dict[str, list[str]]]:
    """Documents (adapter metadata texts), each document's task, each task's split, and the training
    tasks' texts (canonical + training paraphrases)."""
    from encoders.text import metadata_text

    m = json.loads((ROOT / "zoo" / kind / "manifest.json").read_text())
    docs, owner, split, train = [], [], {}, {}
    for t in m["tasks"]:
        split[t["id"]] = t["split"]
        for a in t["adapters"]:
            name = a["path"].rsplit("/", 1)[-1]
            d = ROOT / "zoo" / kind / a["path"] / "description.txt"
            docs.append(metadata_text({"name": name, "description": d.read_text().strip() if d.is_file() else ""}))
            owner.append(t["id"])
        if t["split"] == "train":
            train[t["id"]] = [t["canonical"]] + [p["text"] for p in t["paraphrases"] if p["split"] == "train"]
    return docs, owner, split, train


def _unit(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    y = x @ w.T if w is not None else x  # (n, d)
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def evaluate(zoos: dict[str, Any], voices: dict[str, Any], members: list[Member]) -> dict[str, tuple[float, int]]:
    """``voice/split`` → (MRR over tasks, queries), pooled over the zoos; the cosine is the mean over
    ``members`` (encoder, map or None)."""
    acc: dict[str, list[float]] = {}
    for kind, (docs, owner, split, _) in zoos.items():
        docs_m = [_unit(enc(docs), w) for enc, w in members]
        for voice in voices["voices"]:
            for sp in ("train", "heldout"):
                qs = [(tid, v[voice]) for tid, v in voices[kind].items() if split[tid] == sp and voice in v]
                if not qs:
                    continue
                sims = sum(_unit(enc([q for _, q in qs]), w) @ d.T for (enc, w), d in zip(members, docs_m, strict=True))
                for i, (tid, _) in enumerate(qs):
                    order = np.argsort(-sims[i])
                    first = next(r for r, j in enumerate(order) if owner[j] == tid)
                    before = len({owner[j] for j in order[:first]})  # distinct tasks ranked above
                    acc.setdefault(f"{voice}/{sp}", []).append(1.0 / (before + 1))
    return {k: (float(np.mean(v)), len(v)) for k, v in acc.items()}


def summary(rows: dict[str, tuple[float, int]]) -> dict[str, float]:
    out = {k: round(v[0], 3) for k, v in sorted(rows.items())}
    for sp in ("train", "heldout"):
        out[f"tuning voices/{sp}"] = round(float(np.mean([rows[f"{v}/{sp}"][0] for v in TUNING_VOICES])), 3)
    return out


def fit_map(zoos: dict[str, Any], enc: Encode) -> np.ndarray:
    """The registry text map on the zoos' training texts (one group per training adapter)."""
    import torch

    from encoders.registry_text_map import REGISTRY_MAP_CONFIG
    from encoders.text_map import fit_text_map

    embs, own = [], []
    for docs, owner, _, train in zoos.values():
        for doc, tid in zip(docs, owner, strict=True):
            if tid in train:
                texts = [doc, *train[tid]]
                own += [len(embs)] * len(texts)
                embs.append(enc(texts))
    w, _ = fit_text_map(torch.from_numpy(np.concatenate(embs)), torch.tensor(own), REGISTRY_MAP_CONFIG)
    return w.numpy()


def groups(zoos: dict[str, Any]) -> list[list[str]]:
    """Per training task: its first adapter's metadata text, then its training texts."""
    out = []
    for docs, owner, _, train in zoos.values():
        first: dict[str, str] = {}
        for doc, tid in zip(docs, owner, strict=True):
            first.setdefault(tid, doc)
        out += [[first[tid], *texts] for tid, texts in train.items()]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.text_tune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=None, help="default 5e-4 (LoRA) / 2e-5 (--full)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--full", action="store_true", help="fine-tune every weight instead of a LoRA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    from sentence_transformers import SentenceTransformer

    from encoders.registry_text_tune import TuneConfig, finetune, lora_model
    from encoders.text import bundled_model_path

    voices = json.loads((ROOT / "retrieval_voices.json").read_text())
    zoos = {kind: zoo(kind) for kind in ("text", "image")}

    def encoder(model: Any) -> Encode:
        return lambda texts: model.encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True)

    results: dict[str, dict[str, float]] = {}

    def row(name: str, members: list[Member]) -> None:
        results[name] = summary(evaluate(zoos, voices, members))
        print(name, json.dumps(results[name]), flush=True)

    plain = encoder(SentenceTransformer(str(bundled_model_path()), device="cpu"))
    w_plain = fit_map(zoos, plain)
    row("plain", [(plain, None)])
    row("plain+map", [(plain, w_plain)])
    cfg = TuneConfig(rank=a.rank, lr=a.lr or (2e-5 if a.full else 5e-4), epochs=a.epochs, seed=a.seed)
    model = (
        SentenceTransformer(str(bundled_model_path()), device="cpu")
        if a.full
        else lora_model(bundled_model_path(), cfg)
    )
    t0 = time.perf_counter()
    done = finetune(model, groups(zoos), cfg)
    print(f"tuned: {done['steps']} steps, last loss {done['loss']:.3f}, {time.perf_counter() - t0:.0f} s", flush=True)
    tuned = encoder(model)
    w_tuned = fit_map(zoos, tuned)
    row("tuned", [(tuned, None)])
    row("tuned+map", [(tuned, w_tuned)])
    row("mean(tuned+map, plain+map)", [(tuned, w_tuned), (plain, w_plain)])
    if not a.full:
        from peft.tuners.lora import LoraLayer

        prev = 1.0
        for share in (0.7, 0.5, 0.3):
            for mod in model.modules():
                if isinstance(mod, LoraLayer):
                    for key in mod.scaling:
                        mod.scaling[key] *= share / prev
            prev = share
            row(f"wise {share}+map", [(tuned, fit_map(zoos, tuned))])
    if a.out:
        a.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
