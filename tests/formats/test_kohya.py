"""kohya / LyCORIS reader and the kohya writer: synthetic files with known ΔW, the real LoKr fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from registry.errors import AdapterFormatError, ExportError, UnsupportedAdapterError
from registry.formats import kohya, load_tensor_file
from registry.formats.canonical import LoraAdapter, LoraModule
from registry.formats.lycoris_ops import APPROX_MAX_RANK, APPROX_TOL, lokr_delta, lokr_factors, truncate
from registry.formats.names import kohya_to_dotted
from tests.formats.lora_checks import assert_same_deltas, rel_err

UNET_Q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
UNET_CONV = "lora_unet_down_blocks_0_resnets_0_conv1"
TE_Q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"


def rnd(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed + sum(shape)))


def save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def read(path: Path) -> LoraAdapter:
    tf = load_tensor_file(path)
    assert kohya.claims(tf, None)
    return kohya.read(tf, None)


def read_one(tmp_path: Path, tensors: dict[str, torch.Tensor], **meta: str) -> LoraModule:
    adapter = read(save(tmp_path / "a.safetensors", tensors, meta or None))
    assert len(adapter.modules) == 1
    return next(iter(adapter.modules.values()))


# ---------------------------------------------------------------- plain LoRA


def test_plain_linear_scale_alpha_over_rank(tmp_path: Path) -> None:
    down, up = rnd(4, 16), rnd(24, 4)
    tensors = {f"{UNET_Q}.lora_down.weight": down, f"{UNET_Q}.lora_up.weight": up, f"{UNET_Q}.alpha": torch.tensor(8.0)}
    tensors |= {f"{TE_Q}.lora_down.weight": down.clone(), f"{TE_Q}.lora_up.weight": up.clone()}  # no alpha: alpha = r
    a = read(save(tmp_path / "a.safetensors", tensors, {"ss_network_module": "networks.lora", "ss_network_dim": "4"}))
    assert a.format == "kohya" and a.metadata["ss_network_dim"] == "4" and a.metadata["loradex.naming"] == "diffusers"
    m = a.modules["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    assert (m.rank, m.scale, m.alpha, m.kind, m.source_type) == (4, 2.0, 8.0, "linear", "lora")
    torch.testing.assert_close(m.delta(), 2.0 * up @ down)
    assert a.modules["text_encoder.text_model.encoder.layers.0.self_attn.q_proj"].scale == 1.0


def test_plain_conv(tmp_path: Path) -> None:
    down, up = rnd(4, 8, 3, 3), rnd(16, 4, 1, 1)
    m = read_one(tmp_path, {f"{UNET_CONV}.lora_down.weight": down, f"{UNET_CONV}.lora_up.weight": up,
                            f"{UNET_CONV}.alpha": torch.tensor(2.0)})  # fmt: skip
    assert m.kind == "conv" and m.delta().shape == (16, 8, 3, 3)
    want = 0.5 * torch.einsum("or, rikl -> oikl", up[:, :, 0, 0], down)
    torch.testing.assert_close(m.delta(), want)


def test_locon_tucker_mid_is_exact(tmp_path: Path) -> None:
    up, mid, down = rnd(16, 4, 1, 1), rnd(4, 4, 3, 3), rnd(4, 8, 1, 1)
    m = read_one(tmp_path, {f"{UNET_CONV}.lora_up.weight": up, f"{UNET_CONV}.lora_mid.weight": mid,
                            f"{UNET_CONV}.lora_down.weight": down, f"{UNET_CONV}.alpha": torch.tensor(1.0)})  # fmt: skip
    want = 0.25 * torch.einsum("nmkl, in, mj -> ijkl", mid, up[:, :, 0, 0], down[:, :, 0, 0])  # (out, in, k, k)
    assert (m.source_type, m.kind, m.approx_error, m.rank) == ("locon", "conv", 0.0, 4)
    torch.testing.assert_close(m.delta(), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- LyCORIS LoHa / LoKr / full


def test_loha_exact_when_rank_product_fits(tmp_path: Path) -> None:
    w1a, w1b, w2a, w2b = rnd(24, 4), rnd(4, 16, seed=1), rnd(24, 4, seed=2), rnd(4, 16, seed=3)
    parts = {"hada_w1_a": w1a, "hada_w1_b": w1b, "hada_w2_a": w2a, "hada_w2_b": w2b, "alpha": torch.tensor(2.0)}
    m = read_one(tmp_path, {f"{UNET_Q}.{k}": v for k, v in parts.items()})
    want = (w1a @ w1b) * (w2a @ w2b) * 0.5  # alpha / r
    assert (m.source_type, m.kind, m.scale, m.alpha) == ("loha", "linear", 1.0, None)
    assert m.rank <= 16 and m.approx_error is not None and m.approx_error < 1e-6
    assert rel_err(m.delta(), want) < 1e-5


def test_loha_truncated_error_is_recorded(tmp_path: Path) -> None:
    w1a, w1b, w2a, w2b = rnd(200, 12), rnd(12, 180, seed=1), rnd(200, 12, seed=2), rnd(12, 180, seed=3)  # rank 144
    parts = {"hada_w1_a": w1a, "hada_w1_b": w1b, "hada_w2_a": w2a, "hada_w2_b": w2b}
    m = read_one(tmp_path, {f"{UNET_Q}.{k}": v for k, v in parts.items()})
    want = (w1a @ w1b) * (w2a @ w2b)  # no alpha: alpha = r, scale 1
    assert m.rank == APPROX_MAX_RANK and m.approx_error is not None and m.approx_error > APPROX_TOL
    assert rel_err(m.delta(), want) == pytest.approx(m.approx_error, abs=1e-5)


def test_loha_tucker_conv(tmp_path: Path) -> None:
    r, out, cin = 3, 12, 10
    t1, t2 = rnd(r, r, 3, 3), rnd(r, r, 3, 3, seed=1)
    w1a, w1b, w2a, w2b = rnd(r, out, seed=2), rnd(r, cin, seed=3), rnd(r, out, seed=4), rnd(r, cin, seed=5)
    parts = {"hada_t1": t1, "hada_t2": t2, "hada_w1_a": w1a, "hada_w1_b": w1b, "hada_w2_a": w2a, "hada_w2_b": w2b}
    m = read_one(tmp_path, {f"{UNET_CONV}.{k}": v for k, v in parts.items()})
    half = lambda t, a, b: torch.einsum("ijkl, jr, ip -> prkl", t, b, a)  # noqa: E731 (LyCORIS rebuild)
    want = half(t1, w1a, w1b) * half(t2, w2a, w2b)  # alpha = r: scale 1
    assert m.kind == "conv" and m.delta().shape == (out, cin, 3, 3)
    assert rel_err(m.delta(), want) == pytest.approx(m.approx_error, abs=1e-5)


@pytest.mark.parametrize("layout", ["w1_full", "w2_full", "both_factored", "both_full"])
def test_lokr_linear(tmp_path: Path, layout: str) -> None:
    w1a, w1b, w2a, w2b = rnd(4, 2), rnd(2, 6, seed=1), rnd(8, 2, seed=2), rnd(2, 5, seed=3)
    parts: dict[str, torch.Tensor] = {"alpha": torch.tensor(1.0)}
    parts |= {"lokr_w1": w1a @ w1b} if layout in ("w1_full", "both_full") else {"lokr_w1_a": w1a, "lokr_w1_b": w1b}
    parts |= {"lokr_w2": w2a @ w2b} if layout in ("w2_full", "both_full") else {"lokr_w2_a": w2a, "lokr_w2_b": w2b}
    m = read_one(tmp_path, {f"{UNET_Q}.{k}": v for k, v in parts.items()})
    scale = 1.0 if layout == "both_full" else 0.5  # alpha / r with r = 2; full-only LoKr ignores alpha
    want = torch.kron(w1a @ w1b, w2a @ w2b) * scale  # (32, 30)
    assert (m.source_type, m.kind, m.delta().shape) == ("lokr", "linear", (32, 30))
    assert m.approx_error is not None and m.approx_error < 1e-6 and rel_err(m.delta(), want) < 1e-5


def test_lokr_conv_flat_factor_and_tucker(tmp_path: Path) -> None:
    w1 = rnd(4, 2)
    flat = {"lokr_w1": w1, "lokr_w2_a": rnd(5, 2, seed=1), "lokr_w2_b": rnd(2, 3 * 9, seed=2)}  # kernel from the name
    m = read_one(tmp_path, {f"{UNET_CONV}.{k}": v for k, v in flat.items()})
    want = torch.kron(w1, flat["lokr_w2_a"] @ flat["lokr_w2_b"]).reshape(20, 6, 3, 3)
    assert m.kind == "conv" and rel_err(m.delta(), want) < 1e-5
    t2, wa, wb = rnd(2, 2, 3, 3, seed=3), rnd(2, 5, seed=4), rnd(2, 3, seed=5)  # Tucker: kernel from t2
    tucker = {"lokr_w1": w1, "lokr_t2": t2, "lokr_w2_a": wa, "lokr_w2_b": wb}
    m = read_one(tmp_path, {f"{UNET_CONV}.{k}": v for k, v in tucker.items()})
    w2 = torch.einsum("ijkl, ip, jr -> prkl", t2, wa, wb)  # (5, 3, 3, 3)
    want = torch.kron(w1[:, :, None, None], w2.contiguous())  # LyCORIS make_kron
    assert m.kind == "conv" and rel_err(m.delta(), want) < 1e-5


def test_full_diff(tmp_path: Path) -> None:
    diff = rnd(20, 3) @ rnd(3, 12, seed=1)
    a = read(save(tmp_path / "a.safetensors", {f"{UNET_Q}.diff": diff, f"{UNET_Q}.diff_b": rnd(20)}))
    m = a.modules["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    assert (m.source_type, m.rank, a.format) == ("full", 3, "lycoris") and rel_err(m.delta(), diff) < 1e-5
    assert any("diff_b" in w for w in a.warnings)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("tensors", "match", "exc"),
    [
        ({"lora_down.weight": rnd(4, 8), "lora_up.weight": rnd(8, 3)}, "rank 4 .* 3 columns", AdapterFormatError),
        ({"lora_down.weight": rnd(4, 8)}, "has lora_down but no lora_up", AdapterFormatError),
        ({"lora_up.weight": rnd(8, 4)}, "has lora_up but no lora_down", AdapterFormatError),
        ({"lora_down.weight": rnd(4, 8), "lora_up.weight": rnd(8, 4), "lora_side.weight": rnd(2)}, "unknown tensor suffix", AdapterFormatError),
        ({"a1.weight": rnd(4, 8), "b1.weight": rnd(8, 4)}, "GLoRA", UnsupportedAdapterError),
        ({"alpha": torch.tensor(1.0)}, "only an alpha", AdapterFormatError),
        ({"lokr_w1": rnd(2, 2)}, "missing lokr_w2", AdapterFormatError),
        ({"hada_w1_a": rnd(4, 2), "hada_w1_b": rnd(1, 4), "hada_w2_a": rnd(4, 2), "hada_w2_b": rnd(4, 4)}, "hada_w1_a .* do not share a rank", AdapterFormatError),
        ({"lokr_w1": rnd(2, 2), "lokr_w2_a": rnd(4, 2), "lokr_w2_b": rnd(3, 4)}, "lokr_w2_a .* do not share a rank", AdapterFormatError),
        ({"hada_w1_a": rnd(4, 2), "hada_w1_b": rnd(2, 4), "hada_w2_a": rnd(5, 2), "hada_w2_b": rnd(2, 4)}, "do not fit", AdapterFormatError),
    ],
)  # fmt: skip
def test_errors_name_module_and_problem(tmp_path: Path, tensors: dict, match: str, exc: type) -> None:
    path = save(tmp_path / "bad.safetensors", {f"{UNET_Q}.{k}": v for k, v in tensors.items()})
    with pytest.raises(exc, match=match) as info:
        read(path)
    assert "attn1.to_q" in str(info.value) and str(path) in str(info.value)


def test_extra_tensors_and_bundled_embeddings(tmp_path: Path) -> None:
    tensors = {f"{UNET_Q}.lora_down.weight": rnd(2, 8), f"{UNET_Q}.lora_up.weight": rnd(8, 2),
               "bundle_emb.sks.string_to_param.*": rnd(1, 8), "something_else": rnd(3)}  # fmt: skip
    a = read(save(tmp_path / "a.safetensors", tensors, {"modelspec.trigger_phrase": "a, b"}))
    assert a.trigger_words == ["a", "b", "sks"] and set(a.extra_tensors) == {
        "bundle_emb.sks.string_to_param.*",
        "something_else",
    }
    assert len(a.warnings) == 1 and "something_else" in a.warnings[0]


def test_claims_only_kohya_keys(tmp_path: Path) -> None:
    diffusers = load_tensor_file(save(tmp_path / "d.safetensors", {"unet.x.lora_A.weight": rnd(2, 2)}))
    assert not kohya.claims(diffusers, None)
    sdxl = {"lora_te1_text_model_encoder_layers_0_mlp_fc1": (8, 4), "lora_te2_text_model_encoder_layers_0_mlp_fc1": (8, 4),
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": (8, 6)}  # fmt: skip
    tensors = {}
    for k, (o, i) in sdxl.items():
        tensors |= {f"{k}.lora_down.weight": rnd(2, i), f"{k}.lora_up.weight": rnd(o, 2)}
    a = read(save(tmp_path / "x.safetensors", tensors))
    assert a.components == ["text_encoder", "text_encoder_2", "unet"] and a.metadata["loradex.naming"] == "sgm"


# ---------------------------------------------------------------- writer


def test_write_round_trip_and_metadata(tmp_path: Path) -> None:
    tensors = {f"{UNET_Q}.lora_down.weight": rnd(4, 16), f"{UNET_Q}.lora_up.weight": rnd(24, 4),
               f"{UNET_Q}.alpha": torch.tensor(3.0), f"{UNET_CONV}.lora_down.weight": rnd(2, 8, 3, 3),
               f"{UNET_CONV}.lora_up.weight": rnd(16, 2, 1, 1), f"{TE_Q}.hada_w1_a": rnd(12, 2),
               f"{TE_Q}.hada_w1_b": rnd(2, 12), f"{TE_Q}.hada_w2_a": rnd(12, 2), f"{TE_Q}.hada_w2_b": rnd(2, 12)}  # fmt: skip
    src = read(save(tmp_path / "src.safetensors", tensors, {"ss_output_name": "x", "ss_network_args": "{}"}))
    src.family, src.trigger_words = "sd1", ["sks"]
    (path,) = kohya.write(src, tmp_path / "out")
    assert path.name == kohya.WEIGHT_NAME
    again = read(path)
    assert again.format == "kohya"
    assert_same_deltas(again, src, tol=1e-5)
    meta = again.metadata
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_output_name"] == "x"
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora" and meta["ss_base_model_version"] == "sd_v1"
    assert "ss_network_args" not in meta and meta["modelspec.trigger_phrase"] == "sks"
    q = again.modules["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    assert (q.alpha, q.rank) == (3.0, 4)


def test_write_sdxl_uses_te1_te2(tmp_path: Path) -> None:
    mods = {n: LoraModule(n, rnd(2, 4), rnd(4, 2), 1.0) for n in (
        "text_encoder.text_model.encoder.layers.0.mlp.fc1", "text_encoder_2.text_model.encoder.layers.0.mlp.fc1")}  # fmt: skip
    (path,) = kohya.write(LoraAdapter(mods), tmp_path)
    keys = load_tensor_file(path).tensors
    assert {k.split(".")[0] for k in keys} == {"lora_te1_text_model_encoder_layers_0_mlp_fc1",
                                              "lora_te2_text_model_encoder_layers_0_mlp_fc1"}  # fmt: skip


def test_write_refuses_llm_and_dora(tmp_path: Path) -> None:
    llm = LoraAdapter({"model.layers.0.q_proj": LoraModule("model.layers.0.q_proj", rnd(2, 4), rnd(4, 2), 1.0)})
    with pytest.raises(ExportError, match="no naming convention for model"):
        kohya.write(llm, tmp_path)
    m = LoraModule("unet.conv_in", rnd(2, 4), rnd(4, 2), 1.0, magnitude=torch.ones(4))
    with pytest.raises(ExportError, match="DoRA"):
        kohya.write(LoraAdapter({m.name: m}), tmp_path)


# ---------------------------------------------------------------- the real LyCORIS LoKr


@pytest.fixture(scope="module")
def lokr_path(real_adapters: Path) -> Path:
    return real_adapters / "lycoris_lokr_smart_falcon8" / "smart_falcon_8_lokr.safetensors"


@pytest.fixture(scope="module")
def lokr(lokr_path: Path) -> LoraAdapter:
    return read(lokr_path)


def test_lokr_fixture_reads(lokr: LoraAdapter) -> None:
    assert len(lokr.modules) == 350 and lokr.format == "lycoris"
    assert lokr.components == ["text_encoder", "unet"]
    assert sum(m.component == "text_encoder" for m in lokr.modules.values()) == 72
    assert lokr.metadata["ss_network_dim"] == "8" and lokr.metadata["loradex.naming"] == "diffusers"
    assert lokr.base_model == "animefull-final-pruned.safetensors"
    assert all(m.source_type == "lokr" and m.approx_error is not None for m in lokr.modules.values())
    assert all(m.approx_error <= APPROX_TOL and m.rank <= APPROX_MAX_RANK for m in lokr.modules.values())  # type: ignore[operator]
    convs = [m for m in lokr.modules.values() if m.kind == "conv"]
    assert len(convs) == 64 + 32 and all(m.down.dim() == 4 for m in convs)  # resnet / sampler convs + proj_in/out
    conv1 = lokr.modules["unet.up_blocks.2.resnets.0.conv1"]
    assert conv1.delta().shape == (640, 1920, 3, 3)


def test_lokr_fixture_shapes_are_the_sd1_layers(lokr: LoraAdapter) -> None:
    """Every ΔW has exactly the weight shape of the layer it targets in a real SD1 UNet / CLIP text encoder."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        models = {
            "unet": UNet2DConditionModel(cross_attention_dim=768),
            "text_encoder": CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072)),  # SD1's CLIP-L
        }
    for m in lokr.modules.values():
        model = models[m.component]
        path = m.path if m.component == "unet" else m.path.removeprefix("text_model.")  # transformers 5 CLIP
        assert tuple(m.delta().shape) == tuple(model.get_submodule(path).weight.shape), m.name


def test_lokr_fixture_delta_matches_direct_kron(lokr: LoraAdapter, lokr_path: Path) -> None:
    tf = load_tensor_file(lokr_path)
    names = ["lora_te_text_model_encoder_layers_0_mlp_fc1", "lora_unet_down_blocks_1_attentions_0_proj_in",
             "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_k", "lora_unet_up_blocks_3_resnets_1_conv1",
             "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj"]  # fmt: skip
    for flat in names:
        p = {k.split(".", 1)[1]: t.double() for k, t in tf.tensors.items() if k.split(".")[0] == flat}
        r = p["lokr_w1_b"].shape[0]
        want = torch.kron(p["lokr_w1_a"] @ p["lokr_w1_b"], p["lokr_w2_a"] @ p["lokr_w2_b"]) * float(p["alpha"]) / r
        torch.testing.assert_close(lokr_delta(p) * float(p["alpha"]) / r, want)
        up, down, err = truncate(lokr_factors(p, max_rank=10**6), float(p["alpha"]) / r, tol=0.0, max_rank=10**6)
        assert err < 1e-9 and rel_err(up.double() @ down.double(), want) < 1e-5  # factored SVD is exact
        m = lokr.modules[kohya_to_dotted(flat)]
        got = m.delta().reshape(m.out_features, -1).double()
        assert rel_err(got, want) == pytest.approx(m.approx_error, abs=1e-5), flat


def test_lokr_fixture_round_trip(lokr: LoraAdapter, tmp_path: Path) -> None:
    subset = LoraAdapter({n: m for i, (n, m) in enumerate(sorted(lokr.modules.items())) if i % 10 == 0}, family="sd1")
    (path,) = kohya.write(subset, tmp_path)
    again = read(path)
    assert again.format == "kohya" and again.metadata["ss_network_module"] == "networks.lora"
    assert_same_deltas(again, subset, tol=1e-5)


# ---------------------------------------------------------------- diffusers loads what the writer wrote

TINY_MODULES = {  # name → (out, in, kernel) in tests/tiny_models.py's tiny SD pipeline
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q": (64, 64, None),
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k": (64, 32, None),
    "unet.down_blocks.1.attentions.0.proj_in": (64, 64, 1),  # 1×1 conv (use_linear_projection=False)
    "unet.up_blocks.0.attentions.1.transformer_blocks.0.ff.net.0.proj": (512, 64, None),
    "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0": (64, 64, None),
    "unet.down_blocks.1.resnets.0.conv1": (64, 32, 3),
    "text_encoder.text_model.encoder.layers.0.self_attn.q_proj": (32, 32, None),
    # diffusers only converts kohya CLIP attention keys when an out_proj is among them
    "text_encoder.text_model.encoder.layers.0.self_attn.out_proj": (32, 32, None),
    "text_encoder.text_model.encoder.layers.1.mlp.fc1": (37, 32, None),
}


def _tiny_adapter() -> LoraAdapter:
    mods = {}
    for i, (name, (out, cin, k)) in enumerate(TINY_MODULES.items()):
        down, up = rnd(4, cin, seed=i) * 0.1, rnd(out, 4, seed=i + 100) * 0.1
        if k is not None:
            down, up = rnd(4, cin, k, k, seed=i) * 0.1, up[:, :, None, None]
        mods[name] = LoraModule(name, down, up, scale=2.0, alpha=8.0, kind="linear" if k is None else "conv")
    return LoraAdapter(mods, family="sd1")


@torch.no_grad()
def _add_deltas(model: torch.nn.Module, adapter: LoraAdapter, component: str) -> None:
    names = {n for n, _ in model.named_modules()}
    for m in adapter.modules.values():
        if m.component == component:
            path = m.path if m.path in names else m.path.removeprefix("text_model.")  # transformers 5 CLIP
            model.get_submodule(path).weight += m.delta().reshape(model.get_submodule(path).weight.shape)


def test_written_file_loads_in_diffusers_and_applies_delta(tmp_path: Path) -> None:
    tiny = pytest.importorskip("tests.tiny_models")
    adapter = _tiny_adapter()
    kohya.write(adapter, tmp_path)
    pipe = tiny.tiny_sd_pipeline()
    pipe.load_lora_weights(str(tmp_path), weight_name=kohya.WEIGHT_NAME)
    unet, te = tiny.tiny_unet(), tiny.tiny_text_encoder()  # same seed: the pipeline's base weights
    _add_deltas(unet, adapter, "unet")
    _add_deltas(te, adapter, "text_encoder")
    g = torch.Generator().manual_seed(0)
    sample, ctx = torch.randn(1, 4, 32, 32, generator=g), torch.randn(1, 7, 32, generator=g)
    ids = torch.tensor([[0, 5, 9, 13, 1]])
    with torch.no_grad():
        got_unet, want_unet = pipe.unet(sample, 10, ctx).sample, unet(sample, 10, ctx).sample
        got_te, want_te = pipe.text_encoder(ids)[0], te(ids)[0]
        pipe.disable_lora()
        base_unet = pipe.unet(sample, 10, ctx).sample
    assert rel_err(got_unet, base_unet) > 1e-3  # the LoRA does something
    torch.testing.assert_close(got_unet, want_unet, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_te, want_te, rtol=1e-4, atol=1e-4)
