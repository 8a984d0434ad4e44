"""LiteRT exports: the .tflite model runs with ai-edge-litert and numpy alone, and gives the SavedModel's audio for
the same seeds."""

import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tf_diffwave
from tests.helpers import DEMO_CONFIG, LITERT_TOLERANCE, run_litert
from tf_diffwave.cli.export import main as export_main
from tf_diffwave.errors import UserError
from tf_diffwave.serving.litert import seeded_noise

needs_litert = pytest.mark.skipif(not importlib.util.find_spec("ai_edge_litert"),
                                  reason="ai-edge-litert is not installed (pip install -e '.[litert]')")

@pytest.fixture(scope="module")
def tiny_litert(tiny_run, tmp_path_factory):
    """(the tiny vocoder's LiteRT file, exported once through the command line, and the model itself)."""
    path = str(tmp_path_factory.mktemp("litert") / "vocoder.tflite")
    export_main(["litert", "--model-dir", tiny_run, "--out", path])
    return path, tf_diffwave.load(tiny_run)


@pytest.mark.slow
@needs_litert
def test_litert_vocoder_gives_the_savedmodels_audio_for_the_same_seeds(tiny_litert, tmp_path):
    path, model = tiny_litert
    mel = np.random.default_rng(1).normal(-5, 2, (2, 11, model.n_mels)).astype(np.float32)
    served = tf.saved_model.load(model.export(str(tmp_path / "export"))).signatures["serving_default"]
    expected = served(mel=tf.constant(mel))["audio"].numpy()
    steps = len(model.sampler.betas_and_steps("fast")[0])
    noise = seeded_noise(np.arange(2), steps, mel.shape[1] * model.config["audio"]["hop_length"]).numpy()
    audio = run_litert(path, tmp_path, noise=noise, mel=mel)
    assert audio.shape == expected.shape and np.abs(expected).max() > 0.01
    np.testing.assert_allclose(audio, expected, atol=LITERT_TOLERANCE)


@pytest.mark.slow
@needs_litert
def test_the_litert_runner_names_what_does_not_fit_in_one_line_and_runs_again_after(tiny_litert):
    from tf_diffwave.serving.litert_runtime import LiteRTModel

    path, model = tiny_litert
    steps, hop, bands = len(model.sampler.betas_and_steps("fast")[0]), model.config["audio"]["hop_length"], model.n_mels
    runner = LiteRTModel(path, 1)
    mel = np.full((1, 4, bands), -5.0, np.float32)
    noise = np.zeros((steps, 1, 4 * hop), np.float32)
    cases = [((np.zeros((50, 1, 4 * hop)), mel), f"noise holds 50 steps .*schedule has {steps}"),
             ((noise, np.zeros((1, 4, bands + 1))), f"mel has {bands + 1} bands; this model takes {bands}"),
             ((np.zeros((steps, 2, 4 * hop)), mel), "mel holds a batch of 1, noise of 2"),
             ((np.zeros((steps, 1, 4 * hop - 1)), mel), f"noise of {4 * hop - 1} samples for 4 mel frames"),
             ((np.zeros((steps, 1, 4 * (hop + 1))), mel), "do not fit this model"),
             ((np.zeros((steps, 4 * hop)), mel), "noise has shape .* takes 3 axes"),
             ((noise, None), "this model takes mel and noise, not noise")]
    for (bad_noise, bad_mel), message in cases:
        with pytest.raises(UserError, match=message) as caught:
            runner(bad_noise, bad_mel)
        assert "\n" not in str(caught.value)
    assert runner(noise, mel).shape == (1, 4 * hop)


@pytest.mark.slow
@needs_litert
def test_litert_generator_gives_the_reverse_process_audio(tiny_sc09_run, tmp_path):
    path = str(tmp_path / "generator.tflite")
    export_main(["litert", "--model-dir", tiny_sc09_run, "--out", path])
    model = tf_diffwave.load(tiny_sc09_run)
    steps = len(model.sampler.betas_and_steps("fast")[0])
    noise = np.random.default_rng(2).normal(size=(steps, 2, model.config["model"]["audio_length"]))
    expected = model.reverse_process(noise.astype(np.float32))
    np.testing.assert_allclose(run_litert(path, tmp_path, noise=noise.astype(np.float32)), expected,
                               atol=LITERT_TOLERANCE)


def test_export_rejects_a_precision_litert_does_not_take(tiny_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        export_main(["litert", "--model-dir", tiny_run, "--precision", "bfloat16", "--out", str(tmp_path / "m.tflite")])
    assert stop.value.code == 2 and "invalid choice: 'bfloat16'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "m.tflite")


def test_an_autoregressive_model_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "ar"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": {"backbone": "ar_sashimi", "unconditional": True,
                                                              "audio_length": 512}, "data": {"kind": "sc09"}}))
    with pytest.raises(UserError, match="autoregressive SaShiMi models sample with a loop of their own"):
        export_main(["litert", "--model-dir", str(folder), "--out", str(tmp_path / "m.tflite")])


def litert_operations(tmp_path, overrides):
    """How many of each operator an int8 LiteRT vocoder of configs/demo.json with `overrides` (random weights)
    holds."""
    import collections

    from ai_edge_litert.interpreter import Interpreter

    from tf_diffwave.config import load_config
    from tf_diffwave.interop.model_folder import write_model_folder
    from tf_diffwave.serving.litert import export_litert

    folder = tmp_path / "_".join(overrides)
    model = write_model_folder(load_config(DEMO_CONFIG, overrides), None, 0, str(folder), DEMO_CONFIG, export=False)
    path = export_litert(model, str(folder / "m.tflite"), "int8")[0]
    return collections.Counter(op["op_name"] for op in Interpreter(model_path=path)._get_ops_details())


@pytest.mark.slow
@needs_litert
def test_the_residual_layers_of_a_litert_wavenet_need_no_reshape(tmp_path):
    """XNNPACK takes no Squeeze of a tensor whose batch and length are both dynamic: a reshape per residual layer
    would leave the layers' work outside it. Two more layers per step add their convolutions, and no reshape."""
    two, four = (litert_operations(tmp_path, [f"model.residual_layers={n}", "model.dilation_cycle=2",
                                              "model.residual_channels=4", "diffusion.prior=standard"])
                  for n in (2, 4))
    steps = (four["CONV_2D"] - two["CONV_2D"]) // 8  # 4 convolutions per layer and step
    assert steps >= 2 and four["CONV_2D"] - two["CONV_2D"] == 8 * steps
    for reshape in ("SQUEEZE", "EXPAND_DIMS", "RESHAPE"):
        assert four[reshape] == two[reshape], reshape
