"""Shared fixtures: a tiny corpus copied from the bundled demo data and a tiny trained model."""

import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import pytest  # noqa: E402

DEMO = os.path.join(REPO, "data", "ljspeech-demo")
DEMO_CONFIG = os.path.join(REPO, "configs", "demo.json")
BASE_CONFIG = os.path.join(REPO, "configs", "ljspeech.json")


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
