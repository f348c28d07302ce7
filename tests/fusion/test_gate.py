"""Gates: configs, shapes, save/load, and one training step that lowers the loss."""

from __future__ import annotations

import json

import pytest
import torch

from fusion.errors import GateError
from fusion.gate import load_gate, save_gate
from fusion.gate.config import GateConfig
from fusion.gate.model import AutoLoRAGate, DescriptionGate
from fusion.runtime import install
from tests.fusion.test_runtime import UNET_TARGETS, random_adapter
from tests.tiny_models import tiny_unet


def test_config_checks_and_drops_unknown_keys(tmp_path):
    with pytest.raises(GateError, match="kind 'video'.*image, text"):
        GateConfig(kind="video")
    with pytest.raises(GateError, match="schedule"):
        GateConfig(schedule="sometimes")
    cfg = GateConfig(kind="text", temperature=0.02)
    cfg.save(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["from_the_future"] = 1
    (tmp_path / "config.json").write_text(json.dumps(raw))
    assert GateConfig.load(tmp_path) == cfg
    gate = load_gate(tmp_path)
    assert isinstance(gate, DescriptionGate)
    w = gate.route(torch.tensor([0.5, 0.3, 0.1]))
    assert abs(float(w.sum()) - 1) < 1e-6 and float(w[0]) > 0.99


def test_autolora_gate_shapes_save_load_and_a_training_step_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    unet = tiny_unet()
    ads = [random_adapter(unet, "unet", UNET_TARGETS, 4, s, "tiny") for s in (1, 2)]
    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(2, 4, 32, 32, generator=g), torch.randn(2, 5, 32, generator=g)
    with torch.no_grad(), install(unet, ads[:1], component="unet"):
        target = unet(x, 10, encoder_hidden_states=ctx).sample  # the first adapter alone
    handle = install(unet, ads, component="unet")
    layers = list(handle.layers)
    cfg = GateConfig(layers=layers, channels=[handle.layers[n].lora_B.shape[1] for n in layers])
    gate = AutoLoRAGate(cfg)
    scores = torch.tensor([0.5, 0.48])  # both look relevant: the gate has to learn the difference
    fn = gate.gate_fn(scores)
    seen = {}

    def spy(layer, ob, o, c):
        out = fn(layer, ob, o, c)
        seen[layer.name] = tuple(out.shape)
        return out

    handle.set_gate(spy)
    handle.context["t"] = 0.3
    opt = torch.optim.Adam(gate.parameters(), lr=0.05)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.mse_loss(unet(x, 10, encoder_hidden_states=ctx).sample, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    handle.remove()
    assert losses[-1] < losses[0] * 0.9, losses
    conv = "unet." + UNET_TARGETS[4]
    assert seen[conv] == (2, 2, unet.get_submodule(UNET_TARGETS[4]).out_channels)
    save_gate(gate, tmp_path, {"loss": losses[-1]})
    back = load_gate(tmp_path)
    assert isinstance(back, AutoLoRAGate)
    assert all(torch.equal(a, b) for a, b in zip(gate.state_dict().values(), back.state_dict().values(), strict=True))
    with pytest.raises(GateError, match="other layers"):
        back.check_layers(["unet.somewhere.else"])


def test_text_router_training_separates_confused_descriptions_and_round_trips(tmp_path):
    from fusion.gate.model import TextRouterGate
    from fusion.gate.train import train_text_router

    g = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=-1)
    # queries sit between their key and a wrong one: the plain cosine routes half of them wrongly
    labels = torch.tensor([0, 1, 2, 3] * 3)
    wrong = (labels + 1) % 4
    queries = 0.45 * keys[labels] + 0.55 * keys[wrong] + 0.01 * torch.randn(12, 16, generator=g)
    raw = (torch.nn.functional.normalize(queries, dim=-1) @ keys.T).argmax(-1)
    raw_acc = float((raw == labels).float().mean())
    assert raw_acc < 0.5
    gate, metrics = train_text_router(queries, labels, keys, GateConfig(kind="text", text_dim=16), steps=200, lr=0.05)
    assert metrics["loss_last"] < metrics["loss_first"] and metrics["train_top1"] >= raw_acc + 0.25
    save_gate(gate, tmp_path)
    back = load_gate(tmp_path)
    assert isinstance(back, TextRouterGate)
    torch.testing.assert_close(back.scores(queries, keys), gate.scores(queries, keys))
    w = back.route(back.scores(queries[0], keys))
    assert abs(float(w.sum()) - 1) < 1e-5
