"""Training: overfitting a clip, resuming after a kill, and 2 replicas equal to 1."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import DEMO_CONFIG, REPO, make_corpus, overfit_losses, run_script, seeded_trainer, tiny_overrides
from tf_diffwave.config import load_config

HERE = os.path.dirname(os.path.abspath(__file__))


def checkpoint_values(path):
    """The trained weights stored in a checkpoint, read from the file (in model.trainable_variables order)."""
    reader = tf.train.load_checkpoint(path)
    prefix = "optimizer/_trainable_variables/"
    indices = sorted(int(n[len(prefix):].split("/")[0]) for n in reader.get_variable_to_shape_map()
                     if n.startswith(prefix))
    return [reader.get_tensor(f"{prefix}{i}/.ATTRIBUTES/VARIABLE_VALUE") for i in indices]


@pytest.mark.slow
@pytest.mark.parametrize("mixed_precision", ["false", "true"])
def test_overfits_one_clip(tmp_path, mixed_precision):
    corpus = make_corpus(str(tmp_path / "c"), ids=("LJ001-0004", "LJ001-0005"))  # one training clip, one held out
    cfg = load_config(DEMO_CONFIG, tiny_overrides(corpus, str(tmp_path / "run")) + [
        "train.learning_rate=0.003", "train.max_steps=150", "train.save_every=1000", "diffusion.loss=l2",
        "model.residual_channels=16", "train.batch_size=8", f"train.mixed_precision={mixed_precision}"])
    first, last = overfit_losses(cfg)
    assert first > 0.8  # untrained: the output layer is zero, so the L2 loss is E[eps^2] = 1
    assert last < 0.5 * first


@pytest.mark.slow
def test_sigkill_then_resume_keeps_step_and_weights(tmp_path, tiny_corpus):
    model_dir = str(tmp_path / "run")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config", DEMO_CONFIG,
           *tiny_overrides(tiny_corpus, model_dir), "train.max_steps=100000",
           "train.keep_checkpoints=100000"]  # ckpt-6 must outlive the next saves until it is seen
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and not os.path.exists(os.path.join(model_dir, "ckpt-6.index")):
            time.sleep(0.2)
        assert os.path.exists(os.path.join(model_dir, "ckpt-6.index")), "training did not reach step 6"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    latest = tf.train.latest_checkpoint(model_dir)
    saved_step = int(latest.rsplit("-", 1)[1])
    saved = checkpoint_values(latest)
    assert saved_step >= 6

    cfg = load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, model_dir) + [f"train.max_steps={saved_step + 2}"])
    trainer = seeded_trainer(cfg)
    trainer.checkpoint.restore(trainer.manager.latest_checkpoint)
    assert int(trainer.step.numpy()) == saved_step
    restored = [v.numpy() for v in trainer.backbone.model.trainable_variables]
    assert len(restored) == len(saved) > 0
    for a, b in zip(restored, saved):
        np.testing.assert_array_equal(a, b)
    assert trainer.optimizer.iterations.numpy() == saved_step
    trainer.train()
    assert tf.train.latest_checkpoint(model_dir).endswith(f"ckpt-{saved_step + 2}")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_saves_the_current_step_and_exits_cleanly(tmp_path, tiny_corpus, signum):
    """SIGINT (Ctrl-C) or SIGTERM (preemption) between periodic saves: the run writes a checkpoint of the step it
    reached, then exits with 128 + the signal's number (130 for Ctrl-C) saying so; rerunning the command resumes
    there."""
    model_dir = str(tmp_path / "run")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config", DEMO_CONFIG,
           *tiny_overrides(tiny_corpus, model_dir), "train.max_steps=100000", "train.save_every=100000"]
    errors = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True)
    reached = 0
    try:
        for line in proc.stdout:  # off a terminal the progress bar prints "N/100000" lines, at most one per 50 ms
            counts = re.findall(r"(\d+)/100000", line)
            reached = max([reached, *map(int, counts)])
            if reached >= 5:
                break
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
        errors.close()
    assert proc.returncode == 128 + signum
    step = int(tf.train.latest_checkpoint(model_dir).rsplit("-", 1)[1])
    assert reached >= 5 and step >= reached and f"saved {model_dir}/ckpt-{step} at step {step}" in out
    said = (tmp_path / "stderr.txt").read_text()
    assert "stopping after the current step, then saving" in said
    assert f"interrupted at step {step}; run the same command to resume" in said
    again = subprocess.run(cmd[:-2] + [f"train.max_steps={step + 1}"], cwd=REPO, capture_output=True, text=True)
    assert f"resumed from {model_dir}/ckpt-{step} at step {step}" in again.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backbone, prior", [("wavenet", "priorgrad"), ("wavenet", "standard"),
                                             ("wavegrad", "standard"), ("wavegrad", "priorgrad")])
def test_two_replicas_match_one(tmp_path, tiny_corpus, backbone, prior):
    """MirroredStrategy on 2 logical CPUs gives the same weights after a step as 1 replica on the same batch."""
    values, printed = [], []
    for replicas in (1, 2):
        model_dir = str(tmp_path / f"r{replicas}")
        out = subprocess.run([sys.executable, os.path.join(HERE, "replica_run.py"), str(replicas), tiny_corpus,
                              model_dir, backbone, f"diffusion.prior={prior}"], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        values.append(checkpoint_values(model_dir))
        printed.append(dict(kv.split("=") for kv in out.stdout.split()[-2:]))
    for key in ("loss", "norm"):  # the norm is of the gradients summed over replicas, before clipping
        assert float(printed[1][key]) == pytest.approx(float(printed[0][key]), rel=1e-5)
    assert len(values[0]) == len(values[1]) > 0
    for one, two in zip(*values):
        np.testing.assert_allclose(two, one, atol=1e-6)
    output_bias = values[0][-1]  # zero at initialisation: the step must have moved it
    assert np.all(output_bias != 0)
    # the export of the 2-replica run serves on one device, as the 1-replica export does
    mel = tf.constant(np.random.default_rng(0).normal(-5, 2, (1, 6, 80)), tf.float32)
    audio = [tf.saved_model.load(str(tmp_path / f"r{r}" / "export" / "1")).signatures["serving_default"](mel=mel)
             ["audio"].numpy() for r in (1, 2)]
    np.testing.assert_allclose(audio[1], audio[0], atol=1e-5)


def test_micro_batches_give_the_same_gradients(tmp_path, tiny_corpus):
    """Splitting a replica's batch into sequential micro-batches sums to the gradients of one pass."""
    cfg = load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, str(tmp_path / "m")) + ["train.batch_size=4"])
    trainer = seeded_trainer(cfg)
    batch = next(iter(trainer.dataset(0)))
    for w in trainer.backbone.model.trainable_variables:  # nonzero output layer: every gradient is nonzero
        w.assign(tf.random.stateless_normal(w.shape, seed=[1, 2]) * 0.2)
    loss_one, grads_one = trainer.micro_batch_grads(batch)
    trainer.config["train"]["micro_batches"] = 4
    loss_four, grads_four = trainer.replica_grads(batch)
    np.testing.assert_allclose(loss_four.numpy(), loss_one.numpy(), rtol=1e-5)
    for one, four in zip(grads_one, grads_four):
        assert np.any(one.numpy() != 0)
        np.testing.assert_allclose(four.numpy(), one.numpy(), rtol=1e-4, atol=1e-6)


def test_checkpoint_of_another_model_is_a_clear_error(tiny_run, tmp_path):
    import json
    import shutil

    from tf_diffwave.errors import UserError
    from tf_diffwave.inference.model import load

    other = tmp_path / "other"
    shutil.copytree(tiny_run, other, ignore=shutil.ignore_patterns("export", "logs"))
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["wavenet"]["residual_layers"] = 3
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="does not match"):
        load(str(other))


@pytest.mark.slow
def test_a_training_step_runs_with_onednn_off(tmp_path, tiny_corpus):
    """TensorFlow's own CPU kernels (oneDNN off, the default on CPUs without AVX-512 VNNI, BF16 or AMX) train the
    dilated convolutions too: they have no gradient for a dilated Conv2D, which the training path avoids."""
    code = ("import sys, numpy as np\nfrom tests.helpers import DEMO_CONFIG, seeded_trainer, tiny_overrides\n"
            "from tf_diffwave.config import load_config\n"
            "trainer = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(sys.argv[1], sys.argv[2])))\n"
            "iterator = iter(trainer.dataset(0))\nloss = float(trainer.train_step(iterator)[0])\n"
            "assert np.isfinite(loss) and trainer.step.numpy() == 1, loss\nprint('OK', loss)")
    assert "OK" in run_script(code, tiny_corpus, tmp_path / "run", cwd=REPO, env={"TF_ENABLE_ONEDNN_OPTS": "0"})
