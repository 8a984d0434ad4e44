"""Faults a long run meets: a non-finite batch, a truncated checkpoint, files that go bad mid-epoch."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

import tf_diffwave.training.trainer as trainer_module
from tests.helpers import (
    DEMO_CONFIG,
    SC09_DEMO_CONFIG,
    make_sc09_corpus,
    read_summaries,
    seeded_trainer,
    tiny_overrides,
    tiny_sc09_overrides,
)
from tf_diffwave.config import load_config
from tf_diffwave.data.pipelines import UnreadableFiles
from tf_diffwave.errors import UserError


def poison_examples_from(monkeypatch, first):
    """Make the audio of every training example from stream position `first` on NaN."""
    clean = trainer_module.add_training_noise

    def poisoned(index, example, seed):
        example = clean(index, example, seed)
        example["audio"] = tf.where(index >= first, tf.fill(tf.shape(example["audio"]), np.nan), example["audio"])
        return example

    monkeypatch.setattr(trainer_module, "add_training_noise", poisoned)


def weights(model):
    return [v.numpy() for v in model.weights]


def test_a_nan_batch_is_skipped_and_changes_nothing(tmp_path, tiny_corpus, monkeypatch):
    poison_examples_from(monkeypatch, 4)  # batch size 2: the third batch is the first poisoned one
    trainer = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, str(tmp_path / "run"))))
    batches = iter(trainer.dataset(0))
    step = tf.function(trainer.train_step)
    for _ in range(2):
        assert bool(step(batches)[2])
    before = weights(trainer.backbone.model), weights(trainer.ema_backbone.model), trainer.optimizer.iterations.numpy()
    loss, norm, applied, _ = step(batches)
    assert not np.isfinite(loss.numpy()) and not bool(applied)
    after = weights(trainer.backbone.model), weights(trainer.ema_backbone.model), trainer.optimizer.iterations.numpy()
    for a, b in zip(before[0] + before[1], after[0] + after[1]):
        np.testing.assert_array_equal(a, b)
    assert before[2] == after[2] == 2 and int(trainer.step.numpy()) == 3


@pytest.mark.slow
def test_non_finite_steps_in_a_row_stop_the_run_and_keep_the_checkpoints(tmp_path, tiny_corpus, monkeypatch):
    poison_examples_from(monkeypatch, 6)  # steps 1-3 are fine; every step from 4 on is NaN
    model_dir = str(tmp_path / "run")
    config = load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, model_dir) + [
        "train.max_steps=20", "train.max_nonfinite_steps=3"])
    with pytest.raises(UserError) as stop:
        seeded_trainer(config).train()
    assert "step 6" in str(stop.value) and "3 steps in a row" in str(stop.value)
    # step 4 was skipped but saved as usual (its weights are those of step 3); nothing is saved on stopping
    assert str(stop.value).endswith(f"the last checkpoint is {model_dir}/ckpt-4")
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")
    assert read_summaries(os.path.join(model_dir, "logs"))["skipped_steps"] == {4: 1.0, 5: 2.0, 6: 3.0}
    monkeypatch.undo()
    resumed = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, model_dir)))
    assert resumed.restore().endswith("ckpt-4")
    assert all(np.all(np.isfinite(w)) for w in weights(resumed.backbone.model))


@pytest.mark.slow
@pytest.mark.parametrize("part", ["index", "data-00000-of-00001"])
def test_a_truncated_checkpoint_falls_back_to_the_one_before(tmp_path, tiny_corpus, capsys, part):
    model_dir = str(tmp_path / "run")
    overrides = tiny_overrides(tiny_corpus, model_dir)
    seeded_trainer(load_config(DEMO_CONFIG, overrides + ["train.max_steps=4"])).train()
    reference = seeded_trainer(load_config(DEMO_CONFIG, overrides))
    reference.checkpoint.restore(os.path.join(model_dir, "ckpt-2"))
    path = os.path.join(model_dir, f"ckpt-4.{part}")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    capsys.readouterr()
    trainer = seeded_trainer(load_config(DEMO_CONFIG, overrides + ["train.max_steps=4"]))
    assert trainer.restore().endswith("ckpt-2")
    warning = capsys.readouterr().err
    assert f"warning: {model_dir}/ckpt-4: cannot read this checkpoint" in warning
    assert int(trainer.step.numpy()) == 2
    for a, b in zip(weights(reference.backbone.model), weights(trainer.backbone.model)):
        np.testing.assert_array_equal(a, b)

    with open(os.path.join(model_dir, "ckpt-2.index"), "r+b") as f:
        f.truncate(10)
    with pytest.raises(UserError, match="none of the checkpoints ckpt-4, ckpt-2 can be read"):
        seeded_trainer(load_config(DEMO_CONFIG, overrides)).restore()


def test_a_clip_that_goes_bad_mid_epoch_is_skipped_and_counted(tmp_path, capsys):
    corpus = make_sc09_corpus(str(tmp_path / "c"), digits=("zero", "one", "two"))
    trainer = seeded_trainer(load_config(SC09_DEMO_CONFIG, tiny_sc09_overrides(corpus, str(tmp_path / "run"))))
    batches = iter(trainer.dataset(0))
    next(batches)
    victim = glob.glob(os.path.join(corpus, "one", "*.flac"))[0]
    with open(victim, "wb") as f:
        f.write(b"fLaC and then nothing")
    for _ in range(30):  # 60 random draws from 9 clips: the broken one comes up
        assert np.all(np.isfinite(next(batches)["audio"].numpy()))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 1 and os.path.basename(victim) in warnings[0] and trainer.files.count == 1


def test_a_corpus_that_mostly_fails_mid_run_stops_with_an_error_and_saves(tmp_path, capsys, monkeypatch):
    corpus = make_sc09_corpus(str(tmp_path / "c"), digits=("zero", "one"))
    model_dir = str(tmp_path / "run")
    trainer = seeded_trainer(load_config(SC09_DEMO_CONFIG,
                                         tiny_sc09_overrides(corpus, model_dir) + ["train.max_steps=50"]))
    monkeypatch.setattr(UnreadableFiles, "check_all", lambda self, paths: None)  # the files break after the check
    for path in glob.glob(os.path.join(corpus, "*", "*.flac"))[:4]:
        os.remove(path)
    with pytest.raises(UserError, match="4 of the 6 training files are unreadable, the last one: .*not found"):
        trainer.train()


@pytest.mark.slow
def test_a_state_file_without_timestamps_resumes_its_newest_checkpoint(tmp_path, tiny_corpus):
    """A run folder whose `checkpoint` file lists its checkpoints without the timestamps TensorFlow adds (written by
    hand, or copied from a trimmed copy) resumes where it stopped, not at step 0."""
    model_dir = str(tmp_path / "run")
    overrides = tiny_overrides(tiny_corpus, model_dir)
    seeded_trainer(load_config(DEMO_CONFIG, overrides + ["train.max_steps=4"])).train()
    with open(os.path.join(model_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-4"\nall_model_checkpoint_paths: "ckpt-4"\n')
    reference = tf.train.load_checkpoint(os.path.join(model_dir, "ckpt-4"))
    trainer = seeded_trainer(load_config(DEMO_CONFIG, overrides + ["train.max_steps=4"]))
    assert trainer.restore().endswith("ckpt-4")
    assert int(trainer.step.numpy()) == reference.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4
