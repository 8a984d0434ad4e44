"""Shared fixtures: a tiny corpus copied from the bundled demo data and a tiny trained model."""

import glob
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

DEMO = os.path.join(REPO, "data", "ljspeech-demo")
DEMO_CONFIG = os.path.join(REPO, "configs", "demo.json")
BASE_CONFIG = os.path.join(REPO, "configs", "ljspeech.json")
SC09_DEMO = os.path.join(REPO, "data", "sc09-demo")
SC09_DEMO_CONFIG = os.path.join(REPO, "configs", "sc09_demo.json")
SC09_SPEAKERS = ("espeak_engb_m1", "espeak_enus_f2", "flite_slt", "espeak_enus_m1", "espeak_en029_f1",
                 "espeak_engb_m3")


def make_corpus(folder, ids=("LJ001-0001", "LJ001-0002", "LJ001-0003")):
    """An LJSpeech-layout corpus holding a few of the bundled utterances."""
    os.makedirs(os.path.join(folder, "wavs"), exist_ok=True)
    with open(os.path.join(folder, "metadata.csv"), "w") as f:
        for i in ids:
            shutil.copy(os.path.join(DEMO, "wavs", f"{i}.wav"), os.path.join(folder, "wavs", f"{i}.wav"))
            f.write(f"{i}|text|text\n")
    return folder


def tiny_overrides(corpus, model_dir):
    """Overrides that make configs/demo.json a model that trains in seconds."""
    return [f"data.path={corpus}", "data.valid_count=1", "data.crop_frames=8",
            "model.residual_channels=8", "model.residual_layers=2", "model.dilation_cycle=2",
            "model.embed_dim=16", f"train.model_dir={model_dir}", "train.batch_size=2",
            "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]


WAVEGRAD_DEMO_CONFIG = os.path.join(REPO, "configs", "wavegrad_demo.json")


def tiny_wavegrad_overrides(corpus, model_dir):
    """Overrides that make configs/wavegrad_demo.json a WaveGrad that trains in seconds."""
    return [f"data.path={corpus}", "data.valid_count=1", "data.crop_frames=4",
            "model.wavegrad.upsampling_preconv_out_channels=16", "model.wavegrad.upsampling_out_channels=[8,8,8,8,8]",
            "model.wavegrad.downsampling_preconv_out_channels=8", "model.wavegrad.downsampling_out_channels=[8,8,8,8]",
            f"train.model_dir={model_dir}", "train.batch_size=2", "train.save_every=2", "train.sample_every=1000",
            "train.log_every=1", "train.export=false"]


def make_sc09_corpus(folder, digits=("zero", "one"), speakers=SC09_SPEAKERS[:3]):
    """An SC09-layout corpus holding some of the bundled clips (no list files: splits come from the hash)."""
    for digit in digits:
        os.makedirs(os.path.join(folder, digit), exist_ok=True)
        for speaker in speakers:
            source = glob.glob(os.path.join(SC09_DEMO, digit, f"{speaker}_nohash_0.*"))[0]
            shutil.copy(source, os.path.join(folder, digit, os.path.basename(source)))
    return folder


def tiny_sc09_overrides(corpus, model_dir):
    """Overrides that make configs/sc09_demo.json an unconditional model that trains in seconds."""
    return [f"data.path={corpus}", "data.valid_percent=0", "data.test_percent=0", "model.audio_length=2000",
            "model.residual_channels=8", "model.residual_layers=2", "model.dilation_cycle=2",
            "model.embed_dim=16", f"train.model_dir={model_dir}", "train.batch_size=2",
            "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]


def overfit_losses(config, steps=150):
    """Train a fresh model for `steps` steps; return the mean loss of the first and of the last tenth."""
    import numpy as np
    import tensorflow as tf

    from tf_diffwave.trainer import Trainer

    trainer = Trainer(config)
    iterator = iter(trainer.dataset(0))
    step = tf.function(trainer.train_step)
    losses = [float(step(iterator)[0]) for _ in range(steps)]
    return np.mean(losses[: steps // 10]), np.mean(losses[-(steps // 10):])


@pytest.fixture(scope="session")
def tiny_sc09_run(tmp_path_factory):
    """A tiny unconditional model trained for 2 steps (with an export), as a run folder."""
    from tf_diffwave.cli import train_main

    corpus = make_sc09_corpus(str(tmp_path_factory.mktemp("sc09")))
    model_dir = str(tmp_path_factory.mktemp("sc09run"))
    train_main(["--config", SC09_DEMO_CONFIG, *tiny_sc09_overrides(corpus, model_dir), "train.max_steps=2",
                "train.export=true", "train.sample_every=2"])
    return model_dir


def read_summaries(log_dir):
    """TensorBoard events under `log_dir` as {tag: {step: value}}; the value is a float for scalars, else None."""
    import tensorflow as tf

    found = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, {})[event.step] = float(array) if array.ndim == 0 else None
    return found


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    return make_corpus(str(tmp_path_factory.mktemp("corpus")))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus):
    """A tiny model trained for 2 steps (with an export), as a run folder."""
    from tf_diffwave.cli import train_main

    model_dir = str(tmp_path_factory.mktemp("run"))
    train_main(["--config", DEMO_CONFIG,
                *tiny_overrides(tiny_corpus, model_dir), "train.max_steps=2", "train.export=true"])
    return model_dir
