"""The calibrated gate: adapter keys, training on a tiny pipeline, folding, routing and compose."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from fusion.compose import compose_images
from fusion.errors import GateError
from fusion.gate import load_gate, save_gate
from fusion.gate.calibrated import CalibratedGate, adapter_key, names_in, new_gate
from fusion.gate.config import GateConfig
from fusion.gate.train import CalibrationExample, fit_route, train_calibrated_gate
from registry.formats import read_adapter, write_adapter
from tests.fusion.test_runtime import UNET_TARGETS, random_adapter, snapshot
from tests.tiny_models import tiny_sd_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_sd_pipeline()


def library(pipe):
    return [random_adapter(pipe.unet, "unet", UNET_TARGETS, 2, s, "tiny") for s in (1, 2, 3)]


def sampler(n: int, gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    return torch.randn(n, 4, 32, 32, generator=gen), ["a circle"] * n  # latents (n, C, H, W), captions


def test_adapter_key_follows_the_factors_not_the_file(pipe, tmp_path):
    a, b, _ = library(pipe)
    assert adapter_key(a) != adapter_key(b)
    half = replace(a, modules={n: replace(m, down=m.down.half(), up=m.up.half()) for n, m in a.modules.items()})
    assert adapter_key(half) == adapter_key(half)
    a16 = replace(a, modules={n: replace(m, down=m.down.half().float(), up=m.up.half().float())
                              for n, m in a.modules.items()})  # fmt: skip
    assert adapter_key(a16) == adapter_key(half)  # the key reads factors in float16
    write_adapter(half, "diffusers", tmp_path)
    back = read_adapter(next(tmp_path.glob("*.safetensors")))
    assert adapter_key(back) == adapter_key(half)  # a copy written and read back is recognised
    nudged = replace(half, modules=dict(half.modules))
    name = next(iter(nudged.modules))
    nudged.modules[name] = replace(nudged.modules[name], scale=nudged.modules[name].scale * 2)
    assert adapter_key(nudged) != adapter_key(half)


def test_training_lowers_the_distillation_loss_and_leaves_the_pipeline_as_it_was(pipe, tmp_path):
    a, b, c = library(pipe)
    teacher = random_adapter(pipe.unet, "unet", UNET_TARGETS, 4, 9, "tiny")
    before = snapshot(pipe.unet)
    flags = [p.requires_grad for p in pipe.unet.parameters()]
    examples = [CalibrationExample(parts=[a, b], teacher=teacher, sample=sampler, name="a+b")]
    seen: list[tuple[int, int]] = []
    gate, metrics = train_calibrated_gate(
        pipe, [a, b, c], ["a", "b", "c"], examples, GateConfig(family="tiny"), steps=30, per_step=1, batch=2,
        pool=4, lr=0.05, progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert metrics["loss_last"] < metrics["loss_first"], metrics
    assert seen[-1] == (31, 31) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    after = snapshot(pipe.unet)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in pipe.unet.parameters()] == flags
    # c took part in no example: its coefficients never moved; a's and b's did
    i_c = gate.keys[adapter_key(c)]
    assert all(bool((p[i_c] == 1).all()) for p in [*gate.out, *gate.inp])
    assert any(not bool((p[gate.keys[adapter_key(a)]] == 1).all()) for p in gate.out)
    save_gate(gate, tmp_path, metrics)
    back = load_gate(tmp_path)
    assert isinstance(back, CalibratedGate) and back.config.adapter_names == ["a", "b", "c"]
    assert all(torch.equal(x, y) for x, y in zip(gate.state_dict().values(), back.state_dict().values(), strict=True))


def test_examples_must_compose_library_adapters(pipe):
    a, b, c = library(pipe)
    stranger = random_adapter(pipe.unet, "unet", UNET_TARGETS, 2, 7, "tiny")
    bad = [CalibrationExample(parts=[a, stranger], teacher=c, sample=sampler, name="a+stranger")]
    with pytest.raises(GateError, match="a\\+stranger.*library"):
        train_calibrated_gate(pipe, [a, b], ["a", "b"], bad, GateConfig(), steps=1)
    with pytest.raises(GateError, match="same weights"):
        new_gate(GateConfig(), [a, a], ["a", "a2"], {"unet.x": (4, 4)})
    with pytest.raises(GateError, match="input channel counts"):
        GateConfig(method="calibrated", layers=["x"], channels=[4], in_channels=[], adapters=["k"], adapter_names=["a"])
    with pytest.raises(GateError, match="gate method 'magic'"):
        GateConfig(method="magic")


def _gate(pipe, ads):
    from fusion.runtime import install

    with install(pipe, ads) as h:
        shapes = {n: (int(lay.lora_B.shape[1]), int(lay.lora_A.shape[2])) for n, lay in h.layers.items()}
    gate = new_gate(GateConfig(family="tiny"), ads, [f"ad{i}" for i in range(len(ads))], shapes)
    layer = "unet." + UNET_TARGETS[0]
    li = gate.index[layer]
    with torch.no_grad():
        gate.out[li][0] = 2.0  # adapter 0's output channels at one layer doubled
        gate.inp[li][1, :3] = 0.0  # adapter 1's first three input columns there switched off
    return gate, layer


def test_calibrate_folds_the_coefficients_exactly_and_only_into_compositions(pipe):
    a, b, c = library(pipe)
    gate, layer = _gate(pipe, [a, b])
    new, which = gate.calibrate([a, b, c])
    assert which == [True, True, False]
    torch.testing.assert_close(new[0].modules[layer].delta(), 2 * a.modules[layer].delta())
    assert bool((new[1].modules[layer].down[:, :3] == 0).all())
    torch.testing.assert_close(new[1].modules[layer].down[:, 3:], b.modules[layer].down[:, 3:])
    other = "unet." + UNET_TARGETS[1]
    assert torch.equal(new[0].modules[other].up, a.modules[other].up)  # coefficients of 1 change nothing
    assert new[2] is c  # not in the library: as it is
    alone, which = gate.calibrate([a, c])
    assert which == [False, False] and alone[0] is a  # one known adapter: nothing to calibrate
    w = gate.route(torch.tensor([0.50, 0.42, 0.10]))  # threshold 0.3, T 0.05
    assert float(w[0]) > 0.95 and float(w[1]) > 0.9 and float(w[2]) < 0.02
    assert gate.route(torch.tensor([0.1, 0.05])).tolist() == [1.0, 1.0]  # asks for neither: the user's choice stands
    named = gate.route(torch.tensor([0.28, 0.6, 0.1]), [True, False, False])  # "… sepia …" names the first
    assert named[:2].tolist() == [1.0, 1.0] and float(named[2]) < 0.02
    assert gate.route(torch.tensor([0.1, 0.05]), [True, False]).tolist() == [1.0, 1.0]  # no wording matched: all
    assert names_in("a red circle, in Sepia with polka dots", ["sepia", "dots", "grayscale_dots", "hstripes", "a_"]) == [
        True, True, False, False, False]  # fmt: skip


def test_clauses_split_at_joining_words_but_not_inside_hyphenated_ones():
    from fusion.compose import clauses

    assert clauses("a black-and-white look, with polka dots") == [
        "a black-and-white look, with polka dots", "a black-and-white look", "polka dots"]  # fmt: skip


def test_fit_route_learns_which_adapters_a_request_asks_for():
    cfg = GateConfig(method="calibrated", layers=["x"], channels=[2], in_channels=[2], adapters=["k"],
                     adapter_names=["a"], text_dim=8)  # fmt: skip
    gate = CalibratedGate(cfg)
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(4, 8, generator=g)  # (m, d): four adapters' descriptions
    mix = torch.randn(4, 8, generator=g)
    # a request asking for adapters i and j is their descriptions plus a shared nuisance direction
    pairs = [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3)]
    reqs = [(keys[i] + keys[j] + 3 * mix[(i + j) % 4])[None] for i, j in pairs]
    before = torch.stack([gate.scores(q, keys) for q in reqs])  # (n, m)
    metrics = fit_route(gate, reqs, keys, [list(p) for p in pairs], steps=200, lr=0.05, reg=1e-4)
    after = torch.stack([gate.route(gate.scores(q, keys)) for q in reqs])  # (n, m)
    want = torch.zeros(5, 4)
    for n, (i, j) in enumerate(pairs):
        want[n, [i, j]] = 1
    assert metrics["route_loss_last"] < metrics["route_loss_first"]
    assert torch.equal((after > 0.5).float(), want), after
    assert not torch.equal((torch.sigmoid((before - 0.3) / 0.05) > 0.5).float(), want)  # the plain cosine did not
    with pytest.raises(GateError, match="answer lists"):
        fit_route(gate, reqs, keys, [[0]])


def test_compose_with_a_calibrated_gate_renders_the_folded_adapters(pipe, tmp_path):
    a, b, _ = library(pipe)
    gate, _ = _gate(pipe, [a, b])
    save_gate(gate, tmp_path, {"loss_first": 1.0, "loss_last": 0.5})
    before = snapshot(pipe.unet)
    kw = {"n_images": 1, "steps": 3, "guidance": 3.0, "seed": 2, "names": ["a", "b"]}
    got = compose_images(pipe, [a, b], "a circle", strategy="gate", gate_dir=tmp_path, scores=torch.zeros(2), **kw)
    assert got.info["gate"] == "calibrated" and got.info["calibrated"] == ["a", "b"]
    assert got.weights == pytest.approx([1.0, 1.0])
    trace = got.gate_trace  # the picture: weight × ‖ΔW'‖ / ‖ΔW‖ per layer
    doubled = trace["values"][trace["layers"].index("unet." + UNET_TARGETS[0])]
    assert doubled[0][0] == pytest.approx(2.0) and doubled[0][1] < 1.0  # a doubled; b lost three input columns
    untouched = trace["values"][trace["layers"].index("unet." + UNET_TARGETS[1])]
    assert untouched[-1] == pytest.approx([1.0, 1.0])
    folded, _ = gate.calibrate([a, b])
    want = compose_images(pipe, folded, "a circle", strategy="linear", **kw)
    plain = compose_images(pipe, [a, b], "a circle", strategy="linear", **kw)
    torch.testing.assert_close(got.tensor, want.tensor, atol=1e-5, rtol=0)
    assert (got.tensor - plain.tensor).abs().max() > 1e-4  # the calibration changed the picture
    after = snapshot(pipe.unet)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_name_alone_does_not_switch_the_chosen_adapters_off():
    cfg = GateConfig(method="calibrated", layers=["x"], channels=[2], in_channels=[2], adapters=["k", "l", "m"],
                     adapter_names=["a", "b", "c"], text_dim=8, threshold=0.4)  # fmt: skip
    gate = CalibratedGate(cfg)
    low = torch.tensor([0.1, 0.2, 0.39])  # all under b = 0.4: a content prompt ("a star on navy")
    assert gate.route(low, [True, False, False]).tolist() == [1.0, 1.0, 1.0]  # names the star: all stay on
    w = gate.route(torch.tensor([0.1, 0.2, 0.5]), [True, False, False])  # c asked for, a named
    assert w[0] == 1.0 and float(w[1]) < 0.5 and w[2] == 1.0


def _zoo_singles(*names: str) -> list:
    from benchmarks.fusion import IMAGE_ZOO

    return [read_adapter(IMAGE_ZOO / "adapters" / n / "pytorch_lora_weights.safetensors") for n in names]


def test_the_weights_signal_reads_wordings_the_descriptions_lack():
    """The committed image gate routes by descriptions plus its family's query head: a request in
    words no description uses turns on the adapters it asks for and leaves the others off."""
    from benchmarks.fusion import IMAGE_ZOO
    from fusion.compose import head_scores, route_scores
    from fusion.gate import bundled_gate_dir

    names = ["thermal", "dots", "sepia", "grid", "waves", "star"]
    adapters = _zoo_singles(*names)
    manifest = __import__("json").loads((IMAGE_ZOO / "manifest.json").read_text())
    descs = [next(t["canonical"] for t in manifest["tasks"] if t["id"] == n) for n in names]
    gate = load_gate(bundled_gate_dir("zoo-image"), kind="image", family="zoo-image")
    assert gate.config.head_scale > 0
    request = "heat-map camera colours, spotted with little circles"
    head = head_scores(request, adapters)
    assert head is not None and head.shape == (6,)
    both = gate.route(route_scores(gate, request, descs, head=head))
    assert (both >= 0.5).tolist() == [True, True, False, False, False, False], both
    blind = gate.route(route_scores(gate, request, descs))  # descriptions alone miss one of the two
    assert (blind >= 0.5).tolist() != [True, True, False, False, False, False], blind
    tiny = random_adapter(tiny_sd_pipeline().unet, "unet", UNET_TARGETS, 2, 0, "tiny")
    assert head_scores(request, [tiny]) is None  # no weight encoder for the family: no signal
