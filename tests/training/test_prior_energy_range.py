"""The prior's training-set statistics: computed over the training split when a run starts, read back on resume."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import DEMO_CONFIG, make_corpus, tiny_overrides
from tf_diffwave.config import load_config, save_config
from tf_diffwave.data.corpora import read_corpus
from tf_diffwave.data.pipelines import UnreadableFiles
from tf_diffwave.training.prior_energy_range import with_prior_statistics


def test_statistics_are_the_energy_range_of_the_training_mels_and_survive_a_resume(tmp_path):
    corpus_dir = make_corpus(str(tmp_path / "corpus"), ids=("LJ001-0001", "LJ001-0002", "LJ001-0003"))
    mel_dir = tmp_path / "mels"
    mel_dir.mkdir()
    # precomputed mels of known energy: sqrt(80 exp(v)) for a frame whose every bin is v
    levels = {"LJ001-0001": [-11.5, 0.3], "LJ001-0002": [-2.0, 1.0], "LJ001-0003": [5.0]}  # the last is held out
    for utterance, values in levels.items():
        np.save(mel_dir / f"{utterance}.npy", np.repeat(np.array(values, np.float32)[:, None], 80, axis=1))
    run = str(tmp_path / "run")
    config = load_config(DEMO_CONFIG, tiny_overrides(corpus_dir, run) + [f"data.mel_dir={mel_dir}"])
    corpus = read_corpus(config["data"])
    assert corpus.train_ids == ["LJ001-0001", "LJ001-0002"]
    filled = with_prior_statistics(config, run, corpus, UnreadableFiles(corpus.train_ids))
    d = filled["diffusion"]
    assert d["energy_min"] == pytest.approx(np.sqrt(80 * np.exp(-11.5)), rel=1e-6)
    assert d["energy_max"] == pytest.approx(np.sqrt(80 * np.exp(1.0)), rel=1e-6)
    assert config["diffusion"]["energy_min"] is None  # the caller's config is left alone

    # a resumed run (one with a checkpoint) reads them from its config.json, whatever the data holds now
    saved = json.loads(json.dumps(filled))
    saved["diffusion"].update(energy_min=0.5, energy_max=2.5)
    save_config(saved, run)
    again = with_prior_statistics(config, run, corpus, UnreadableFiles(corpus.train_ids))
    assert again["diffusion"]["energy_min"] == d["energy_min"]  # no checkpoint yet: a new run computes them
    tf.train.Checkpoint(step=tf.Variable(1)).save(str(tmp_path / "run" / "ckpt"))
    resumed = with_prior_statistics(config, run, corpus, UnreadableFiles(corpus.train_ids))
    assert (resumed["diffusion"]["energy_min"], resumed["diffusion"]["energy_max"]) == (0.5, 2.5)
