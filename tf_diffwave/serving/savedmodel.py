"""SavedModel exports for TF Serving: standard ops only, the fast schedule and EMA weights baked in."""

import os
import shutil

import tensorflow as tf


class VocoderExport(tf.Module):
    """`serving_default`: mel (float32 [batch, frames, n_mels]) -> audio (float32 [batch, frames * hop]).
    Example b of a request is drawn with seed b, so a request always gets the same audio."""

    def __init__(self, synthesizer, betas, steps, n_mels):
        super().__init__()
        self.synthesizer = synthesizer
        self.betas = tf.constant(betas, tf.float64)
        self.steps = tf.constant(steps, tf.float32)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, None, n_mels], tf.float32, name="mel")])

    def _serve(self, mel):
        seeds = tf.range(tf.shape(mel)[0], dtype=tf.int64)
        return {"audio": self.synthesizer.vocode(mel, self.betas, self.steps, seeds)}


class GeneratorExport(tf.Module):
    """`serving_default`: seed (int64 [batch]) -> audio (float32 [batch, length]), one clip per seed."""

    def __init__(self, generate, length, tracked):
        super().__init__()
        self.tracked = tracked  # the module whose variables `generate` reads
        self.generate = generate
        self.length = int(length)
        self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])

    def _serve(self, seed):
        return {"audio": tf.ensure_shape(self.generate(seed, tf.constant(self.length)), [None, self.length])}


def clip_generator(synthesizer, sampler, config):
    """(generate(seeds, length) -> audio, the module holding its weights) for an unconditional model: its family's
    own sampler (autoregressive families), or the reverse process with the sampler's fast schedule."""
    if synthesizer.backbone.family.autoregressive:
        own = synthesizer.backbone.own_sampler(config)
        return own.frozen(), own
    betas, steps = (tf.constant(a, dtype) for a, dtype in zip(sampler.betas_and_steps("fast"),
                                                                (tf.float64, tf.float32)))
    return (lambda seeds, length: synthesizer.generate(seeds, length, betas, steps)), synthesizer


def export_model(synthesizer, sampler, config, export_root, version):
    """Export a vocoder or an unconditional generator with the sampler's fast schedule baked in, as
    <export_root>/<version>/."""
    if config["model"]["unconditional"]:
        generate, tracked = clip_generator(synthesizer, sampler, config)
        module = GeneratorExport(generate, config["model"]["audio_length"], tracked)
    else:
        module = VocoderExport(synthesizer, *sampler.betas_and_steps("fast"), config["audio"]["n_mels"])
    return write_export(module, export_root, version)


def write_export(module, export_root, version):
    """Write `module` as <export_root>/<version>/ (a TF Serving version folder), atomically by renaming."""
    final = os.path.join(export_root, str(int(version)))
    partial = os.path.join(export_root, f".partial-{int(version)}")
    shutil.rmtree(partial, ignore_errors=True)
    tf.saved_model.save(module, partial, signatures={"serving_default": module.serve.get_concrete_function()})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return final
