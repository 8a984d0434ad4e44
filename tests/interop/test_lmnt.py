"""lmnt-com/diffwave checkpoints converted without PyTorch compute what lmnt's own code computed.

The references are tests/fixtures/lmnt-diffwave/: checkpoints saved by lmnt's code (random weights) and that
code's outputs (see the README there).
"""

import os

import numpy as np
import pytest
import soundfile

from tests.helpers import DEMO, DEMO_CONFIG, lmnt_features, make_corpus, relative_error, run_script, seeded_trainer
from tests.helpers import FIXTURES as FIXTURE_ROOT
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import load_config, with_model_of
from tf_diffwave.errors import UserError
from tf_diffwave.interop.lmnt import convert_lmnt, lmnt_weights
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.registry import build_backbone

FIXTURES = os.path.join(FIXTURE_ROOT, "lmnt-diffwave")
MODELS = ("lmnt-small", "lmnt-uncond-small")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{name: (model folder, lmnt's arrays)}; the vocoder through the command line, the generator through the API."""
    folders = {}
    for name in MODELS:
        out = str(tmp_path_factory.mktemp(name) / "model")
        pt = os.path.join(FIXTURES, f"{name}.pt")
        if name == "lmnt-small":
            convert_main(["lmnt", pt, out])
        else:
            convert_lmnt(pt, out)
        folders[name] = (out, dict(np.load(os.path.join(FIXTURES, f"{name}.npz"))))
    return folders


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("which", ["float", "int"])
def test_network_output_equals_lmnt(converted, name, which):
    folder, ref = converted[name]
    model = load(folder)
    mel = None if ref["uncond"] else ref["mel"][None]
    eps = model.denoise(ref["x"], ref[f"t_{which}"], mel)
    assert eps.shape == ref["x"].shape and eps.dtype == np.float32
    assert relative_error(eps, ref[f"eps_{which}"]) < 1e-5


def test_the_exact_step_table_would_miss_lmnt(converted):
    """Why the converter asks for lmnt's float32 step embedding: with the exact (float64) table the network output
    moves past the tolerance (README of the fixtures)."""
    folder, ref = converted["lmnt-small"]
    model = load(folder)
    model_section = model.config["model"]
    exact = build_backbone({**model.config, "model": {
        **model_section, "wavenet": {**model_section["wavenet"], "step_embedding": "float64"}}})
    exact.model.set_weights(model.backbone.model.get_weights())
    errors = [relative_error(exact.model([ref["x"], ref[f"t_{w}"].astype(np.float32), ref["mel"][None]]).numpy(),
                             ref[f"eps_{w}"]) for w in ("float", "int")]
    assert max(errors) > 1e-5


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("schedule", ["fast", "full"])
def test_reverse_process_with_lmnts_noise_equals_lmnts_audio(converted, name, schedule):
    folder, ref = converted[name]
    model = load(folder)
    _, steps = model.sampler.betas_and_steps(schedule)
    np.testing.assert_allclose(steps, ref[f"{schedule}_steps"], atol=1e-6)
    audio = model.reverse_process(ref[f"{schedule}_noise"], None if ref["uncond"] else ref["mel"][None], schedule)
    assert np.max(np.abs(audio - ref[f"{schedule}_audio"])) < 1e-4


def test_converted_config_is_lmnts(converted):
    folder, _ = converted["lmnt-small"]
    config = load(folder).config
    assert config["audio"] == {"sample_rate": 22050, "n_fft": 1024, "win_length": 1024, "hop_length": 256,
                               "n_mels": 80, "fmin": 20.0, "fmax": 11025.0, "log_floor": 1e-5, "features": "lmnt"}
    m = config["model"]["wavenet"]
    assert (m["residual_layers"], m["residual_channels"], m["dilation_cycle"]) == (4, 8, 2)
    assert not config["model"]["unconditional"]
    d = config["diffusion"]
    assert (d["num_steps"], d["beta_start"], d["beta_end"], d["clip_each_step"]) == (50, 1e-4, 0.05, True)
    assert d["fast_schedule"] == [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]
    assert load(converted["lmnt-uncond-small"][0]).config["model"]["audio_length"] == 3072


CLEAN_EXPORT_RUN = """
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
audio = fn(mel=tf.constant(np.load(sys.argv[2])))["audio"].numpy()
assert not any(m.startswith("tf_diffwave") for m in sys.modules), "not a clean process"
np.save(sys.argv[3], audio)
"""


@pytest.mark.slow
def test_export_vocodes_an_lmnt_mel_in_a_tensorflow_only_process(converted, tmp_path):
    folder, ref = converted["lmnt-small"]
    model = load(folder)
    export = os.path.join(folder, "export", str(model.step))
    assert model.step == 1001 and os.path.isfile(os.path.join(export, "saved_model.pb"))
    mel = np.stack([ref["mel"], ref["mel"][::-1]])  # lmnt's convention: values in [0, 1]
    np.save(tmp_path / "mel.npy", mel)
    run_script(CLEAN_EXPORT_RUN, export, tmp_path / "mel.npy", tmp_path / "audio.npy")
    audio = np.load(tmp_path / "audio.npy")
    assert audio.shape == (2, len(ref["mel"]) * 256) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, model.vocode(mel), atol=1e-5)  # the fast schedule, seeds 0 and 1


@pytest.mark.slow
def test_infer_and_preprocess_compute_lmnts_features(converted, tmp_path):
    from tf_diffwave.cli.infer import main as infer_main
    from tf_diffwave.cli.preprocess import main as preprocess_main

    folder, _ = converted["lmnt-small"]
    model = load(folder)
    wav = os.path.join(DEMO, "wavs", "LJ001-0002.wav")
    y, sr = soundfile.read(wav, dtype="float32")
    reference = lmnt_features(y, sr)
    infer_main(["--model-dir", folder, "--mel", wav, "--out", str(tmp_path / "out.wav")])
    written, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    expected = np.clip(model.vocode(reference), -1, 1)
    assert len(written) == len(reference) * 256
    assert np.max(np.abs(written - expected)) < 2e-3  # 16-bit output; features within 1e-4 of the reference
    corpus = make_corpus(str(tmp_path / "corpus"), ids=("LJ001-0002",))
    preprocess_main(["--config", os.path.join(folder, "config.json"), f"data.path={corpus}", "data.valid_count=0",
                     f"data.mel_dir={tmp_path / 'mels'}"])
    assert np.max(np.abs(np.load(tmp_path / "mels" / "LJ001-0002.npy") - reference)) < 1e-4


def test_keys_that_do_not_fit_are_errors_naming_the_key(converted):
    folder, _ = converted["lmnt-small"]
    config = load(folder).config
    state = read_torch_checkpoint(os.path.join(FIXTURES, "lmnt-small.pt"))["model"]
    missing = {k: v for k, v in state.items() if k != "residual_layers.2.dilated_conv.bias"}
    extra = {**state, "residual_layers.4.dilated_conv.weight": np.zeros((16, 8, 3), np.float32)}
    wrong = {**state, "skip_projection.weight": np.zeros((8, 8, 3), np.float32)}
    for broken, message in ((missing, "no key 'residual_layers.2.dilated_conv.bias'"),
                            (extra, "does not use: residual_layers.4.dilated_conv.weight"),
                            (wrong, r"'skip_projection.weight' has shape \(8, 8, 3\), expected \(8, 8, 1\)")):
        with pytest.raises(UserError, match=message):
            lmnt_weights(broken, config, "x.pt")
    converted = lmnt_weights(state, config, "x.pt")
    assert sum(len(w) for w in converted.values()) == len(build_backbone(config).model.weights)


def test_a_bare_state_dict_converts_with_overrides_for_what_it_does_not_record(tmp_path, monkeypatch, capsys):
    import tf_diffwave.interop.lmnt

    state = read_torch_checkpoint(os.path.join(FIXTURES, "lmnt-small.pt"))["model"]
    # model.state_dict() alone
    monkeypatch.setattr(tf_diffwave.interop.lmnt, "read_torch_checkpoint", lambda path: state)
    model = convert_lmnt("weights.pt", str(tmp_path / "model"), ["model.dilation_cycle=2"], export=False)
    note = capsys.readouterr().out
    assert "weights.pt does not record params" in note and "dilation_cycle_length=10" in note
    assert "residual_channels" not in note  # the shapes tell
    assert model.step == 0 and model.config["model"]["wavenet"]["residual_channels"] == 8
    ref = np.load(os.path.join(FIXTURES, "lmnt-small.npz"))
    assert relative_error(model.denoise(ref["x"], ref["t_int"], ref["mel"][None]), ref["eps_int"]) < 1e-5


def test_converting_into_a_model_folder_is_refused(converted):
    folder, _ = converted["lmnt-small"]
    with pytest.raises(UserError, match="already holds a model"):
        convert_lmnt(os.path.join(FIXTURES, "lmnt-small.pt"), folder)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_converted_weights_and_trains(converted, tmp_path):

    folder, ref = converted["lmnt-small"]
    corpus = make_corpus(str(tmp_path / "corpus"))
    overrides = [f"train.init_from={folder}", f"train.model_dir={tmp_path / 'run'}", f"data.path={corpus}",
                 "data.valid_count=1", "data.crop_frames=8", "train.batch_size=2", "train.max_steps=2",
                 "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]
    config = with_model_of(load_config(DEMO_CONFIG, overrides), overrides)  # the demo's model is another
    trainer = seeded_trainer(config)
    assert trainer.config["audio"]["features"] == "lmnt"
    assert trainer.config["model"]["wavenet"]["residual_channels"] == 8
    for backbone in (trainer.backbone, trainer.ema_backbone):  # after 0 steps: lmnt's function
        eps = backbone.model([ref["x"], ref["t_float"], ref["mel"][None]]).numpy()
        assert relative_error(eps, ref["eps_float"]) < 1e-5
    trainer.train()
    assert trainer.step.numpy() == 2 and trainer.optimizer.iterations.numpy() == 2
    tuned = load(str(tmp_path / "run"))
    assert tuned.step == 2 and tuned.config["audio"]["features"] == "lmnt"
    assert relative_error(tuned.denoise(ref["x"], ref["t_float"], ref["mel"][None]), ref["eps_float"]) > 1e-4
