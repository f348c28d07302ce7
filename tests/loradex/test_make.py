"""Generation, merging and composition through the service, the CLI, the REST API and the client,
on real zoo adapters in a real registry (SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from loradex.client import Client, ClientError
from loradex.service import LocalService
from registry.errors import RegistryError
from registry.filters import Filters

REPO = Path(__file__).resolve().parents[2]
TEXT = REPO / "benchmarks" / "zoo" / "text" / "adapters"
IMAGE = REPO / "benchmarks" / "zoo" / "image" / "adapters"
TEXT_TASKS = ("reverse", "upper", "lower", "caesar_1", "caesar_2", "append_ing")
TOKEN = "make-token"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> LocalService:
    if not (TEXT / "reverse").is_dir():
        pytest.skip("the text zoo is not built")
    home = tmp_path_factory.mktemp("make")
    s = LocalService.open(home / "home")
    report = s.ingest([TEXT / t for t in TEXT_TASKS])
    assert report.count("ingested") == len(TEXT_TASKS)
    s.train_generator("zoo-text", "nearest")
    return s


def _id(svc: LocalService, name: str) -> int:
    (row,) = [r for r in svc.list(family="zoo-text") if r["name"] == name]
    return int(row["id"])


def test_generate_registers_a_peft_adapter_with_lineage(svc: LocalService) -> None:
    out = svc.generate("flip the string around so it reads from the end", family="zoo-text", method="nearest")
    a = out.adapter
    assert (a["origin"], a["family"], a["format"]) == ("generated", "zoo-text", "peft")
    assert a["description"] == "flip the string around so it reads from the end"
    assert a["parents"] == [{"id": _id(svc, "reverse"), "weight": 1.0, "method": "generate:nearest"}]
    recorded = json.loads(a["metadata"]["loradex.generator"])
    assert recorded["method"] == "nearest" and recorded["seed"] == 0 and recorded["version"]
    # The registered file is the generated adapter: ΔW is the expert it copied (stored int8 in the library).
    got, expert = svc.load(a["id"]), svc.load(_id(svc, "reverse"))
    for name, m in expert.modules.items():
        assert (got.modules[name].delta() - m.delta()).abs().max() < 0.02 * m.delta().abs().max()


def test_cli_generate_says_which_expert_each_step_of_a_chain_got(
    svc: LocalService, capsys: pytest.CaptureFixture[str]
) -> None:
    from ui.cli import main

    argv = [
        "--home",
        str(svc.home),
        "generate",
        "write it backwards, then make it all capitals",
        "--family",
        "zoo-text",
    ]
    assert main([*argv, "--method", "nearest"]) == 0
    out = capsys.readouterr().out
    assert "steps: 'write it backwards' → reverse; 'make it all capitals' → upper (summed)" in out, out
    assert "from: reverse (1.00), upper (1.00)" in out, out


def test_same_request_same_bytes_across_processes(svc: LocalService) -> None:
    first = svc.generate("make every letter uppercase", family="zoo-text", method="nearest", seed=7)
    again = svc.generate("make every letter uppercase", family="zoo-text", method="nearest", seed=7)
    assert again.duplicate and again.adapter["sha256"] == first.adapter["sha256"]
    # Another process writes the same bytes (safetensors headers are written in a fixed order).
    out = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--home", str(svc.home), "generate", "make every letter uppercase",
         "--family", "zoo-text", "--method", "nearest", "--seed", "7", "--json", "-q"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["duplicate"] is True and doc["adapter"]["sha256"] == first.adapter["sha256"]


def test_emoji_in_a_request_change_nothing(svc: LocalService) -> None:
    """The generator reads a description as search reads a prompt (``readable_prompt``)."""
    plain = svc.generate("make every letter uppercase", family="zoo-text", method="nearest", seed=3)
    decorated = svc.generate("✨ make every letter uppercase 🔠", family="zoo-text", method="nearest", seed=3)
    assert decorated.adapter["sha256"] == plain.adapter["sha256"] and decorated.duplicate


def test_number_words_are_read_as_digits_and_stored_as_written(svc: LocalService) -> None:
    """The generator embeds "two" as "2" (``readable_for``); the adapter keeps the user's words."""
    words = svc.generate("🔤 shift each letter forward by two", family="zoo-text", method="nearest", seed=4)
    digits = svc.generate("shift each letter forward by 2", family="zoo-text", method="nearest", seed=4)
    assert words.adapter["description"] == words.lineage["description"] == "shift each letter forward by two"
    assert words.lineage["experts"] == digits.lineage["experts"] == [{"name": "caesar_2", "weight": 1.0}]


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"description": "   ", "family": "zoo-text"}, "description is empty"),
        ({"description": "   ", "family": "zoo-text", "method": "analogy"}, "description is empty"),
        ({"description": "🙂🙂 ?", "family": "zoo-text"}, "has no words"),
        ({"description": "x" * 5000, "family": "zoo-text"}, "at most"),
        ({"description": "shift", "family": "no-such-family"}, "no trained generator; trained: .*zoo-text: .*nearest"),
        ({"description": "shift", "family": "zoo-text", "method": "bogus"}, "known: "),
    ],
)
def test_generate_refuses_with_what_exists(svc: LocalService, kwargs: dict, phrase: str) -> None:
    before = svc.registry.count()
    with pytest.raises(RegistryError, match=phrase):
        svc.generate(**kwargs)
    assert svc.registry.count() == before


def test_merge_is_the_exact_weighted_sum_and_registered(svc: LocalService) -> None:
    a, b = _id(svc, "caesar_1"), _id(svc, "caesar_2")
    out = svc.merge([a, b], [1.0, -0.5], strategy="cat")
    m = out.adapter
    assert m["origin"] == "merged" and out.info["exact"] is True
    assert sorted((p["id"], p["weight"]) for p in m["parents"]) == sorted([(a, 1.0), (b, -0.5)])
    got, da, db = svc.load(m["id"]), svc.load(a), svc.load(b)
    for name in da.modules:
        want = da.modules[name].delta() - 0.5 * db.modules[name].delta()
        assert (got.modules[name].delta() - want).abs().max() < 1e-2 * want.abs().max() + 1e-6
    zero = svc.merge([a, a], [1.0, -1.0], strategy="cat", name="nothing")
    assert all(float(mod.delta().abs().max()) < 1e-3 for mod in svc.load(zero.adapter["id"]).modules.values())


def test_merge_refuses_unknown_strategy_and_single_input(svc: LocalService) -> None:
    a = _id(svc, "upper")
    with pytest.raises(RegistryError, match="strategy"):
        svc.merge([a, _id(svc, "lower")], strategy="average-everything")
    with pytest.raises(RegistryError, match="at least two"):
        svc.merge([a])
    before = svc.registry.count()
    with pytest.raises(RegistryError, match="zip' learns on a diffusion base; family 'zoo-text' has a text base"):
        svc.merge([a, _id(svc, "lower")], strategy="zip")
    assert svc.registry.count() == before


def test_compose_merge_options_and_zip_refused_for_a_language_family(svc: LocalService) -> None:
    """A merge:S composition takes the merge's options; merge:zip fits on a diffusion base, so a
    language family is refused (before its base loads), as are options without a merge strategy."""
    from ui.cli import main

    ids = [_id(svc, "caesar_1"), _id(svc, "caesar_2")]
    with pytest.raises(RegistryError, match="'merge:zip' learns on a diffusion base; family 'zoo-text' has a text"):
        svc.compose("shift letters", adapters=ids, strategy="merge:zip", inputs=["abc"])
    with pytest.raises(RegistryError, match="options are a merge's: give them with a merge:<strategy> strategy"):
        svc.compose("shift letters", adapters=ids, strategy="gate", inputs=["abc"], options={"density": 0.5})
    for bounds in ({"steps": 0}, {"n_images": 0}):  # the REST API's bounds hold for the service too
        with pytest.raises(RegistryError, match=f"{next(iter(bounds))} must be ≥ 1, got 0"):
            svc.compose("shift letters", adapters=ids, inputs=["abc"], **bounds)
    with pytest.raises(RegistryError, match="strategy 'ties' takes no option steps"):
        svc.compose("shift letters", adapters=ids, strategy="merge:ties", inputs=["abc"], options={"steps": 5})
    out = svc.compose("shift letters", adapters=ids, strategy="merge:ties", inputs=["abc"], options={"density": 0.3})
    assert out.info["merge"]["strategy"] == "ties" and out.info["merge"]["options"] == {"density": 0.3}
    argv = ["--home", str(svc.home), "compose", "--prompt", "shift", "--adapters", *map(str, ids), "--input", "abc"]
    assert main([*argv, "--strategy", "merge:zip", "--options", '{"steps": 1}']) != 0


def test_compose_routes_a_language_task_by_its_description(svc: LocalService) -> None:
    ids = [_id(svc, n) for n in ("reverse", "upper", "append_ing")]
    res = svc.compose("write the text backwards", adapters=ids, inputs=["hello", "abc"])
    assert res.outputs == ["olleh", "cba"]
    assert res.weights[0] == max(res.weights)
    auto = svc.compose("capitalize all letters", auto=2, family="zoo-text", inputs=["hello"])
    assert auto.outputs == ["HELLO"] and auto.adapters[0]["name"] == "upper"
    with pytest.raises(RegistryError, match="give an input"):
        svc.compose("reverse", adapters=ids)


def test_compose_auto_says_which_part_each_pick_is_for(svc: LocalService, capsys: pytest.CaptureFixture[str]) -> None:
    from ui.cli import main

    prompt = "write the text backwards, then capitalize all letters"
    argv = ["--home", str(svc.home), "compose", "--prompt", prompt, "--auto", "2", "--family", "zoo-text",
            "--strategy", "chain", "--input", "hello"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {a["name"]: a["picked_for"] for a in doc["adapters"]} == {
        "reverse": "write the text backwards", "upper": "capitalize all letters"}  # fmt: skip
    assert [a["name"] for a in doc["adapters"]] == ["reverse", "upper"]  # the prompt's order: a chain runs it so
    assert doc["outputs"] == ["OLLEH"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "(for 'write the text backwards')" in shown and "(for 'capitalize all letters')" in shown
    from ui.web.make import MakeUI

    _, _, text = MakeUI(svc, lambda token: None).compose(prompt, "", 2, "zoo-text", "chain", "hello", 0, False,
                                                         progress=lambda *a, **k: None)  # fmt: skip
    assert "reverse · chain weight 1.000 · for “write the text backwards”" in text
    assert "upper · chain weight 1.000 · for “capitalize all letters”" in text


def test_compose_runs_a_request_of_steps_as_a_chain_in_the_order_they_run(
    svc: LocalService, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [_id(svc, n) for n in ("reverse", "append_ing", "upper")]
    first = svc.compose("Before you write it backwards, add ing at the end", adapters=ids, inputs=["hello"])
    assert first.strategy == "chain"
    assert [a["name"] for a in first.adapters] == ["append_ing", "reverse"]  # "before you Y, X": X runs first
    assert first.outputs == ["gniolleh"]
    assert first.info["auto"]["left_out"] == ["upper"]
    then = svc.compose("write it backwards, then add ing at the end", adapters=ids, inputs=["hello"])
    assert [a["name"] for a in then.adapters] == ["reverse", "append_ing"]
    assert then.outputs == ["ollehing"]
    assert svc.compose("add ing at the end", adapters=ids, inputs=["hello"]).strategy == "gate"  # one step
    named = svc.compose("write it backwards, then add ing at the end", adapters=ids, inputs=["hello"], strategy="gate")
    assert named.strategy == "gate" and "auto" not in named.info
    from ui.cli import main

    argv = ["--home", str(svc.home), "compose", "--prompt", "reverse it and then capitalize all letters", "--auto", "2",
            "--family", "zoo-text", "--input", "hello"]  # fmt: skip
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "chained in the order the steps run: 'reverse it' (reverse) → 'capitalize all letters' (upper)" in shown
    assert "hello → OLLEH" in shown
    # Three steps asked with --auto 2: one pick per step, all three chained (not a gate over two).
    argv[4] = "add ing at the end, then reverse it, and then capitalize all letters"
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "(append_ing) → 'reverse it' (reverse) → 'capitalize all letters' (upper)" in shown
    assert "(one adapter per step: --auto 2 picked 3)" in shown and "hello → GNIOLLEH" in shown
    from ui.web.make import MakeUI

    _, _, text = MakeUI(svc, lambda token: None).compose("Before you write it backwards, add ing at the end", "", 2,
                                                         "zoo-text", "auto", "hello", 0, True,
                                                         progress=lambda *a, **k: None)  # fmt: skip
    assert "**chain** over 2 adapters" in text
    assert (
        "chained, in the order the steps run: “add ing at the end” (append_ing) → “write it backwards” (reverse)"
        in text
    )
    assert (
        "| `hello` |" in text and "`gniolleh` |" in text
    )  # the chain's column, beside each alone, linear, merge, gate


def test_try_it_runs_the_adapter_beside_the_base(svc: LocalService) -> None:
    out = svc.try_it("reverse", ["hello", "abc"])
    assert out["kind"] == "text" and out["adapter"]["name"] == "reverse"
    assert [r["adapter"] for r in out["rows"]] == ["olleh", "cba"]
    assert all(r["base"] != r["adapter"] for r in out["rows"])  # the bare base does not reverse
    from loradex.errors import SearchError

    with pytest.raises(SearchError, match="non-empty inputs"):
        svc.try_it("reverse", ["  "])
    from fastapi.testclient import TestClient

    from ui.api import create_app
    from ui.web import WebUI

    with TestClient(create_app(svc)) as http:  # open to anyone: it registers nothing
        r = http.post("/adapters/reverse/try", json={"inputs": ["hello"]})
        assert r.status_code == 200 and r.json()["rows"][0]["adapter"] == "olleh"
        assert http.post("/adapters/reverse/try", json={"inputs": []}).json()["error"]["code"] == "bad_request"
    from ui.server import BackgroundServer

    with BackgroundServer(create_app(svc)) as server, Client(server.url) as client:  # the client, same answer
        assert client.try_it("reverse", ["hello", "abc"]) == svc.try_it("reverse", ["hello", "abc"])
        with pytest.raises(SearchError, match="non-empty inputs"):
            client.try_it("reverse", ["  "])
    table, image = WebUI(svc, admin_token=None).try_it("reverse", "hello\nabc")
    assert "<b><code>olleh</code></b>" in table and "<b><code>cba</code></b>" in table


def test_try_it_names_characters_the_base_does_not_know(svc: LocalService, capsys: pytest.CaptureFixture) -> None:
    """The text zoo's base reads only its own characters: an input with others is a request-level
    refusal naming them, at every surface (never a bare ValueError / an internal error)."""
    from fastapi.testclient import TestClient

    from loradex.errors import SearchError
    from ui.api import create_app
    from ui.server import BackgroundServer
    from ui.web import WebUI

    with pytest.raises(SearchError, match=r"input 'café€' .*'é', '€'"):
        svc.try_it("reverse", ["hello", "café€"])
    with TestClient(create_app(svc)) as http:
        r = http.post("/adapters/reverse/try", json={"inputs": ["naïve"]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
        assert "'ï'" in r.json()["error"]["message"]
    with BackgroundServer(create_app(svc)) as server, Client(server.url) as client:
        with pytest.raises(SearchError, match="'ï'"):
            client.try_it("reverse", ["naïve"])
    import gradio as gr

    with pytest.raises(gr.Error, match="'ï'"):
        WebUI(svc, admin_token=None).try_it("reverse", "naïve")
    # The other runs of user text on the base refuse the same way.
    with pytest.raises(SearchError, match="'ï'"):
        svc.compose("write the text backwards", adapters=[_id(svc, "reverse")], inputs=["naïve"])
    with pytest.raises(SearchError, match="'é'"):
        svc.search("", examples=[("abc", "cba"), ("café", "éfac")], family="zoo-text")
    before = svc.registry.count()
    with pytest.raises(SearchError, match="'é'"):
        svc.generate("reverse the word", family="zoo-text", method="nearest", examples=[("café", "éfac")])
    assert svc.registry.count() == before
    from ui.cli import main  # the CLI: one line and a non-zero exit

    capsys.readouterr()
    assert main(["--home", str(svc.home), "search", "--example", "café=>éfac", "--family", "zoo-text"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("loradex: error: input 'café'") and "'é'" in err and "\n" not in err


def test_try_it_on_an_image_adapter_and_where_nothing_can_run(tmp_path: Path) -> None:
    import io

    from PIL import Image

    from loradex.errors import UnknownBaseError

    if not (IMAGE / "grayscale").is_dir():
        pytest.skip("the image zoo is not built")
    svc = LocalService.open(tmp_path / "home", embed=False)
    svc.ingest([IMAGE / "grayscale", REPO / "samples" / "adapters" / "watercolor_sd15.safetensors"])
    out = svc.try_it("grayscale", ["a red circle", "a blue square", "a green heart"])
    img = Image.open(io.BytesIO(out["png"])).convert("RGB")
    assert out["kind"] == "image" and img.size[0] > img.size[1]  # 3 prompts across, 2 rows (base, adapter)
    top, bottom = img.crop((0, 0, img.size[0], img.size[1] // 2)), img.crop((0, img.size[1] // 2, *img.size))
    sat = [max(Image.Image.getextrema(im.convert("HSV").split()[1])) for im in (top, bottom)]
    assert sat[0] > sat[1]  # grayscale takes the colour out of the user's prompts
    with pytest.raises(UnknownBaseError, match="nothing to run 'sd1' adapters on: register its base"):
        svc.try_it("watercolor_sd15", ["a lake"])


def test_merge_across_families_names_the_adapters(tmp_path: Path) -> None:
    from fusion.errors import IncompatibleAdaptersError

    if not (IMAGE / "grayscale").is_dir() or not (TEXT / "reverse").is_dir():
        pytest.skip("the zoos are not built")
    svc = LocalService.open(tmp_path / "home", embed=False)
    svc.ingest([IMAGE / "grayscale", TEXT / "reverse"])
    gray, rev = svc.get("grayscale")["id"], svc.get("reverse")["id"]
    with pytest.raises(IncompatibleAdaptersError, match=rf"grayscale \(id {gray}\): zoo-image, reverse \(id {rev}\)"):
        svc.merge(["grayscale", "reverse"])
    assert svc.registry.count() == 2


def test_made_adapters_get_names_no_other_adapter_has(tmp_path: Path) -> None:
    """Names are references: a generated adapter must not take its expert's title ('grayscale'), and
    a made name already in use gets -2, -3 …; every one resolves to its own adapter."""
    if not (IMAGE / "grayscale").is_dir():
        pytest.skip("the image zoo is not built")
    svc = LocalService.open(tmp_path / "home", embed=False)
    svc.ingest([IMAGE / "grayscale", IMAGE / "dots"])
    gray, dots = svc.get("grayscale")["id"], svc.get("dots")["id"]
    first = svc.generate("grayscale", family="zoo-image", method="nearest").adapter
    assert first["name"] != "grayscale" and svc.get("grayscale")["id"] == gray
    assert svc.get(first["name"])["id"] == first["id"]
    again = svc.generate("grayscale", family="zoo-image", method="nearest")  # same request, same bytes
    assert again.duplicate and again.adapter["id"] == first["id"]
    a = svc.merge([gray, dots], strategy="cat", name="combo").adapter
    b = svc.merge([gray, dots], [1.0, 0.5], strategy="cat", name="combo").adapter
    c = svc.merge([gray, dots], [0.5, 1.0], strategy="cat", name="grayscale").adapter
    assert (a["name"], b["name"], c["name"]) == ("combo", "combo-2", "grayscale-2")
    other = svc.generate("grayscale", family="zoo-image", method="nearest", seed=1).adapter["name"]
    taken = svc.merge([gray, dots], [0.25, 1.0], strategy="cat", name=other.replace("-s1", "-s2")).adapter["name"]
    third = svc.generate("grayscale", family="zoo-image", method="nearest", seed=2).adapter
    assert third["name"] == f"{taken}-2" and other != first["name"]
    rows = svc.list()
    assert len({r["name"] for r in rows}) == len(rows)
    assert all(svc.get(r["name"])["id"] == r["id"] for r in rows)


def test_train_generator_end_to_end_through_the_family_base(svc: LocalService, tmp_path: Path) -> None:
    """``--config '{"objective": "end_to_end"}'`` trains the hypernet through the family's own text
    base on the examples of the texts file; a family without a language model is told so."""
    from benchmarks.generation_data import text_tasks, train_examples
    from generators import GeneratorTrainingError

    tasks = text_tasks()
    table = {t: {"texts": [], "examples": [list(p) for p in train_examples(tasks[t], 4)]} for t in TEXT_TASKS}
    (tmp_path / "texts.json").write_text(json.dumps(table))
    cfg = {"objective": "end_to_end", "steps": 4, "batch_size": 3, "width": 16, "task_examples": 2}
    res = svc.train_generator("zoo-text", "hypernet", texts=tmp_path / "texts.json", config=cfg)
    # the registry's other described adapters (merges made by earlier tests) have no examples: not drawn
    assert res["metrics"]["objective"] == "end_to_end"
    assert res["items"] - res["metrics"]["without_examples"] == len(TEXT_TASKS)
    assert res["metrics"]["first_loss"] > 0.5  # a task loss through the base, not a reconstruction
    with pytest.raises(GeneratorTrainingError, match="'zoo-image' has none registered; text bases: zoo-text"):
        svc.train_generator("zoo-image", "hypernet", config=cfg)


def test_zip_merge_learns_on_the_family_base_and_registers_the_exact_combination(tmp_path: Path) -> None:
    if not (IMAGE / "grayscale").is_dir():
        pytest.skip("the image zoo is not built")
    svc = LocalService.open(tmp_path / "home", embed=False)
    svc.ingest([IMAGE / "grayscale", IMAGE / "dots"])
    gray, dots = svc.get("grayscale")["id"], svc.get("dots")["id"]
    before = svc.registry.count()
    with pytest.raises(RegistryError, match="takes no option density"):
        svc.merge([gray, dots], strategy="zip", options={"density": 0.5})
    assert svc.registry.count() == before
    opts = {"steps": 1, "batch": 1, "lr": 0.05, "samples": 1, "sample_steps": 1, "prompts": ["a red circle"]}
    out = svc.merge([gray, dots], strategy="zip", options=opts)
    m = out.adapter
    assert m["origin"] == "merged" and out.info["exact"] is True and out.info["strategy"] == "zip"
    assert sorted((p["id"], p["weight"], p["method"]) for p in m["parents"]) == sorted(
        [(gray, 1.0, "merge:zip"), (dots, 1.0, "merge:zip")]
    )
    record = json.loads(m["metadata"]["loradex.merge"])
    assert record["strategy"] == "zip" and record["options"] == opts and record["zip"]["config"]["steps"] == 1
    coefs = record["coefficients"]  # per module: each adapter's mean coefficient
    da, db, got = svc.load(gray), svc.load(dots), svc.load(m["id"])
    assert set(coefs) == set(da.modules) and any(abs(c - 1) > 1e-3 for v in coefs.values() for c in v)
    for name in got.modules:  # rows of ΔW scaled (axis out): row-wise ratios are the coefficients
        d, a, b = (x.modules[name].delta().reshape(x.modules[name].out_features, -1).float() for x in (got, da, db))
        fit = torch.linalg.lstsq(torch.stack([a, b], dim=2), d[..., None]).solution[..., 0]  # (out, 2)
        resid = (torch.einsum("oci,oi->oc", torch.stack([a, b], dim=2), fit) - d).norm() / d.norm()
        assert float(resid) < 1e-2  # each row of the merge is a combination of the two adapters' rows


def test_compose_renders_images_with_a_gate_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    if not (IMAGE / "grayscale").is_dir():
        pytest.skip("the image zoo is not built")
    svc = LocalService.open(tmp_path / "home")
    svc.ingest([IMAGE / "grayscale", IMAGE / "dots"])
    ids = [r["id"] for r in svc.list(family="zoo-image")]
    res = svc.compose("a circle in grayscale with polka dots", adapters=ids, strategy="gate", steps=3, n_images=2)
    assert len(res.images) == 2 and res.family == "zoo-image"
    import io

    img = Image.open(io.BytesIO(res.images[0]))
    assert img.size[0] >= 32 and img.mode in ("RGB", "RGBA")
    assert res.gate_png is not None and Image.open(io.BytesIO(res.gate_png)).size[0] > 0
    # the family's calibrated gate recognises both adapters as read back from the registry
    assert res.info["gate"] == "calibrated" and sorted(res.info["calibrated"]) == sorted(r["name"] for r in svc.list())
    # and routes with the weights signal of the family's query head as well as the descriptions
    assert len(res.info["head_scores"]) == 2 and res.weights == [1.0, 1.0]
    lin = svc.compose("a circle in grayscale with polka dots", adapters=ids, strategy="linear", steps=3)
    assert len(lin.images) == 1 and lin.strategy == "linear" and lin.weights == [1.0, 1.0]
    assert "calibrated" not in lin.info  # only the gate calibrates
    svc.close()
    from ui.cli import main

    argv = ["--home", str(tmp_path / "home"), "compose", "--prompt", "a circle in grayscale with polka dots",
            "--adapters", *map(str, ids), "--steps", "2", "--out", str(tmp_path / "out"), "-q"]  # fmt: skip
    assert main(argv) == 0
    assert "calibrated for composing (per layer and channel): " in capsys.readouterr().out
    # a prompt that asks for one of the two: the other is turned down, and the summary says how to keep it
    assert main([*argv[:4], "a circle in shades of grey", *argv[5:]]) == 0
    out = capsys.readouterr().out
    assert "turned down, the prompt does not ask for them: dots; name one in the prompt to keep it on" in out
    assert main([*argv[:4], "a circle in shades of grey with dots", *argv[5:]]) == 0
    assert "turned down" not in capsys.readouterr().out


def test_api_and_client_generate_merge_compose(svc: LocalService) -> None:
    from fastapi.testclient import TestClient

    from ui.api import create_app

    app = create_app(svc, admin_token=TOKEN)
    with TestClient(app) as http:
        assert "nearest" in http.get("/generators").json()["zoo-text"]
        assert "path" not in http.get("/generators").json()["zoo-text"]["nearest"]
        assert http.post("/generate", json={"description": "x", "family": "zoo-text"}).status_code == 401
        c = Client("http://testserver", token=TOKEN, http=http)
        local = svc.generate("add ing at the end of the word", family="zoo-text", method="nearest", seed=2)
        remote = c.generate("add ing at the end of the word", family="zoo-text", method="nearest", seed=2)
        assert remote.adapter["sha256"] == local.adapter["sha256"] and remote.duplicate
        merged = c.merge([str(_id(svc, "upper")), str(_id(svc, "lower"))], [0.5, 0.5], strategy="cat")
        assert merged.adapter["origin"] == "merged"
        pair = [str(_id(svc, "upper")), str(_id(svc, "reverse"))]  # the strategy's options reach the server
        dense, sparse = (c.merge(pair, strategy="magnitude_prune", options={"density": d}) for d in (0.9, 0.2))
        assert dense.adapter["sha256"] != sparse.adapter["sha256"]
        local = svc.merge([int(x) for x in pair], strategy="magnitude_prune", options={"density": 0.2})
        assert local.adapter["sha256"] == sparse.adapter["sha256"] and local.duplicate
        with pytest.raises(ClientError, match="takes no option nope"):
            c.merge(pair, strategy="ties", options={"nope": 1})
        res = c.compose("spell the word backwards", adapters=[_id(svc, "reverse"), _id(svc, "upper")],
                        inputs=["hello"])  # fmt: skip
        assert res.outputs == ["olleh"]
        tied = c.compose("spell the word backwards", adapters=pair, strategy="merge:ties", inputs=["hello"],
                         options={"density": 0.3})  # fmt: skip
        assert tied.info["merge"]["options"] == {"density": 0.3}  # compose's merge options reach the server
        with pytest.raises(ClientError, match="merge:zip' learns on a diffusion base; family 'zoo-text'"):
            c.compose("spell the word backwards", adapters=pair, strategy="merge:zip", inputs=["hello"])
        with pytest.raises(ClientError, match="description is empty"):
            c.generate(" ", family="zoo-text")
        r = http.post(
            "/compose", json={"prompt": "x", "strategy": "gate"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        job = r.json()
        for _ in range(200):
            job = http.get(f"/jobs/{job['id']}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert job["status"] == "failed" and "auto" in job["error"]["message"]


def test_cli_merge_and_fsck(svc: LocalService) -> None:
    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ui.cli", "--home", str(svc.home), *argv], capture_output=True,
                              text=True, cwd=REPO, timeout=600)  # fmt: skip

    out = cli("merge", str(_id(svc, "reverse")), str(_id(svc, "upper")), "--strategy", "svd", "--rank", "2", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["info"]["strategy"] == "svd" and 0.0 <= doc["info"]["relative_error"] < 1.0
    assert doc["adapter"]["ranks"] == [2]
    fsck = cli("fsck", "--json")
    assert fsck.returncode == 0 and json.loads(fsck.stdout)["problems"] == 0
    bad = cli("generate", "shift", "--family", "zoo-text", "--example", "no separator")
    assert bad.returncode == 2 and "INPUT=>OUTPUT" in bad.stderr
    blank = cli("generate", " ", "--family", "zoo-text")  # the progress bar is closed before the error is printed
    assert blank.returncode == 2
    assert any(line.startswith("loradex: error: the description is empty") for line in blank.stderr.split("\n"))


def test_search_by_example_runs_the_candidates(svc: LocalService) -> None:
    hits = svc.search("", 3, examples=[("hello", "olleh"), ("abc", "cba"), ("zoo", "ooz")], family="zoo-text")
    assert hits[0].score == 1.0 and hits[0].scores == {"examples": 1.0} and "reproduces 3/3 examples" in hits[0].why
    perfect = [h.adapter for h in hits if h.score == 1.0]
    assert "reverse" in {a["name"] for a in perfect}  # and generated copies of it, if any
    assert all(a["name"] == "reverse" or a["origin"] == "generated" for a in perfect)
    shift = svc.search("", 1, examples=[("hello", "ifmmp"), ("xyz", "yza")], family="zoo-text")
    assert shift[0].adapter["name"] == "caesar_1"
    with pytest.raises(RegistryError, match="INPUT=>OUTPUT|examples"):
        svc.search("", 1, examples=[("a", "b")] * 20, family="zoo-text")
    with pytest.raises(RegistryError, match="unknown family 'sd1'; the registry has: zoo-text"):
        svc.search("", 1, examples=[("a", "b")], family="sd1")
    from loradex.verify import search_by_example

    with pytest.raises(RegistryError, match="no registered language-model base"):  # a family without an LM base
        search_by_example(svc, "", [("a", "b")], 1, Filters(family="sd1"))


def test_search_by_example_through_the_cli(svc: LocalService) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--home", str(svc.home), "search", "--example", "hello=>HELLO",
         "--example", "abc=>ABC", "--example", "Hi=>HI", "--family", "zoo-text", "-k", "2", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    names = [h["adapter"]["name"] for h in json.loads(out.stdout)["hits"]]
    assert "upper" in names and all(
        h["score"] == 1.0 for h in json.loads(out.stdout)["hits"] if h["adapter"]["name"] == "upper"
    )


def test_hybrid_score_does_not_depend_on_k(svc: LocalService) -> None:
    prompt = "shift each letter one place"
    by_k = {k: {h.adapter["id"]: h.score for h in svc.search(prompt, k)} for k in (1, 3, 50)}
    for k in (1, 3):
        for i, score in by_k[k].items():
            assert abs(score - by_k[50][i]) < 1e-9


def _make_ui(svc: LocalService, token: str | None = TOKEN) -> Any:
    """The Generate and Compose tabs' handlers, checking the admin token as the web UI does."""
    from ui.web import WebUI
    from ui.web.make import MakeUI

    return MakeUI(svc, WebUI(svc, admin_token=token).check_token)


def test_web_registers_adapters_only_with_the_admin_token(svc: LocalService) -> None:
    """Like POST /generate, /merge and DELETE /adapters/{ref}: Generate, Keep a merge and Discard
    take the admin token (none registered or removed without it); Compose, which registers nothing, does not."""
    import gradio as gr

    before = svc.registry.count()
    ui, off = _make_ui(svc), _make_ui(svc, token=None)
    picks = [f"{_id(svc, n)} · {n}" for n in ("caesar_1", "upper")]
    for bad, match in (("", "wrong admin token"), ("nope", "wrong admin token"), (TOKEN, "admin is disabled")):
        handlers = ui if bad != TOKEN else off
        with pytest.raises(gr.Error, match=match):
            handlers.generate(bad, "write the word backwards", "zoo-text", "nearest", "", 11, "abc")
        with pytest.raises(gr.Error, match=match):
            handlers.keep_merge(bad, "shift letters", picks, 2, "", "merge:cat")
        with pytest.raises(gr.Error, match=match):
            handlers.discard(bad, _id(svc, "upper"))
    assert svc.registry.count() == before
    _, _, text = off.compose("make it all capitals", picks, 2, "", "linear", "abc", 20, False)
    assert "| `abc` |" in text


def test_web_generate_and_compose_tabs(svc: LocalService) -> None:
    import gradio as gr

    from ui.web.make import parse_examples

    ui = _make_ui(svc)
    assert "zoo-text" in ui.families()
    card, preview, tried, *_ = ui.generate(TOKEN, "reverse the letters of the word", "zoo-text", "nearest", "", 0,
                                           "hello", progress=lambda *a, **k: None)  # fmt: skip
    assert "kept in the registry as adapter" in card and "zoo-text/nearest" in card
    assert preview.visible is False  # no picture for a language family
    assert tried.startswith("hello → olleh")
    with pytest.raises(gr.Error, match="INPUT=>OUTPUT"):
        parse_examples("hello olleh")
    with pytest.raises(gr.Error, match="description is empty"):
        ui.generate(TOKEN, "", "zoo-text", "nearest", "", 0, "", progress=lambda *a, **k: None)
    images, gate, text = ui.compose("make it all capitals", f"{_id(svc, 'upper')} {_id(svc, 'reverse')}", 2, "",
                                    "gate", "abc", 20, False, progress=lambda *a, **k: None)  # fmt: skip
    assert images == [] and "| `abc` | `ABC` |" in text


def test_only_a_converged_gate_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loradex.composition as composition
    from fusion.gate import load_gate
    from fusion.gate.calibrated import CalibratedGate

    assert composition.trained_gate("zoo-text") is not None  # its routing loss fell 1.96 → 0.05
    image = composition.trained_gate("zoo-image")  # the calibrated gate: its distillation loss fell
    assert image is not None and isinstance(load_gate(image), CalibratedGate)
    assert composition.trained_gate("no-such-family") is None
    rose = tmp_path / "gates" / "rose"
    rose.mkdir(parents=True)
    (rose / "config.json").write_text((image / "config.json").read_text())
    (rose / "metrics.json").write_text(json.dumps({"loss_first": 0.1, "loss_last": 0.2}))
    monkeypatch.setattr(composition, "GATES", tmp_path / "gates")
    assert composition.trained_gate("rose") is None  # its loss rose: the training-free gate routes
    svc = SimpleNamespace(home=tmp_path / "home")
    free = load_gate(composition.gate_folder(svc, "rose", "image"))  # type: ignore[arg-type]
    assert not free.trained and free.config.threshold == composition.FREE_GATE["threshold"]


def test_web_compose_side_by_side_and_generate_discard(svc: LocalService) -> None:
    """The Compose tab's side by side (each adapter alone, linear, merge, gate, one table row per
    input) and the Generate tab's Discard, which removes only what it just registered."""
    import gradio as gr

    ui = _make_ui(svc)
    ids = [f"{_id(svc, n)} · {n}" for n in ("reverse", "upper")]
    images, gate, text = ui.compose("write the text backwards", ids, 2, "", "gate", "hello\nabc", 20, True)
    assert images == [] and gate is not None
    head = "| input | reverse alone | upper alone | linear | merge:cat | gate |"
    assert head in text and "| `hello` | `olleh` | `HELLO` |" in text and text.endswith("`cba` |")
    _, _, alone = ui.compose("write the text backwards", ids, 2, "", "linear", "hello", 20, False)
    assert "| input | linear |" in alone
    card, _, tried, new_id, _ = ui.generate(TOKEN, "make every letter upper case", "zoo-text", "nearest", "", 5, "abc")
    assert new_id is not None and f'data-id="{new_id}"' in card and tried.startswith("abc → ABC")
    with pytest.raises(gr.Error, match="wrong admin token"):
        ui.discard("", new_id)
    assert new_id in {a["id"] for a in svc.list()}
    ui.discard(TOKEN, new_id)
    assert new_id not in {a["id"] for a in svc.list()}
    with pytest.raises(gr.Error, match="nothing to discard"):
        ui.discard(TOKEN, None)


def test_web_compose_keeps_a_merge_in_the_registry(svc: LocalService) -> None:
    """The Compose tab's "keep a merge": the picked adapters merged with the picked merge strategy
    (exact cat otherwise) and its options, registered with its lineage; the same picks again find the
    same adapter."""
    import gradio as gr

    ui = _make_ui(svc)
    picks = [f"{_id(svc, n)} · {n}" for n in ("caesar_1", "caesar_2")]
    line = ui.keep_merge(TOKEN, "shift letters", picks, 2, "", "merge:svd")
    new_id = int(line.split("adapter **", 1)[1].split(" ", 1)[0])
    info = svc.get(new_id)
    assert info["origin"] == "merged" and "merge (svd) of caesar_1, caesar_2 kept in the registry" in line
    assert {p.get("parent", p.get("id")) for p in info["parents"]} == {_id(svc, "caesar_1"), _id(svc, "caesar_2")}
    again = ui.keep_merge(TOKEN, "shift letters", picks, 2, "", "merge:svd")
    assert "already in the registry" in again and f"adapter **{new_id} " in again
    assert "merge (cat)" in ui.keep_merge(TOKEN, "shift letters", picks, 2, "", "gate")
    ties = ui.keep_merge(TOKEN, "shift letters", picks, 2, "", "merge:ties", '{"density": 0.3}')
    tied = svc.get(int(ties.split("adapter **", 1)[1].split(" ", 1)[0]))
    assert json.loads(tied["metadata"]["loradex.merge"])["options"] == {"density": 0.3}
    before = svc.registry.count()
    with pytest.raises(gr.Error, match="zip' learns on a diffusion base; family 'zoo-text'"):
        ui.keep_merge(TOKEN, "shift letters", picks, 2, "", "merge:zip", '{"steps": 1}')
    assert svc.registry.count() == before
    svc.remove(new_id)
    svc.remove(tied["id"])
