"""philsyn's WaveNet DiffWave (RF5/DiffWave-unconditional) converted without PyTorch computes what that code
computed in float64.

The references are tests/fixtures/rf5-diffwave/: a checkpoint saved by the original code (random weights, weight
norms moved off their initial values), its config.json, and the original's outputs (see the README there).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import FIXTURES as FIXTURE_ROOT
from tests.helpers import fine_tuning_config, seeded_trainer, served_clips
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.rf5_diffwave import rf5_wavenet_config, rf5_wavenet_weights
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.layers import StepEmbedding
from tf_diffwave.models.registry import build_backbone

FIXTURES = os.path.join(FIXTURE_ROOT, "rf5-diffwave")
CHECKPOINT = os.path.join(FIXTURES, "rf5-wavenet-small.pt")
CONFIG = os.path.join(FIXTURES, "rf5-wavenet-small.json")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "rf5-wavenet-small.npz")))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture's model folder, converted through the command line."""
    out = str(tmp_path_factory.mktemp("rf5") / "model")
    convert_main(["rf5-diffwave", CHECKPOINT, CONFIG, out, "--no-export"])
    return out


def test_the_step_frequencies_are_philsyns_float32_table(reference):
    assert np.array_equal(StepEmbedding(128, frequencies="transformer").float32_freqs, reference["emb_freq"])
    t = reference["t"][:, 0].astype(np.float32)
    exact = StepEmbedding(128, "float64", "transformer")(tf.constant(t)).numpy()
    # float64 angles of the float32 table, as the float64 original: only the final rounding to float32 differs
    assert np.max(np.abs(exact - reference["emb_in"])) < 1e-7
    float32 = StepEmbedding(128, "float32", "transformer")(tf.constant(t)).numpy()
    assert np.max(np.abs(float32 - reference["emb_in_f32"])) < 1e-6


def test_the_step_mlp_output_equals_the_originals(converted, reference):
    denoiser = load(converted).backbone.denoiser
    emb = tf.constant(reference["t"][:, 0].astype(np.float32))
    for name in ("step_embedding", "step_mlp_1", "step_mlp_2"):
        emb = denoiser.get_layer(name)(emb)
    assert np.max(np.abs(emb.numpy() - reference["emb"])) < 1e-6


def test_network_output_equals_the_originals_and_not_the_corrected_code(converted, reference):
    model = load(converted)
    x, t = reference["x"][:, 0], reference["t"][:, 0]
    eps = np.concatenate([model.denoise(x[b:b + 1], float(t[b])) for b in range(len(t))])
    assert np.max(np.abs(eps - reference["eps"][:, 0])) < 1e-6
    # the in-place `h += part_t` that the weights were trained with is kept: `h = h + part_t` is 1.5e-2 away
    assert np.max(np.abs(eps - reference["eps_noalias"][:, 0])) > 1e-3


def test_the_200_step_reverse_process_with_the_originals_draws_equals_its_audio(converted, reference):
    # load().reverse_process takes the start in noise[S - 1] and the draw added after step n in noise[n - 1]
    noise = np.concatenate([reference["sample_z"][1:, :, 0], reference["sample_xT"][None, :, 0]])
    audio = load(converted).reverse_process(noise, steps="full")
    assert np.max(np.abs(audio - reference["sample_x0"][:, 0])) < 1e-4


def test_the_converted_config_is_philsyns(converted):
    d = load(converted).config
    w = d["model"]["wavenet"]
    assert (w["residual_channels"], w["skip_channels"], w["residual_layers"], w["dilation_cycle"],
            w["embed_dim"], w["embed_out_dim"]) == (16, 24, 6, 3, 256, 128)
    assert (w["step_frequencies"], w["step_in_residual"]) == ("transformer", True)
    assert d["model"]["unconditional"] and d["model"]["audio_length"] == 1024
    assert (d["diffusion"]["num_steps"], d["diffusion"]["beta_start"], d["diffusion"]["beta_end"],
            d["diffusion"]["loss"], d["diffusion"]["clip_output"]) == (200, 1e-4, 0.02, "l2", False)


def weight_norm_gains(config):
    """The weight-norm gains g philsyn's model stores beside each normed weight (one per output channel): the
    converter folds them into the weights, so a TF model has that many parameters fewer."""
    w = config["model"]["wavenet"]
    c, s = w["residual_channels"], w["skip_channels"]
    return c + w["residual_layers"] * (2 * c + c + s) + s


def test_the_published_model_builds_to_its_published_size():
    # the repository's config.json for diffwave_sc09 (philsyn's 1M-step model)
    source = {"diffusion_config": {"T": 200, "beta_0": 1e-4, "beta_T": 0.02},
              "wavenet_config": {"in_channels": 1, "res_channels": 256, "skip_channels": 256, "out_channels": 1,
                                 "num_res_layers": 36, "dilation_cycle": 12, "diffusion_step_embed_dim_in": 128,
                                 "diffusion_step_embed_dim_mid": 512, "diffusion_step_embed_dim_out": 512},
              "trainset_config": {"segment_length": 16000, "sampling_rate": 16000}}
    config = rf5_wavenet_config(source, "config.json")
    validate(config)
    assert build_backbone(config).model.count_params() + weight_norm_gains(config) == 24_071_681


def test_the_fixture_counts_as_the_original_does(converted):
    model = load(converted)
    assert model.backbone.model.count_params() + weight_norm_gains(model.config) == 92_921


def test_keys_that_do_not_fit_are_errors_naming_the_file_and_key(converted):
    config = load(converted).config
    state = read_torch_checkpoint(CHECKPOINT)["model_state_dict"]
    key = "residual_layer.residual_blocks.2"
    missing = {k: v for k, v in state.items() if k != f"{key}.skip_conv.weight_g"}
    extra = {**state, "residual_layer.residual_blocks.6.fc_t.weight": np.zeros((16, 128), np.float32)}
    wrong = {**state, f"{key}.res_conv.weight_v": np.zeros((16, 16, 3), np.float32)}
    for broken, message in ((missing, f"x.pt: the state dict has no key '{key}.skip_conv.weight_g'"),
                            (extra, "x.pt: .* does not use: residual_layer.residual_blocks.6.fc_t.weight"),
                            (wrong, rf"x.pt: '{key}.res_conv.weight_v' has shape \(16, 16, 3\), expected "
                                    rf"\(16, 16, 1\)")):
        with pytest.raises(UserError, match=message):
            rf5_wavenet_weights(broken, config, "x.pt")


def test_other_formats_and_bad_configs_are_one_line_errors(tmp_path):
    lmnt = os.path.join(FIXTURE_ROOT, "lmnt-diffwave", "lmnt-small.pt")
    with pytest.raises(UserError, match="an lmnt-com/diffwave checkpoint, not an RF5/DiffWave-unconditional"):
        convert_main(["rf5-diffwave", lmnt, CONFIG, str(tmp_path / "a")])
    with open(CONFIG) as f:
        source = json.load(f)
    source["wavenet_config"]["skip_channels"] = "24"
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(source))
    with pytest.raises(UserError, match=f"{bad}: wavenet_config.skip_channels = '24'"):
        convert_main(["rf5-diffwave", CHECKPOINT, str(bad), str(tmp_path / "b")])
    with pytest.raises(UserError, match=f"{CHECKPOINT}: not valid JSON"):
        convert_main(["rf5-diffwave", CHECKPOINT, CHECKPOINT, str(tmp_path / "c")])


@pytest.mark.slow
def test_the_export_serves_seeds_to_the_models_audio_in_a_tensorflow_only_process(tmp_path):
    out = str(tmp_path / "model")
    convert_main(["rf5-diffwave", CHECKPOINT, CONFIG, out])
    model = load(out)
    served = served_clips(os.path.join(out, "export", str(model.step)), [3, 4], tmp_path)
    np.testing.assert_allclose(served, model.generate(2, seed=3), atol=1e-5)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_converted_weights_and_trains(converted, reference, tmp_path):
    trainer = seeded_trainer(fine_tuning_config(converted, tmp_path))
    assert trainer.config["model"]["wavenet"]["step_in_residual"]
    x, t = reference["x"][:1, 0], reference["t"][:1, 0].astype(np.float32)
    assert np.max(np.abs(trainer.ema_backbone.model([x, t]).numpy() - reference["eps"][:1, 0])) < 1e-6
    trainer.train()
    assert trainer.step.numpy() == 2
    tuned = load(str(tmp_path / "run"))
    assert tuned.config["model"]["wavenet"]["step_frequencies"] == "transformer"
    assert np.max(np.abs(tuned.denoise(x, t) - reference["eps"][:1, 0])) > 1e-5


@pytest.mark.slow
def test_it_generates_by_seed_and_its_litert_export_gives_its_reverse_process(converted, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    from tests.helpers import LITERT_TOLERANCE as TOLERANCE
    from tests.helpers import run_litert
    from tf_diffwave.cli.export import main as export_main
    from tf_diffwave.cli.infer import main as infer_main

    infer_main(["--model-dir", converted, "--n-samples", "2", "--seed", "4", "--out-dir", str(tmp_path / "out")])
    tag = f"{os.path.basename(converted)}-{load(converted).step}"
    assert sorted(os.listdir(tmp_path / "out")) == [f"seed_{s}_{tag}.wav" for s in (4, 5)]
    export_main(["litert", "--model-dir", converted, "--out", str(tmp_path / "m.tflite")])
    model = load(converted)
    steps = len(model.sampler.betas_and_steps("fast")[0])
    noise = np.random.default_rng(3).normal(size=(steps, 1, model.config["model"]["audio_length"]))
    expected = model.reverse_process(noise.astype(np.float32))
    np.testing.assert_allclose(run_litert(str(tmp_path / "m.tflite"), tmp_path, noise=noise.astype(np.float32)),
                               expected, atol=TOLERANCE)


@pytest.mark.slow
def test_a_training_schedule_its_default_fast_schedule_does_not_fit_gets_one_of_its_own_noise_levels(tmp_path,
                                                                                                        capsys):
    """A vocoder-like schedule (T = 50, beta_T = 0.05) ends less noisy than DiffWave's SC09 fast schedule: the
    converter takes the training schedule's noise levels at 6 evenly spaced steps instead, and says so."""
    with open(CONFIG) as f:
        source = json.load(f)
    source["diffusion_config"].update(T=50, beta_T=0.05)
    (tmp_path / "config.json").write_text(json.dumps(source))
    convert_main(["rf5-diffwave", CHECKPOINT, str(tmp_path / "config.json"), str(tmp_path / "m"), "--no-export"])
    alpha_bars = np.cumprod(1 - np.linspace(1e-4, 0.05, 50))
    levels = alpha_bars[[0, 10, 20, 29, 39, 49]]
    expected = 1 - levels / np.concatenate([[1.0], levels[:-1]])
    np.testing.assert_allclose(load(str(tmp_path / "m")).config["diffusion"]["fast_schedule"], expected, rtol=1e-12)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "[0.0001, 0.001, 0.01, 0.05, 0.2, 0.7] does not fit" in warning[0]
    assert "np.float" not in warning[0]
