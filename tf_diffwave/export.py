"""SavedModel exports for TF Serving: standard ops only, the fast schedule and EMA weights baked in."""

import os
import shutil

import tensorflow as tf


class VocoderExport(tf.Module):
    """`serving_default`: mel (float32 [batch, frames, n_mels]) -> audio (float32 [batch, frames * hop])."""

    def __init__(self, synthesizer, betas, steps, n_mels, seed=(0, 0)):
        super().__init__()
        self.synthesizer = synthesizer
        self.betas = tf.constant(betas, tf.float32)
        self.steps = tf.constant(steps, tf.float32)
        self.seed = tf.constant(seed, tf.int64)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, None, n_mels], tf.float32, name="mel")])

    def _serve(self, mel):
        return {"audio": self.synthesizer.vocode(mel, self.betas, self.steps, self.seed)}


def export_vocoder(synthesizer, sampler, n_mels, export_root, version):
    """Export a vocoder with the sampler's fast schedule baked in as <export_root>/<version>/."""
    betas, steps = sampler.betas_and_steps("fast")
    return write_export(VocoderExport(synthesizer, betas, steps, n_mels), export_root, version)


def write_export(module, export_root, version):
    """Write `module` as <export_root>/<version>/ (a TF Serving version folder), atomically by renaming."""
    final = os.path.join(export_root, str(int(version)))
    partial = os.path.join(export_root, f".partial-{int(version)}")
    shutil.rmtree(partial, ignore_errors=True)
    tf.saved_model.save(module, partial, signatures={"serving_default": module.serve.get_concrete_function()})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return final
