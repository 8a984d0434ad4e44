"""RF5's SaShiMi-DiffWave converted without PyTorch computes what that code computes with its CUDA Cauchy kernel
(in float64), not what its CPU fallback computes.

The references are tests/fixtures/rf5-diffwave/: a checkpoint saved by the original code (random weights, S4
parameters moved off their initialisation), its config, and the original's outputs (see the README there).
"""

import json
import os

import numpy as np
import pytest

from tests.helpers import FIXTURES as FIXTURE_ROOT
from tests.helpers import (
    SC09_CLASSIFIER,
    SC09_DEMO,
    fine_tuning_config,
    parity_bound,
    pooling_gains,
    seeded_trainer,
    served_clips,
    trainable_count,
)
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.rf5_diffwave import rf5_config
from tf_diffwave.interop.rf5_sashimi import HUBCONF_SOURCE, PREFIX, rf5_sashimi_weights
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.registry import build_backbone

FIXTURES = os.path.join(FIXTURE_ROOT, "rf5-diffwave")
CHECKPOINT = os.path.join(FIXTURES, "rf5-sashimi-small.pt")
CONFIG = os.path.join(FIXTURES, "rf5-sashimi-small.json")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "rf5-sashimi-small.npz")))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture's model folder, converted through the command line with its config."""
    out = str(tmp_path_factory.mktemp("rf5-sashimi") / "model")
    convert_main(["rf5-sashimi-diffwave", CHECKPOINT, CONFIG, out, "--no-export"])
    return out


def test_the_s4_kernel_is_the_cuda_sums_and_not_the_cpu_fallbacks(converted, reference):
    kernel = load(converted).backbone.model.get_layer("down0_0_s4").kernel(reference["x"].shape[-1]).numpy()
    assert np.max(np.abs(kernel - reference["s4_kernel"])) < parity_bound(reference["s4_kernel"])
    assert np.max(np.abs(kernel - reference["s4_kernel_fallback"])) > 1e-2


def test_the_step_mlp_output_equals_the_originals(converted, reference):
    denoiser = load(converted).backbone.denoiser
    emb = reference["t"][:, 0].astype(np.float32)
    for name in ("step_embedding", "step_mlp_1", "step_mlp_2"):
        emb = denoiser.get_layer(name)(emb)
    assert np.max(np.abs(emb.numpy() - reference["emb"])) < 1e-6


def test_network_output_equals_the_originals_and_not_its_cpu_fallback(converted, reference):
    model = load(converted)
    x, t = reference["x"][:, 0], reference["t"][:, 0]
    eps = np.concatenate([model.denoise(x[b:b + 1], float(t[b])) for b in range(len(t))])
    assert np.max(np.abs(eps - reference["eps"][:, 0])) < parity_bound(reference["eps"])
    assert np.max(np.abs(eps - reference["eps_fallback"][:, 0])) > 1e-2  # 0.45 on these weights


@pytest.mark.slow
def test_the_200_step_reverse_process_with_the_originals_draws_equals_its_audio(converted, reference):
    noise = np.concatenate([reference["sample_z"][1:, :, 0], reference["sample_xT"][None, :, 0]])
    audio = load(converted).reverse_process(noise, steps="full")
    assert np.max(np.abs(audio - reference["sample_x0"][:, 0])) < 1e-4


def test_the_architecture_comes_from_the_weights(converted):
    config = load(converted).config
    s = config["model"]["sashimi"]
    assert (s["d_model"], s["n_layers"], s["pool"], s["expand"], s["ff"], s["embed_dim"], s["embed_out_dim"]) == \
        (8, 1, [4, 4], 2, 2, 512, 512)
    assert (s["norm"], s["skips"], s["s4_length"], s["s4_nodes"], s["step_frequencies"]) == \
        ("channel", "layer", 4096, "stored", "transformer")
    assert config["model"]["audio_length"] == 1024 and not config["diffusion"]["clip_output"]


def weight_norm_gains(config):
    """The weight-norm gains the original stores beside its normed weights (the input and output convolutions and
    every pooling layer, one per output channel), which the converter folds into the weights."""
    s = config["model"]["sashimi"]
    return 2 * s["d_model"] + pooling_gains(s)


def test_the_published_model_builds_to_its_published_size():
    # hubconf's SaShiMi-DiffWave: DiffusionConfig's defaults, l_max 16000, step MLP 128 -> 512 -> 512
    section = {"d_model": 128, "n_layers": 6, "pool": [4, 4], "expand": 2, "ff": 2, "embed_dim": 512,
               "embed_out_dim": 512, "step_frequencies": "transformer", "norm": "channel", "skips": "layer",
               "s4_length": 16000, "s4_nodes": "stored"}
    config = rf5_config(HUBCONF_SOURCE, "hubconf", "sashimi", section)
    validate(config)
    assert trainable_count(build_backbone(config).model) + weight_norm_gains(config) == 23_478_785


def test_the_fixture_counts_as_the_original_does(converted):
    model = load(converted)
    assert trainable_count(model.backbone.model) + weight_norm_gains(model.config) == 411_745


def test_hubconfs_defaults_without_a_config_and_a_disagreeing_config_is_overruled(tmp_path, capsys):
    out = str(tmp_path / "a")
    convert_main(["rf5-sashimi-diffwave", CHECKPOINT, out, "model.audio_length=1024", "--no-export"])
    assert load(out).config["diffusion"]["num_steps"] == 200
    with open(CONFIG) as f:
        source = json.load(f)
    source["sashimi_config"]["d_model"] = 64
    wrong = tmp_path / "config.json"
    wrong.write_text(json.dumps(source))
    convert_main(["rf5-sashimi-diffwave", CHECKPOINT, str(wrong), str(tmp_path / "b"), "--no-export"])
    assert "the weights' shapes are used (d_model 64 -> 8)" in capsys.readouterr().out
    assert load(str(tmp_path / "b")).config["model"]["sashimi"]["d_model"] == 8


def test_keys_that_do_not_fit_are_errors_naming_the_file_and_key(converted):
    config = load(converted).config
    state = {k[len(PREFIX):]: v for k, v in read_torch_checkpoint(CHECKPOINT)["model_state_dict"].items()}
    key = "c_layers.0.layer.kernel.kernel"
    missing = {k: v for k, v in state.items() if k != f"{key}.log_dt"}
    extra = {**state, "c_layers.2.norm.weight": np.zeros(32, np.float32)}
    wrong = {**state, f"{key}.C": np.zeros((1, 32, 32, 2), np.float32)}
    for broken, message in ((missing, f"x.pt: the state dict has no key '{key}.log_dt'"),
                            (extra, "x.pt: .* does not use: c_layers.2.norm.weight"),
                            (wrong, rf"x.pt: '{key}.C' has shape \(1, 32, 32, 2\), expected \(2, 32, 32, 2\)")):
        with pytest.raises(UserError, match=message):
            rf5_sashimi_weights(broken, config, "x.pt")


def test_a_wavenet_checkpoint_is_named_as_such(tmp_path):
    with pytest.raises(UserError, match=r"rf5-wavenet-small.pt: an RF5/DiffWave-unconditional \(philsyn\) WaveNet "
                                        "DiffWave checkpoint, not an RF5/DiffWave-unconditional SaShiMi-DiffWave "
                                        "one; convert it with 'tf-diffwave convert rf5-diffwave ...'"):
        convert_main(["rf5-sashimi-diffwave", os.path.join(FIXTURES, "rf5-wavenet-small.pt"), str(tmp_path / "a")])


@pytest.mark.slow
def test_the_export_serves_seeds_to_the_models_audio_in_a_tensorflow_only_process(tmp_path):
    out = str(tmp_path / "model")
    convert_main(["rf5-sashimi-diffwave", CHECKPOINT, CONFIG, out])
    model = load(out)
    served = served_clips(os.path.join(out, "export", str(model.step)), [5], tmp_path)
    assert model.step == 10000 and served.shape == (1, 1024)
    np.testing.assert_allclose(served, model.generate(1, seed=5), atol=1e-5)


@pytest.mark.slow
def test_it_generates_by_seed_its_clips_are_scored_and_its_litert_export_gives_its_reverse_process(
        converted, tmp_path, capsys):
    """LiteRT has no inverse FFT: the export convolves in real arithmetic with forward FFTs (S4Layer's portable
    form), and its audio is the reverse process's (the SaShiMi network's float32 rounding, amplified by 6 steps)."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    from tests.helpers import LITERT_TOLERANCE as TOLERANCE
    from tests.helpers import run_litert
    from tf_diffwave.cli.evaluate import main as evaluate_main
    from tf_diffwave.cli.export import main as export_main
    from tf_diffwave.cli.infer import main as infer_main

    infer_main(["--model-dir", converted, "--n-samples", "2", "--seed", "4", "--out-dir", str(tmp_path / "out")])
    tag = f"{os.path.basename(converted)}-{load(converted).step}"
    assert sorted(os.listdir(tmp_path / "out")) == [f"seed_{s}_{tag}.wav" for s in (4, 5)]
    capsys.readouterr()
    evaluate_main(["sc09", "--generated", str(tmp_path / "out"), "--classifier", SC09_CLASSIFIER, "--real",
                   SC09_DEMO, "--out", str(tmp_path / "sc09.json")])
    assert "2 generated clips against 30 real training clips" in capsys.readouterr().out
    with open(tmp_path / "sc09.json") as f:
        assert np.isfinite(json.load(f)["FID"])
    export_main(["litert", "--model-dir", converted, "--out", str(tmp_path / "m.tflite")])
    model = load(converted)
    steps = len(model.sampler.betas_and_steps("fast")[0])
    noise = np.random.default_rng(3).normal(size=(steps, 1, model.config["model"]["audio_length"]))
    expected = model.reverse_process(noise.astype(np.float32))
    np.testing.assert_allclose(run_litert(str(tmp_path / "m.tflite"), tmp_path, noise=noise.astype(np.float32)),
                               expected, atol=TOLERANCE)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_converted_weights_and_trains(converted, reference, tmp_path):
    trainer = seeded_trainer(fine_tuning_config(converted, tmp_path))
    x, t = reference["x"][:1, 0], reference["t"][:1, 0].astype(np.float32)
    assert np.max(np.abs(trainer.ema_backbone.model([x, t]).numpy() - reference["eps"][:1, 0])) < \
        parity_bound(reference["eps"])
    trainer.train()
    assert trainer.step.numpy() == 2
    tuned = load(str(tmp_path / "run"))
    assert tuned.config["model"]["sashimi"]["s4_nodes"] == "stored"
    assert np.max(np.abs(tuned.denoise(x, t) - reference["eps"][:1, 0])) > 1e-5
