"""Text zoo: task functions, descriptions, splits, a tiny end-to-end rebuild, and the committed zoo's quality."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks.zoo.text.descriptions import describe, description_record
from benchmarks.zoo.text.tasks import MAX_OUT, OPS, Step, Task, all_tasks

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text"
REQUIRED_OPS = {"caesar", "reverse", "upper", "lower", "swapcase", "repeat", "rotl", "vowels", "delete", "keep", "sort",
                "dedupe", "append", "prepend", "interleave"}  # fmt: skip


def one(op: str, arg: int | str | None, s: str) -> str:
    return Task((Step(op, arg),)).apply(s)


@pytest.mark.parametrize(
    ("op", "arg", "s", "expected"),
    [
        ("caesar", 3, "abcxyz", "defabc"),
        ("caesar", 1, "AbZz", "BcAa"),
        ("caesar", 25, "abc", "zab"),
        ("reverse", None, "abcde", "edcba"),
        ("upper", None, "aBc", "ABC"),
        ("lower", None, "aBC", "abc"),
        ("swapcase", None, "aBc", "AbC"),
        ("repeat", 3, "ab", "aaabbb"),
        ("rotl", 2, "abcde", "cdeab"),
        ("rotr", 2, "abcde", "deabc"),
        ("vowels", "*", "banana", "b*n*n*"),
        ("delete", "a", "banana", "bnn"),
        ("keep", 3, "abcdefg", "adg"),
        ("keepfrom", 3, "abcdefg", "cf"),
        ("sort", None, "dcab", "abcd"),
        ("sortdesc", None, "dcab", "dcba"),
        ("dedupe", None, "banana", "ban"),
        ("squeeze", None, "aabbbca", "abca"),
        ("append", "ing", "walk", "walking"),
        ("prepend", "re", "do", "redo"),
        ("interleave", "-", "abc", "a-b-c"),
    ],
)
def test_task_functions(op: str, arg: int | str | None, s: str, expected: str) -> None:
    assert one(op, arg, s) == expected


def test_composition_and_ids() -> None:
    t = Task((Step("reverse"), Step("upper")))
    assert t.apply("abc") == "CBA"
    assert t.id == "reverse__then__upper" and t.family == "compose"
    assert t.params == {"steps": [{"op": "reverse"}, {"op": "upper"}]}
    assert Task((Step("caesar", 3),)).params == {"op": "caesar", "k": 3}
    with pytest.raises(ValueError, match="unknown op"):
        Step("nope")
    with pytest.raises(ValueError, match="takes argument"):
        Step("caesar")


def test_task_list_counts_and_splits() -> None:
    tasks = all_tasks()
    ids = [t.id for t in tasks]
    assert len(set(ids)) == len(ids)
    assert sum(t.split == "train" for t in tasks) >= 150
    assert sum(t.split == "heldout" for t in tasks) >= 30
    assert REQUIRED_OPS <= {s.op for t in tasks for s in t.steps} <= set(OPS)
    held_fams = {t.family for t in tasks if t.split == "heldout"}
    assert {"caesar", "compose"} <= held_fams
    for fam in held_fams:  # held-out parameters of seen families
        assert any(t.family == fam and t.split == "train" for t in tasks)


def test_inputs_defeat_copying_and_tasks_differ() -> None:
    """Every sampled input is changed by its task (so the base, which copies, scores 0); tasks are distinct."""
    rng = random.Random(0)
    tasks = all_tasks()
    probes = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyzABC") for _ in range(rng.randint(3, 8))) for _ in range(64)]
    assert len({tuple(t.apply(p) for p in probes) for t in tasks}) == len(tasks)
    for t in tasks:
        lo, hi = t.length_range()
        for _ in range(10):
            s = t.sample_input(rng)
            assert lo <= len(s) <= hi
            out = t.apply(s)
            assert out != s and len(out) <= MAX_OUT


def test_paraphrases() -> None:
    for t in all_tasks():
        rec = description_record(t)
        texts = [p["text"] for p in rec["paraphrases"]]
        assert len(texts) >= 5 and len(set(texts)) == len(texts)
        assert rec["canonical"] not in texts and rec["canonical"] == describe(t)[0]
        splits = [p["split"] for p in rec["paraphrases"]]
        assert set(splits) <= {"train", "heldout"}
        if t.split == "heldout":
            assert set(splits) == {"heldout"}
        else:
            assert splits.count("heldout") >= 1 and splits.count("train") >= 4
    # not one-slot templates: paraphrases of one op differ in more than the argument
    a = describe(Task((Step("caesar", 3),)))
    assert len({p.replace("3", "").replace("three", "") for p in a}) == len(a)


def test_tokenizer_roundtrip() -> None:
    from benchmarks.zoo.text.model import CharTokenizer

    tok = CharTokenizer.default()
    t = Task((Step("append", "ing"), Step("upper")))
    ids = tok.prompt("abC", t.codes())
    assert ids[0] == tok.bos_id and ids[-1] == tok.sep_id
    assert tok.decode(tok.encode("aZ-.") + [tok.eos_id] + tok.encode("zz")) == "aZ-."
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("a!")


def test_stacked_lora_matches_peft(tmp_path: Path) -> None:
    """Stacked adapters with per-row routing give PEFT's logits for the written folders."""
    import torch
    from peft import PeftModel

    from benchmarks.zoo.text.lora import LoraShape, adapter_state, inject, remove, write_peft
    from benchmarks.zoo.text.model import CharTokenizer, ModelConfig, build_model

    tok = CharTokenizer.default()
    model = build_model(ModelConfig.tiny(), tok).eval()
    shape = LoraShape(dtype="float32")
    routing, wrapped = inject(model, 2, shape, [0, 1])
    with torch.no_grad():
        for w in wrapped.values():
            w.B.normal_(0, 0.2)
    ids = torch.tensor([tok.prompt("hello"), tok.prompt("world")])
    routing.rows = torch.tensor([1, 0])
    with torch.no_grad():
        stacked = model(input_ids=ids).logits  # (2, seq, vocab)
        routing.rows, routing.group = None, 1
        assert torch.allclose(model(input_ids=ids[[1, 0]]).logits, stacked[[1, 0]], atol=1e-5)
    for i in range(2):
        write_peft(tmp_path / f"a{i}", adapter_state(wrapped, i, shape), shape, "demo", "base")
    remove(model, wrapped)
    for row, i in ((0, 1), (1, 0)):
        peft_model = PeftModel.from_pretrained(model, str(tmp_path / f"a{i}")).eval()
        with torch.no_grad():
            got = peft_model(input_ids=ids[row : row + 1]).logits[0]
        assert torch.allclose(got, stacked[row], atol=1e-4)
        model = peft_model.unload()


def test_tiny_rebuild(tmp_path: Path) -> None:
    """``python -m benchmarks.zoo build text --tiny`` runs end to end and writes loadable PEFT folders."""
    import torch
    from peft import PeftModel

    from benchmarks.zoo.__main__ import main
    from benchmarks.zoo.text.evaluate import evaluate_tasks
    from benchmarks.zoo.text.model import load_base

    torch.set_num_threads(1)
    assert main(["build", "text", "--tiny", "--out", str(tmp_path), "--device", "cpu", "--threads", "1"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (tmp_path / "base" / "model.safetensors").is_file() and (tmp_path / "base" / "config.json").is_file()
    assert (tmp_path / "RESULTS.md").is_file()
    adapters = [a for t in manifest["tasks"] for a in t["adapters"]]
    assert len(adapters) == manifest["counts"]["adapters"] >= len(manifest["tasks"])
    assert any(a["seed"] != 0 for a in adapters)
    for t in manifest["tasks"]:
        assert {
            "id",
            "family",
            "params",
            "canonical",
            "paraphrases",
            "split",
            "seeds",
            "oracle_accuracy",
            "base_accuracy",
        } <= set(t)
        for a in t["adapters"]:
            folder = tmp_path / a["path"]
            assert {"adapter_config.json", "adapter_model.safetensors", "description.txt"} <= {
                p.name for p in folder.iterdir()
            }
            assert (folder / "description.txt").read_text().strip() == t["canonical"]
    # reload one adapter with plain PEFT: its greedy outputs reproduce the recorded accuracy
    task_rec = manifest["tasks"][0]
    base, tok = load_base(tmp_path / "base")
    peft_model = PeftModel.from_pretrained(base, str(tmp_path / task_rec["adapters"][0]["path"])).eval()
    from benchmarks.zoo.text.tasks import tiny_tasks

    task = next(t for t in tiny_tasks() if t.id == task_rec["id"])
    n = manifest["config"]["n_eval"]
    assert evaluate_tasks(peft_model, tok, [task], n=n) == [task_rec["adapters"][0]["accuracy"]]
    # the registry reads the zoo adapters as their own family (Llama layout, zoo base named in the config)
    from registry.store import Registry

    reg = Registry(home=tmp_path / "reg")
    reg.init()
    report = reg.ingest([tmp_path / "adapters"])
    assert [r.status for r in report.results] == ["ingested"] * len(adapters)
    rows = reg.list()
    assert {r["family"] for r in rows} == {"zoo-text"} and not reg.get(rows[0]["id"])["warnings"]
    assert {r["description"] for r in rows} == {t["canonical"] for t in manifest["tasks"]}


def test_unknown_and_missing_zoos() -> None:
    from benchmarks.zoo import get_builder, register_builder

    with pytest.raises(KeyError, match="known: image, text"):
        get_builder("audio")
    with pytest.raises(ValueError, match="already registered"):
        register_builder("text", "x:y")
    assert callable(get_builder("image"))


@pytest.fixture(scope="module")
def committed_manifest() -> dict:
    path = ZOO / "manifest.json"
    if not path.is_file():
        pytest.skip(f"the full text zoo has not been built at {ZOO} (python -m benchmarks.zoo build text)")
    return json.loads(path.read_text())


def test_committed_zoo_quality(committed_manifest: dict) -> None:
    m = committed_manifest
    assert m["counts"]["train_tasks"] >= 150 and m["counts"]["heldout_tasks"] >= 30
    for t in m["tasks"]:
        assert t["base_accuracy"] <= 0.1, t["id"]
        assert t["adapters"], t["id"]
        for a in t["adapters"]:
            assert a["accuracy"] >= 0.9, (t["id"], a)
            assert (ZOO / a["path"] / "adapter_model.safetensors").is_file()
    assert sum(len(t["adapters"]) > 1 for t in m["tasks"]) >= 10  # several seeds for some tasks


def test_committed_zoo_reevaluates(committed_manifest: dict) -> None:
    """Two adapters (a held-out Caesar shift and a held-out composition) reload with PEFT and score high."""
    import torch
    from peft import PeftModel

    from benchmarks.zoo.text.evaluate import evaluate_tasks
    from benchmarks.zoo.text.model import load_base

    torch.set_num_threads(1)
    by_id = {t.id: t for t in all_tasks(committed_manifest["config"]["seed"])}
    picks = []
    for fam in ("caesar", "compose"):
        recs = [t for t in committed_manifest["tasks"] if t["family"] == fam and t["split"] == "heldout"]
        picks.append(max(recs, key=lambda t: t["oracle_accuracy"]))
    for rec in picks:
        base, tok = load_base(ZOO / "base")
        model = PeftModel.from_pretrained(base, str(ZOO / rec["adapters"][0]["path"])).eval()
        acc = evaluate_tasks(model, tok, [by_id[rec["id"]]], n=50)[0]
        assert acc >= 0.9, (rec["id"], acc)
        with model.disable_adapter():
            assert evaluate_tasks(model, tok, [by_id[rec["id"]]], n=50)[0] <= 0.1


def test_resume_base_reuses_the_pretrained_base(tiny_text_zoo: Path, tmp_path: Path) -> None:
    import shutil

    from benchmarks.zoo.text.build import BuildConfig, build

    out = tmp_path / "zoo"
    shutil.copytree(tiny_text_zoo, out)
    before = (out / "base" / "model.safetensors").read_bytes()
    (out / "adapters" / "reverse" / "adapter_model.safetensors").unlink()
    manifest = build(out, tiny=True, device="cpu", resume_base=True)
    assert (out / "base" / "model.safetensors").read_bytes() == before  # not pre-trained again
    assert (out / "adapters" / "reverse" / "adapter_model.safetensors").is_file()
    assert manifest["counts"] == json.loads((tiny_text_zoo / "manifest.json").read_text())["counts"]
    # a base pre-trained under another schedule is refused, not silently reused
    cfg = BuildConfig.tiny_config()
    cfg.pretrain.steps += 1
    with pytest.raises(ValueError, match="another config"):
        build(out, config=cfg, device="cpu", resume_base=True)


def test_committed_zoo_matches_its_recipe(committed_manifest: dict) -> None:
    """The builder still derives the committed zoo's task list, splits and extra-seed tasks."""
    from benchmarks.zoo.text.build import seed_tasks
    from benchmarks.zoo.text.tasks import all_tasks

    cfg = committed_manifest["config"]
    tasks = all_tasks(cfg["seed"])
    assert [(t.id, t.split) for t in tasks] == [(t["id"], t["split"]) for t in committed_manifest["tasks"]]
    seeded = {t.id for t in seed_tasks(tasks, cfg["n_seed_tasks"], cfg["seed"])}
    assert seeded == {t["id"] for t in committed_manifest["tasks"] if len(t["seeds"]) > 1}
