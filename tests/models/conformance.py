"""The conformance suite every model family runs (the families of the package and the toy family registered from
outside it): what the diffusion core, the trainer, the pipelines and the exports rely on a backbone for.

Each check takes a `Case` (a family's tiny config) and tests one promise of the contract against the pipeline of
the model's kind: outputs of the right shape at two lengths; float32 outputs whatever policy the layers compute
under; long inputs vocoded in chunks equal to whole; weights that survive a checkpoint; a SavedModel that a
TensorFlow-only process serves as the model samples; a LiteRT model that gives the reverse process's audio, or one
clean refusal where the kind has none.
"""

import dataclasses
import os

import numpy as np

from tests.helpers import LITERT_TOLERANCE, random_log_mel, run_litert, run_script
from tf_diffwave.config import load_config
from tf_diffwave.models.checkpoints import restore_ema, save_ema
from tf_diffwave.models.registry import PRECISION_POLICIES, build_backbone
from tf_diffwave.pipelines import pipeline_for


@dataclasses.dataclass(frozen=True)
class Case:
    """A family's tiny model: a config file and overrides; `lengths`, two sample counts its network takes."""

    name: str
    config: str
    overrides: tuple
    lengths: tuple = (1024, 2048)

    def config_dict(self):
        return load_config(self.config, list(self.overrides))


def tiny_pipeline(case, policy="float32", seed=0):
    """The pipeline of the case's model, its initial weights drawn from `seed` and every one of them moved off its
    initialisation: networks whose output layer starts at zero would otherwise pass every comparison with
    silence."""
    import keras

    config = case.config_dict()
    keras.utils.set_random_seed(seed)
    backbone = build_backbone(config, policy)
    rng = np.random.default_rng(seed)
    for variable in backbone.model.weights:
        variable.assign(variable.numpy() + rng.normal(0, 0.02, variable.shape).astype(np.float32))
    return pipeline_for(backbone, config, case.name)


def network_output(pipeline, samples, seed=0):
    """What the pipeline's network gives for `samples` of input (a vocoder: samples // hop frames of mel): the
    noise estimate of a diffusion model, the next-token logits of an autoregressive one."""
    rng = np.random.default_rng(seed)
    if pipeline.kind.refusal("logits", pipeline.family) is None:  # a likelihood model
        period = pipeline.backbone.period
        tokens = rng.integers(0, pipeline.backbone.classes, (2, samples - samples % period))
        return pipeline.logits(tokens)
    audio = rng.normal(0, 0.5, (2, samples)).astype(np.float32)
    step = 0.5 if pipeline.noise_input == "level" else 3
    if pipeline.kind.input == "mel":
        hop = pipeline.hop_length
        audio = audio[:, : samples - samples % hop]
        mel = rng.normal(-5, 2, (2, audio.shape[1] // hop, pipeline.n_mels)).astype(np.float32)
        return pipeline.denoise(audio, step, mel)
    return pipeline.denoise(audio, step)


def check_shapes_at_two_lengths(case, pipeline):
    for samples in case.lengths:
        out = network_output(pipeline, samples)
        assert out.dtype == np.float32 and np.all(np.isfinite(out)), case.name
        expected = (2, samples - samples % getattr(pipeline.backbone, "period", getattr(pipeline, "hop_length", 1)))
        assert out.shape[:2] == expected, (case.name, out.shape, expected)


def check_float32_outputs_under_a_mixed_policy(case, pipeline, precision):
    """The network built under the mixed policy of `precision`, with the weights of `pipeline`'s (float32),
    returns float32 close to float32's outputs."""
    mixed = tiny_pipeline(case, PRECISION_POLICIES[precision])
    mixed.backbone.model.set_weights(pipeline.backbone.model.get_weights())
    out, expected = network_output(mixed, case.lengths[0]), network_output(pipeline, case.lengths[0])
    assert out.dtype == np.float32 and np.all(np.isfinite(out)), (case.name, precision)
    # 8 (bfloat16) or 11 (float16) bits of mantissa: a network pass stays within a few percent of float32's scale
    assert np.max(np.abs(out - expected)) <= 0.1 * max(1.0, np.max(np.abs(expected))), (case.name, precision)


def check_chunked_equals_whole(case, frames=24):
    """Vocoders: a mel vocoded chunk by chunk (with context) gives the whole-utterance audio."""
    pipeline = tiny_pipeline(case)
    mel = random_log_mel(1, (1, frames, pipeline.n_mels))
    whole = pipeline.vocode(mel, seed=2)
    pipeline.synthesizer.chunk_frames = 2 * pipeline.backbone.context_frames + 3
    chunked = pipeline.vocode(mel, seed=2)
    assert np.std(whole) > 1e-3, (case.name, np.std(whole))
    np.testing.assert_allclose(chunked, whole, atol=2e-5, err_msg=case.name)


def check_streaming_equals_whole(case, frames=21, chunk=4):
    """Vocoders with a finite receptive field: a mel streamed in chunks gives the whole utterance's audio."""
    pipeline = tiny_pipeline(case)
    mel = random_log_mel(2, (frames, pipeline.n_mels))
    whole = pipeline.vocode(mel, seed=1)
    streamed = np.concatenate(list(pipeline.stream((mel[i: i + chunk] for i in range(0, frames, chunk)), seed=1)))
    assert streamed.shape == whole.shape and np.std(whole) > 1e-3, case.name
    np.testing.assert_allclose(streamed, whole, atol=1e-4, err_msg=case.name)


def check_checkpoint_round_trip(case, pipeline, folder):
    """The weights saved and restored into a new backbone compute what they computed."""
    save_ema(pipeline.backbone.model, 7, folder)
    restored = build_backbone(pipeline.config)
    assert restore_ema(restored.model, folder) == 7
    again = pipeline_for(restored, pipeline.config, case.name)
    np.testing.assert_array_equal(network_output(again, case.lengths[0]), network_output(pipeline, case.lengths[0]))


SERVE = """
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
inputs = dict(np.load(sys.argv[2]))
audio = fn(**{name: tf.constant(value) for name, value in inputs.items()})["audio"].numpy()
assert not any(m.startswith("tf_diffwave") for m in sys.modules), "not a clean process"
np.save(sys.argv[3], audio)
"""


def check_savedmodel_serves_in_a_clean_process(case, folder):
    """The export, loaded by a process that imports only TensorFlow, gives what the pipeline samples for the same
    seeds (example b of a request is drawn with seed b)."""
    from tf_diffwave.serving.savedmodel import write_export

    pipeline = tiny_pipeline(case)
    export = write_export(pipeline.savedmodel_module(), os.path.join(folder, "export"), 1)
    if pipeline.kind.input == "mel":
        inputs = {"mel": random_log_mel(3, (2, 9, pipeline.n_mels))}
        expected = pipeline.vocode(inputs["mel"], seed=0)
    else:
        inputs = {"seed": np.arange(2, dtype=np.int64)}
        expected = pipeline.generate(2, seed=0)
    np.savez(os.path.join(folder, "inputs.npz"), **inputs)
    run_script(SERVE, export, os.path.join(folder, "inputs.npz"), os.path.join(folder, "served.npy"))
    served = np.load(os.path.join(folder, "served.npy"))
    assert served.shape == expected.shape and served.dtype == np.float32, case.name
    np.testing.assert_allclose(served, expected, atol=1e-5, err_msg=case.name)


def check_litert_or_its_refusal(case, folder):
    """Where the kind exports to LiteRT, the model run without TensorFlow gives the reverse process's audio for the
    same noise; elsewhere the export is refused in the kind's one line."""
    import pytest

    from tf_diffwave.errors import UserError
    from tf_diffwave.serving.litert import litert_model

    pipeline = tiny_pipeline(case)
    refusal = pipeline.kind.refusal("litert", pipeline.family)
    if refusal is not None:
        with pytest.raises(UserError) as err:
            litert_model(pipeline)
        assert str(err.value) == f"{case.name}: {refusal}"
        return
    path = os.path.join(folder, "m.tflite")
    with open(path, "wb") as f:
        f.write(litert_model(pipeline))
    steps = len(pipeline.schedule("fast")[0])
    rng = np.random.default_rng(4)
    if pipeline.kind.input == "mel":
        frames = min(9, pipeline.backbone.max_frames or 9)  # the LiteRT graph vocodes whole: one window at most
        mel = random_log_mel(5, (2, frames, pipeline.n_mels))
        noise = rng.normal(size=(steps, 2, frames * pipeline.hop_length)).astype(np.float32)
        expected, audio = pipeline.reverse_process(noise, mel), run_litert(path, folder, noise=noise, mel=mel)
    else:
        noise = rng.normal(size=(steps, 2, pipeline.length)).astype(np.float32)
        expected, audio = pipeline.reverse_process(noise), run_litert(path, folder, noise=noise)
    np.testing.assert_allclose(audio, expected, atol=LITERT_TOLERANCE, err_msg=case.name)
