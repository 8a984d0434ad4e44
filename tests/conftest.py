"""Fixtures (a tiny corpus, tiny trained runs) and the --slow switch: `python -m pytest` runs the fast selection,
`python -m pytest --slow` everything."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.helpers import (  # noqa: E402
    DEMO_CONFIG,
    SC09_DEMO_CONFIG,
    WAVEGRAD_DEMO_CONFIG,
    make_corpus,
    make_sc09_corpus,
    tiny_overrides,
    tiny_sc09_overrides,
    tiny_wavegrad_overrides,
)


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (training runs, "
                                                         "subprocesses, exports): the whole suite")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(scope="session")
def tiny_sc09_run(tmp_path_factory):
    """A tiny unconditional model trained for 2 steps (with an export), as a run folder."""
    from tf_diffwave.cli.train import main as train_main

    corpus = make_sc09_corpus(str(tmp_path_factory.mktemp("sc09")))
    model_dir = str(tmp_path_factory.mktemp("sc09run"))
    train_main(["--config", SC09_DEMO_CONFIG, *tiny_sc09_overrides(corpus, model_dir), "train.max_steps=2",
                "train.export=true", "train.sample_every=2"])
    return model_dir


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    return make_corpus(str(tmp_path_factory.mktemp("corpus")))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus):
    """A tiny model trained for 2 steps (with an export), as a run folder."""
    from tf_diffwave.cli.train import main as train_main

    model_dir = str(tmp_path_factory.mktemp("run"))
    train_main(["--config", DEMO_CONFIG,
                *tiny_overrides(tiny_corpus, model_dir), "train.max_steps=2", "train.export=true"])
    return model_dir


@pytest.fixture(scope="session")
def tiny_wavegrad_run(tmp_path_factory, tiny_corpus):
    """A tiny WaveGrad trained for 2 steps (with an export): (its corpus, its run folder, the overrides)."""
    from tf_diffwave.cli.train import main as train_main

    model_dir = str(tmp_path_factory.mktemp("wavegrad"))
    overrides = tiny_wavegrad_overrides(tiny_corpus, model_dir)
    train_main(["--config", WAVEGRAD_DEMO_CONFIG, *overrides, "train.max_steps=2", "train.export=true",
                "train.sample_every=2"])
    return tiny_corpus, model_dir, overrides
