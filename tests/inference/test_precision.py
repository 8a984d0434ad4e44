"""Mixed precision (bfloat16 on CPUs, float16 with loss scaling on GPUs) and XLA-compiled gradients."""

import os

import numpy as np
import pytest
import tensorflow as tf

import tf_diffwave.training.trainer as trainer_module
from tests.helpers import (
    DEMO_CONFIG,
    SC09_DEMO_CONFIG,
    make_sc09_corpus,
    seeded_trainer,
    tiny_overrides,
    tiny_sc09_overrides,
)
from tf_diffwave.config import load_config
from tf_diffwave.models.s4 import s4_layers

SASHIMI = ["model.backbone=sashimi", "model.d_model=8", "model.n_layers=1", "model.state_size=8",
           "model.embed_dim=16", "model.audio_length=2048"]


def run_steps(trainer, count):
    batches = iter(trainer.dataset(0))
    step = tf.function(trainer.train_step)
    return [step(batches) for _ in range(count)]


def compute_dtypes(model):
    found = {}
    for layer in model._flatten_layers(include_self=False):
        if layer.weights:
            found[layer.name] = layer.compute_dtype
    return found


@pytest.mark.slow
def test_mixed_bfloat16_on_cpu_keeps_s4_and_the_output_in_float32(tmp_path):
    corpus = make_sc09_corpus(str(tmp_path / "c"))
    config = load_config(SC09_DEMO_CONFIG, tiny_sc09_overrides(corpus, str(tmp_path / "run")) + SASHIMI + [
        "train.mixed_precision=true"])
    trainer = seeded_trainer(config)
    dtypes = compute_dtypes(trainer.backbone.model)
    s4_names = {layer.name for layer in s4_layers(trainer.backbone.model)}
    assert s4_names and all(dtypes[name] == "float32" for name in s4_names)
    assert dtypes["output"] == "float32"
    assert "bfloat16" in set(dtypes.values())  # the rest computes in bfloat16
    assert set(compute_dtypes(trainer.ema_backbone.model).values()) == {"float32"}  # sampling and exports
    assert all(v.dtype == "float32" for v in trainer.backbone.model.weights)
    before = [v.numpy() for v in trainer.backbone.model.weights]
    results = run_steps(trainer, 3)
    assert all(bool(applied) and np.isfinite(loss.numpy()) for loss, _, applied, _ in results)
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, trainer.backbone.model.weights))
    assert keras_policy_is_float32()


def keras_policy_is_float32():
    import keras
    return keras.config.dtype_policy().name == "float32"


@pytest.mark.slow
def test_mixed_float16_scales_the_loss_and_a_nan_step_halves_the_scale(tmp_path, tiny_corpus, monkeypatch):
    """The GPU path, forced on this CPU: a LossScaleOptimizer whose scale_loss scales the gradients; the applied
    update equals float16 training's unscaled one; a non-finite step is skipped and halves the scale."""
    import keras

    monkeypatch.setattr(trainer_module, "mixed_precision_policy", lambda: "mixed_float16")
    clean = trainer_module.add_training_noise

    def poisoned(index, example, seed):  # the third batch (examples 4 and 5) is NaN
        example = clean(index, example, seed)
        example["audio"] = tf.where(tf.logical_and(index >= 4, index < 6),
                                    tf.fill(tf.shape(example["audio"]), np.nan), example["audio"])
        return example

    monkeypatch.setattr(trainer_module, "add_training_noise", poisoned)
    # dilation 1 only: TensorFlow's CPU kernels cannot differentiate dilated float16 convolutions (GPUs can)
    trainer = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, str(tmp_path / "run")) + [
        "train.mixed_precision=true", "model.dilation_cycle=1"]))
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    scale = float(trainer.optimizer.dynamic_scale.numpy())
    results = run_steps(trainer, 4)
    assert [bool(r[2]) for r in results] == [True, True, False, True]
    assert float(trainer.optimizer.dynamic_scale.numpy()) == scale / 2
    assert trainer.optimizer.iterations.numpy() == 3
    assert all(np.all(np.isfinite(v.numpy())) for v in trainer.backbone.model.weights)
    assert 0 < float(results[0][1]) < 1e3  # the reported gradient norm is unscaled


@pytest.mark.slow
def test_xla_compiled_gradients_match_the_plain_ones(tmp_path, tiny_corpus):
    updated = []
    for jit in ("false", "true"):
        trainer = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, str(tmp_path / jit)) + [
            f"train.jit_compile={jit}"]))
        results = run_steps(trainer, 2)
        updated.append(([v.numpy() for v in trainer.backbone.model.weights], [float(r[0]) for r in results]))
    (plain, plain_losses), (compiled, compiled_losses) = updated
    np.testing.assert_allclose(compiled_losses, plain_losses, rtol=1e-4)
    for a, b in zip(plain, compiled):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.mark.slow
def test_bfloat16_inference_stays_near_float32_and_exports_the_same_signature(tmp_path):
    """The bundled demo model (trained weights) in bfloat16: its networks compute in bfloat16 (the output layer
    and the sampler in float32), its audio is within a few percent of float32's, and a bfloat16 export of a
    float32-loaded model serves float32 in and out and gives the bfloat16 model's audio."""
    from tensorflow.core.protobuf import saved_model_pb2

    import tf_diffwave
    from tf_diffwave.errors import UserError

    full, reduced = tf_diffwave.load(), tf_diffwave.load(precision="bfloat16")
    dtypes = compute_dtypes(reduced.backbone.denoiser)
    assert dtypes["output"] == "float32" and "bfloat16" in set(dtypes.values())
    assert set(compute_dtypes(full.backbone.denoiser).values()) == {"float32"}
    mel = full.features(np.sin(np.arange(4096) * 0.05).astype(np.float32) * 0.3)[None]
    expected, audio = full.vocode(mel), reduced.vocode(mel)
    assert audio.dtype == np.float32 and audio.shape == expected.shape
    # bfloat16 keeps 8 bits of mantissa: a relative error near 2^-8 per operation, about 1% over the network
    assert 1e-4 < rms(audio - expected) / rms(expected) < 0.05
    assert keras_policy_is_float32()

    path = full.export(str(tmp_path), version=1, precision="bfloat16")
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert served.structured_input_signature[1]["mel"].dtype == tf.float32
    out = served(mel=tf.constant(mel))["audio"]
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), audio, atol=1e-5)
    graph = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    assert "DT_BFLOAT16" in str(graph.meta_graphs[0].graph_def.library)
    with pytest.raises(UserError, match="unknown precision 'int4'"):
        tf_diffwave.load(precision="int4")


def test_infer_cli_takes_the_precision(tiny_run, tmp_path):
    import soundfile

    from tf_diffwave.cli.infer import main as infer_main

    mel = np.full((8, 80), -5.0, np.float32)
    np.save(tmp_path / "m.npy", mel)
    infer_main(["--model-dir", tiny_run, "--mel", str(tmp_path / "m.npy"), "--precision", "bfloat16",
                "--out", str(tmp_path / "a.wav")])
    audio, _ = soundfile.read(tmp_path / "a.wav")
    assert audio.shape == (8 * 256,)
