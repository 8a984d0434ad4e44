"""PriorGrad vocoder checkpoints converted without PyTorch compute what PriorGrad's own code computed.

The references are tests/fixtures/priorgrad/: a checkpoint saved by PriorGrad's code (random weights), the
statistics its preprocessing wrote, and that code's outputs (see the README there).
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import DEMO_CONFIG, make_corpus, relative_error, seeded_trainer
from tests.helpers import FIXTURES as FIXTURE_ROOT
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import load_config, with_model_of
from tf_diffwave.diffusion.objectives import TrainingObjective
from tf_diffwave.diffusion.prior import Prior
from tf_diffwave.diffusion.schedules import Schedule
from tf_diffwave.errors import UserError
from tf_diffwave.interop.lmnt import convert_lmnt
from tf_diffwave.interop.priorgrad import convert_priorgrad, priorgrad_config

FIXTURES = os.path.join(FIXTURE_ROOT, "priorgrad")
CHECKPOINT = os.path.join(FIXTURES, "priorgrad-small.pt")
STATS = os.path.join(FIXTURES, "priorgrad-small-stats")
SCHEDULES = {"fast6": "priorgrad6", "fast12": "priorgrad12", "full": "full"}


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "priorgrad-small.npz")))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture's model folder, converted through the command line."""
    out = str(tmp_path_factory.mktemp("priorgrad") / "model")
    convert_main(["priorgrad", CHECKPOINT, STATS, out, "--no-export"])
    return out


def test_the_config_records_priorgrads_features_prior_and_statistics(converted, reference):
    d = load(converted).config
    assert d["audio"]["features"] == "priorgrad" and (d["audio"]["fmin"], d["audio"]["fmax"]) == (0.0, 8000.0)
    prior = d["diffusion"]
    assert (prior["prior"], prior["std_min"], prior["max_energy_override"], prior["loss"]) == \
        ("priorgrad", 0.1, 4.0, "l2")
    assert prior["energy_min"] == float(reference["energy_min"])
    assert prior["energy_max"] == float(reference["energy_max_train"])
    assert Prior.from_config(d).energy_max == float(reference["energy_max_used"])


def test_features_equal_priorgrads(converted, reference):
    mel = load(converted).features(reference["audio"])
    assert mel.shape == reference["mel"].shape  # samples / hop frames
    assert np.max(np.abs(mel - reference["mel"])) < 1e-4


def test_prior_std_equals_priorgrads(converted, reference):
    model = load(converted)
    assert np.max(np.abs(model.prior_std(reference["mel"]) - reference["std"])) < 1e-6
    frames = model.synthesizer.prior.frame_std(tf.constant(reference["mel"][None])).numpy()[0]
    assert np.max(np.abs(frames - reference["std_frames"])) < 1e-6


@pytest.mark.parametrize("which", ["float", "int"])
def test_network_output_equals_priorgrads(converted, reference, which):
    eps = load(converted).denoise(reference["x"], reference[f"t_{which}"], reference["mel"][None])
    assert relative_error(eps, reference[f"eps_{which}"]) < 1e-5


def test_training_loss_equals_priorgrads(converted, reference):
    """The training objective, given PriorGrad's step and (standard-normal) draw, gives its noisy audio and its
    `scaled_mse_loss` of the network's output."""
    model = load(converted)
    config = model.config
    objective = TrainingObjective(Schedule.from_config(config["diffusion"]), "step", "l2", Prior.from_config(config))
    t = int(reference["loss_t"][0])
    batch = {"audio": reference["audio"][None], "noise": (reference["loss_eps"] / reference["std"])[None],
             "mel": reference["mel"][None], "u": np.array([(t + 0.5) / 50], np.float32), "v": np.zeros(1, np.float32)}
    batch = {k: tf.constant(v) for k, v in batch.items()}
    noisy, step, mel = objective.model_inputs(batch)
    assert step.numpy().tolist() == [t]
    assert np.max(np.abs(noisy.numpy()[0] - reference["loss_noisy"])) < 1e-6
    loss = objective.per_example_loss(batch, model.backbone.model([noisy, step, mel])).numpy()[0]
    assert abs(loss - reference["loss"]) / reference["loss"] < 1e-5


@pytest.mark.parametrize("schedule", ["fast6", *(pytest.param(name, marks=pytest.mark.slow)
                                                  for name in ("fast12", "full"))])
def test_reverse_process_with_priorgrads_draws_equals_priorgrads_audio(converted, reference, schedule):
    model = load(converted)
    betas, steps = model.sampler.betas_and_steps(SCHEDULES[schedule])
    np.testing.assert_array_equal(betas, reference[f"{schedule}_betas"])
    np.testing.assert_allclose(steps, reference[f"{schedule}_steps"], atol=1e-6)
    audio = model.reverse_process(reference[f"{schedule}_noise"], reference["mel"][None], SCHEDULES[schedule])
    assert np.max(np.abs(audio - reference[f"{schedule}_audio"])) < 1e-4


def test_statistics_from_the_stats_folder_itself_or_from_overrides(tmp_path, reference):
    inner = convert_priorgrad(CHECKPOINT, os.path.join(STATS, "stats_priorgrad"), str(tmp_path / "a"), export=False)
    assert inner.config["diffusion"]["energy_min"] == float(reference["energy_min"])
    given = convert_priorgrad(CHECKPOINT, str(tmp_path / "nowhere"), str(tmp_path / "b"),
                              ["energy_min=0.05", "diffusion.energy_max=3.5"], export=False)
    assert (given.config["diffusion"]["energy_min"], given.config["diffusion"]["energy_max"]) == (0.05, 3.5)
    with pytest.raises(UserError, match=r"nowhere: statistics folder not found \(give the folder holding "
                                        r"stats_priorgrad/, or energy_min= and energy_max=\)"):
        convert_priorgrad(CHECKPOINT, str(tmp_path / "nowhere"), str(tmp_path / "c"), export=False)
    os.makedirs(tmp_path / "half" / "stats_priorgrad")
    shutil.copy(os.path.join(STATS, "stats_priorgrad", "energy_min_train.npy"), tmp_path / "half" / "stats_priorgrad")
    with pytest.raises(UserError, match="energy_max_train.npy: PriorGrad statistics file not found"):
        convert_priorgrad(CHECKPOINT, str(tmp_path / "half"), str(tmp_path / "d"), export=False)


@pytest.mark.parametrize("flag", ["condition_prior", "condition_prior_global"])
def test_unsupported_prior_conditioning_is_refused_naming_the_param(flag):
    with pytest.raises(UserError, match=f"ckpt.pt: params.{flag} = True is not supported"):
        priorgrad_config({flag: True}, {"energy_min": 0.03, "energy_max": 4.5}, "ckpt.pt")


def test_a_priorgrad_checkpoint_given_to_the_lmnt_converter_names_the_right_command(tmp_path):
    with pytest.raises(UserError, match="a PriorGrad .* checkpoint, not an lmnt-com/diffwave one; convert it with "
                                        "'tf-diffwave convert priorgrad"):
        convert_lmnt(CHECKPOINT, str(tmp_path / "out"), export=False)


@pytest.mark.slow
def test_fine_tuning_keeps_the_prior_and_its_statistics(converted, tmp_path):
    corpus = make_corpus(str(tmp_path / "corpus"))
    run = str(tmp_path / "run")
    overrides = [f"train.init_from={converted}", f"data.path={corpus}", "data.valid_count=1", "data.crop_frames=8",
                 f"train.model_dir={run}", "train.batch_size=2", "train.max_steps=1", "train.export=false",
                 "train.sample_every=1000"]
    config = with_model_of(load_config(DEMO_CONFIG, overrides), overrides)
    seeded_trainer(config).train()
    with open(os.path.join(run, "config.json")) as f:
        saved = json.load(f)["diffusion"]
    source = load(converted).config["diffusion"]
    for key in ("prior", "std_min", "max_energy_override", "energy_min", "energy_max", "loss"):
        assert saved[key] == source[key], key
