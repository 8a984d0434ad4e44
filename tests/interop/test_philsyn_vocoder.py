"""philsyn/DiffWave-Vocoder's conditional LJSpeech DiffWave, converted without PyTorch, computes what that code
computed in float64, from its legacy-format checkpoint as from a zip one.

The references are tests/fixtures/philsyn-diffwave-vocoder/: a checkpoint saved by the original code (random
weights, weight norms moved off their initial values), its config JSON, and the original's features and outputs
(see the README there).
"""

import os

import numpy as np
import pytest

from tests.helpers import FIXTURES as FIXTURE_ROOT
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import validate
from tf_diffwave.data.features import LogMel
from tf_diffwave.errors import UserError
from tf_diffwave.interop.philsyn_vocoder import philsyn_vocoder_config
from tf_diffwave.models.registry import build_backbone

FIXTURES = os.path.join(FIXTURE_ROOT, "philsyn-diffwave-vocoder")
LEGACY = os.path.join(FIXTURES, "philsyn-vocoder-small-legacy.pkl")
ZIPPED = os.path.join(FIXTURES, "philsyn-vocoder-small.pt")
CONFIG = os.path.join(FIXTURES, "philsyn-vocoder-small.json")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "philsyn-vocoder-small.npz")))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture's model folder, converted from the legacy file (what the published checkpoints are in)."""
    out = str(tmp_path_factory.mktemp("philsyn") / "model")
    convert_main(["philsyn-vocoder", LEGACY, CONFIG, out, "--no-export"])
    return load(out)


def test_the_features_are_tacotron2s(converted, reference):
    log_mel = LogMel.from_config(converted.config["audio"])
    full = log_mel(reference["audio_full"].astype(np.float32) / 32768.0).numpy()
    assert np.max(np.abs(full.T - reference["mel_full"])) < 1e-4
    crops = log_mel(reference["audio"].astype(np.float32) / 32768.0).numpy()
    assert np.max(np.abs(np.transpose(crops, (0, 2, 1)) - reference["mel"])) < 1e-4


def test_network_output_equals_the_originals_and_not_the_corrected_code(converted, reference):
    x, t, mel = reference["x"][:, 0], reference["t"][:, 0], np.transpose(reference["mel"], (0, 2, 1))
    eps = np.concatenate([converted.denoise(x[b:b + 1], float(t[b]), mel[b:b + 1]) for b in range(len(t))])
    assert np.max(np.abs(eps - reference["eps"][:, 0])) < 1e-5 * max(1.0, np.max(np.abs(reference["eps"])))
    # the in-place `h += part_t` that the weights were trained with is kept: `h = h + part_t` is 4.6e-2 away
    assert np.max(np.abs(eps - reference["eps_noalias"][:, 0])) > 1e-3


def test_each_layers_upsampler_gives_the_originals_upsampled_mel(converted, reference):
    import keras

    conditioner = converted.backbone.conditioner
    upsampler = keras.Model(conditioner.input, conditioner.get_layer("layer_0_mel_upsampler_2").output)
    up = upsampler(np.transpose(reference["mel"][:1], (0, 2, 1))).numpy()[0, :256, :, 0]
    np.testing.assert_allclose(np.where(up > 0, up, 0.4 * up).T, reference["mel_up0"], atol=1e-6)  # its leaky ReLU


def test_the_50_step_reverse_process_with_the_originals_draws_equals_its_audio(converted, reference):
    noise = np.concatenate([reference["sample_z"][1:, :, 0], reference["sample_xT"][None, :, 0]])
    audio = converted.reverse_process(noise, np.transpose(reference["sample_mel"], (0, 2, 1)), steps="full")
    assert np.max(np.abs(audio - reference["sample_x0"][:, 0])) < 1e-4


def test_the_converted_config_is_philsyns(converted):
    d = converted.config
    w, a = d["model"]["wavenet"], d["audio"]
    assert (w["residual_channels"], w["residual_layers"], w["dilation_cycle"], w["mel_upsampler"]) == \
        (16, 4, 2, "per_layer")
    assert (a["sample_rate"], a["hop_length"], a["fmin"], a["fmax"], a["features"]) == \
        (22050, 256, 0.0, 8000.0, "tacotron2")
    assert not d["model"]["unconditional"] and d["diffusion"]["num_steps"] == 50


def test_the_zip_and_legacy_files_convert_to_the_same_model(converted, reference, tmp_path):
    convert_main(["philsyn-vocoder", ZIPPED, CONFIG, str(tmp_path / "zipped"), "--no-export"])
    zipped = load(str(tmp_path / "zipped"))
    x, mel = reference["x"][:1, 0], np.transpose(reference["mel"][:1], (0, 2, 1))
    np.testing.assert_array_equal(zipped.denoise(x, 3.0, mel), converted.denoise(x, 3.0, mel))


def test_the_published_model_builds_to_its_published_size():
    # the repository's config_64.json (exp/ch64_T50_betaT0.05): 2,637,305 parameters, 11,708 of them weight-norm
    # gains, which the converter folds into the weights
    source = {"diffusion_config": {"T": 50, "beta_0": 1e-4, "beta_T": 0.05},
              "wavenet_config": {"in_channels": 1, "res_channels": 64, "skip_channels": 64, "out_channels": 1,
                                 "num_res_layers": 30, "dilation_cycle": 10, "diffusion_step_embed_dim_in": 128,
                                 "diffusion_step_embed_dim_mid": 512, "diffusion_step_embed_dim_out": 512},
              "trainset_config": {"segment_length": 16000, "sampling_rate": 22050, "filter_length": 1024,
                                  "hop_length": 256, "win_length": 1024, "mel_fmin": 0.0, "mel_fmax": 8000.0}}
    config = philsyn_vocoder_config(source, "config_64.json")
    validate(config)
    assert build_backbone(config).model.count_params() == 2_637_305 - 11_708


def test_the_other_converters_name_this_one(tmp_path):
    with pytest.raises(UserError, match="a philsyn/DiffWave-Vocoder \\(conditional\\) WaveNet DiffWave checkpoint, "
                                        "not an RF5/DiffWave-unconditional .* 'tf-diffwave convert philsyn-vocoder"):
        convert_main(["rf5-diffwave", ZIPPED, CONFIG, str(tmp_path / "a")])
    with pytest.raises(UserError, match="'tf-diffwave convert philsyn-vocoder"):
        convert_main(["lmnt", LEGACY, str(tmp_path / "b")])
