"""Waveform synthesis graphs: a backbone driven by the diffusion core's reverse process, as tf.functions.

Long mels are vocoded in chunks of mel frames. At every denoising step each chunk is run with enough context on
both sides to cover the network's receptive field, and only its centre is kept, so the stitched noise estimate
equals the whole-utterance one (no seam) while memory stays bounded by the chunk size. The conditioner, which the
whole-utterance path computes once, is then recomputed per chunk and step: its output (for a WaveNet, layers x 2C
values per sample, about 3.9 MB per mel frame for the BASE model) is what would otherwise grow with the input.
Families may split the work differently for chunks (`Backbone.chunk_networks`): a WaveNet's chunk
conditioner only upsamples the mel and each residual layer projects it in the step.
"""

import tensorflow as tf

from tf_diffwave.diffusion.prior import Prior
from tf_diffwave.diffusion.samplers import SamplingOptions, reverse_process, reverse_process_from_noise


class Synthesizer(tf.Module):
    """Vocoding (mel -> audio) and unconditional generation with one backbone's networks, sampling with `options`
    from `prior` (its std computed from the mel inside the graph). The reverse process runs on the backbone's signal
    and returns its audio (Backbone.signal_to_audio)."""

    def __init__(self, backbone, chunk_frames=512, options=SamplingOptions(), chunk_networks=None, prior=Prior()):
        super().__init__()
        self.backbone = backbone
        self.prior = prior
        # what gives the (conditioner, denoiser) pair chunks run at every step: the backbone's own unless given (to
        # compare); a function, so that the module does not track the pair (its exports would trace it again)
        self.chunk_networks = chunk_networks or backbone.chunk_networks
        self.options = options
        self.networks = [net for net in (backbone.conditioner, backbone.denoiser) if net is not None]  # tracked
        self.chunk_frames = chunk_frames
        self.hop = backbone.hop_length

    @classmethod
    def from_config(cls, backbone, config, **kwargs):
        """A Synthesizer of `backbone` sampling as the config's `diffusion` section says (its options and prior)."""
        return cls(backbone, options=SamplingOptions.from_config(config["diffusion"]), prior=Prior.from_config(config),
                   **kwargs)

    def _chunked_eps(self, mel, x, t):
        """Noise estimate for x (B, frames * hop) computed chunk by chunk with receptive-field context."""
        hop, context = self.hop, self.backbone.context_frames
        batch, frames = tf.shape(mel)[0], tf.shape(mel)[1]
        size = tf.maximum(self.chunk_frames // batch, 2 * context)  # frames per chunk, for the whole batch
        if self.backbone.max_frames is not None:  # a chunk and its context must fit the network's window
            size = tf.minimum(size, self.backbone.max_frames - 2 * context)
        count = (frames + size - 1) // size

        def body(i, pieces):
            f0 = i * size
            f1 = tf.minimum(f0 + size, frames)
            a = tf.maximum(f0 - context, 0)
            b = tf.minimum(f1 + context, frames)
            eps = self._window_eps(mel[:, a:b], x[:, a * hop: b * hop], t, a)
            keep = eps[:, (f0 - a) * hop: (f1 - a) * hop]
            return i + 1, pieces.write(i, tf.transpose(keep))

        pieces = tf.TensorArray(tf.float32, size=count, infer_shape=False)
        # one chunk at a time: parallel iterations would each hold a chunk's conditioner
        _, pieces = tf.while_loop(lambda i, p: i < count, body, [0, pieces], parallel_iterations=1)
        return tf.reshape(tf.transpose(pieces.concat()), tf.shape(x))

    @tf.function(reduce_retracing=True)
    def window_eps(self, mel, x, t, origin):
        """The noise estimate for audio x (B, frames * hop) of a window of mel frames (B, frames, n_mels) that
        starts at frame `origin` of its utterance, run as a chunk is: exact for the window's centre,
        `backbone.context_frames` away from its cut edges."""
        with self.backbone.sampling():
            return self._window_eps(mel, x, t, origin)

    def _window_eps(self, mel, x, t, origin):
        conditioner, denoiser = self.chunk_networks()
        with self.backbone.window(origin):
            return denoiser([x, t, conditioner(mel, training=False)], training=False)

    @tf.function(reduce_retracing=True)  # one graph for all mel lengths, after the second
    def vocode(self, mel, betas, steps, seeds):
        """Audio (B, frames * hop) from mels (B, frames, n_mels) with the given schedule (betas, and the network's
        noise input at each step: see diffusion.Sampler), one seed per example.

        Batches of up to `chunk_frames` frames in all (and no longer than the backbone's `max_frames`, if it has
        one) are vocoded whole, larger ones chunk by chunk."""
        mel = tf.convert_to_tensor(mel, tf.float32)
        length = tf.shape(mel)[1] * self.hop
        std = self.prior.std(mel)
        return self.backbone.signal_to_audio(self._vocode(mel, lambda eps_fn: reverse_process(
            eps_fn, betas, steps, seeds, length, self.options, std)))

    @tf.function(reduce_retracing=True)
    def vocode_from_noise(self, mel, betas, steps, noise):
        """`vocode` with every standard-normal draw given (see diffusion.reverse_process_from_noise)."""
        mel = tf.convert_to_tensor(mel, tf.float32)
        std = self.prior.std(mel)
        return self.backbone.signal_to_audio(self._vocode(mel, lambda eps_fn: reverse_process_from_noise(
            eps_fn, betas, steps, noise, self.options, std=std)))

    def _vocode(self, mel, sample):
        """sample(eps_fn) runs the reverse process with a noise estimate for the whole utterance."""
        def whole():
            cond = self.backbone.conditioner(mel, training=False)  # once per utterance, not per step
            return sample(lambda x, t: self.backbone.denoiser([x, t, cond], training=False))

        def chunked():
            return sample(lambda x, t: self._chunked_eps(mel, x, t))

        fits = tf.shape(mel)[0] * tf.shape(mel)[1] <= self.chunk_frames
        if self.backbone.max_frames is not None:
            fits = tf.logical_and(fits, tf.shape(mel)[1] <= self.backbone.max_frames)
        with self.backbone.sampling():
            return tf.cond(fits, whole, chunked)

    @tf.function(reduce_retracing=True)
    def generate(self, seeds, length, betas, steps):
        """Unconditional audio (B, length) from noise, one clip per seed (B,)."""
        with self.backbone.sampling():
            return self.backbone.signal_to_audio(reverse_process(
                lambda x, t: self.backbone.denoiser([x, t], training=False), betas, steps, seeds, length,
                self.options))

    @tf.function(reduce_retracing=True)
    def generate_from_noise(self, betas, steps, noise):
        """`generate` with every noise draw given (see diffusion.reverse_process_from_noise)."""
        with self.backbone.sampling():
            return self.backbone.signal_to_audio(reverse_process_from_noise(
                lambda x, t: self.backbone.denoiser([x, t], training=False), betas, steps, noise, self.options))

    @tf.function(reduce_retracing=True)
    def denoise(self, audio, step, mel=None):
        """The network's noise estimate (B, L) for noisy audio (B, L) (the backbone's signal) at noise inputs (B,)
        (steps or levels), given mels for a vocoder."""
        if mel is None:
            return self.backbone.denoiser([audio, step], training=False)
        return self.backbone.model([audio, step, mel], training=False)
