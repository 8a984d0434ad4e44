"""A family registered from outside the package trains, resumes, vocodes and exports through the same commands."""

import os

import numpy as np
import pytest

from tests.helpers import CLEAN_LOAD, DEMO_CONFIG, random_log_mel, run_script, tiny_overrides
from tests.models.toy_family import FAMILY
from tf_diffwave.config import load_config
from tf_diffwave.errors import UserError
from tf_diffwave.models import registry


@pytest.fixture
def toy_registered():
    registry.register(FAMILY)
    yield FAMILY
    registry.unregister(FAMILY.name)


def test_a_registered_family_owns_its_config_section(toy_registered):
    config = load_config(DEMO_CONFIG, ["model.backbone=toy", "model.channels=4"])
    assert config["model"]["toy"] == {"channels": 4} and "toy" in registry.names()
    with pytest.raises(UserError, match="config key 'model.toy.channels' must be at least 1"):
        load_config(DEMO_CONFIG, ["model.backbone=toy", "model.toy.channels=0"])
    with pytest.raises(UserError, match="config key 'model.unconditional' must be false for 'toy'"):
        load_config(DEMO_CONFIG, ["model.backbone=toy", "model.unconditional=true"])


def test_a_family_outside_the_package_unknown_until_registered():
    with pytest.raises(UserError, match="config key 'model.backbone' must be one of wavenet, sashimi, wavegrad, "
                                        "fregrad, ar_sashimi, got 'toy'"):
        load_config(DEMO_CONFIG, ["model.backbone=toy"])


@pytest.mark.slow
def test_a_registered_family_trains_vocodes_and_exports(toy_registered, tiny_corpus, tmp_path):
    from tf_diffwave import load
    from tf_diffwave.cli.train import main as train_main

    run = str(tmp_path / "run")
    overrides = [*tiny_overrides(tiny_corpus, run), "model.backbone=toy", "train.export=true"]  # WaveNet keys first
    train_main(["--config", DEMO_CONFIG, *overrides, "train.max_steps=2"])
    train_main(["--config", DEMO_CONFIG, *overrides, "train.max_steps=3"])
    model = load(run)
    assert model.step == 3 and model.family is FAMILY and model.config["model"]["toy"] == {"channels": 8}
    mel = random_log_mel(0, (2, 9, 80))
    audio = model.vocode(mel, seed=3)
    assert audio.shape == (2, 9 * 256) and np.all(np.isfinite(audio))
    np.testing.assert_array_equal(model.vocode(mel[1], seed=4), audio[1])  # example b is drawn with seed + b
    export = os.path.join(run, "export", "3")
    assert "OK" in run_script(CLEAN_LOAD, export)
