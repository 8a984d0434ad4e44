"""SavedModel exports for TF Serving: standard ops only, the fast schedule and EMA weights baked in. The modules a
pipeline exports (tf_diffwave.pipelines: `savedmodel_module`), and writing them."""

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
    """`serving_default`: seed (int64 [batch]) -> audio (float32 [batch, length]), one clip per seed, from
    generate(seeds, length) (a tf function of `tracked`'s variables)."""

    def __init__(self, generate, length, tracked):
        super().__init__()
        self.tracked = tracked  # the module whose variables `generate` reads
        self.generate = generate
        self.length = int(length)
        self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])

    def _serve(self, seed):
        return {"audio": tf.ensure_shape(self.generate(seed, tf.constant(self.length)), [None, self.length])}


def write_export(module, export_root, version):
    """Write `module` as <export_root>/<version>/ (a TF Serving version folder), atomically by renaming."""
    final = os.path.join(export_root, str(int(version)))
    partial = os.path.join(export_root, f".partial-{int(version)}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        tf.saved_model.save(module, partial, signatures={"serving_default": module.serve.get_concrete_function()})
    except BaseException:  # Ctrl-C included: TF Serving would skip the folder, but it is not left
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return final
