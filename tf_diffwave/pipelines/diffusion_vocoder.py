"""The diffusion vocoder's pipeline: mel in, audio out, whole, in chunks or streamed."""

import numpy as np
import tensorflow as tf

from tf_diffwave.data.mel_conventions import check_mel, convert
from tf_diffwave.diffusion.streaming import StreamingVocoder, exact_lookaheads
from tf_diffwave.errors import UserError
from tf_diffwave.pipelines.base import group_size
from tf_diffwave.pipelines.diffusion import DiffusionPipeline
from tf_diffwave.pipelines.tensorboard import VocodedSample
from tf_diffwave.serving.auto_precision import probe_audio
from tf_diffwave.serving.savedmodel import VocoderExport


class DiffusionVocoder(DiffusionPipeline):
    """Vocoding with a diffusion backbone: its conditioner once per utterance (or per chunk of a long one), the
    reverse process from the prior its mel gives."""

    kind_name = "diffusion vocoder"

    @property
    def n_mels(self):
        return self.config["audio"]["n_mels"]

    @property
    def hop_length(self):
        return self.config["audio"]["hop_length"]

    def vocode(self, mel, steps="fast", seed=0, convention=None, **convention_options):
        """Float32 audio from a mel (frames, n_mels) -> (samples,), or a batch (B, frames, n_mels) -> (B, samples).

        Example b of the batch is drawn with seed `seed + b`. A mel in another system's `convention`
        (data.mel_conventions: "ln", "log10" with `stats`, "db" with `max_norm`, `min_level_db`, `ref_level_db`,
        "lmnt") is converted to the model's features first; a mel that cannot be in them stops with a UserError
        naming the convention it most likely has. A batch of more than MAX_BATCH_SAMPLES samples in all is run in
        groups (pipelines.base)."""
        mel = self._given_mel(mel, convention, convention_options)
        single = mel.ndim == 2
        batch = self._check_mel(mel[None] if single else mel)
        betas, t = self.schedule(steps)
        seeds = seed + np.arange(len(batch), dtype=np.int64)
        group = group_size(batch.shape[1] * self.hop_length)
        audio = np.concatenate([self.synthesizer.vocode(batch[i: i + group], betas, t, seeds[i: i + group]).numpy()
                                for i in range(0, len(batch), group)])
        return audio[0] if single else audio

    def stream(self, mel_chunks, steps="fast", seed=0, lookahead=None, convention=None, **convention_options):
        """Vocode one utterance whose mel arrives in chunks: yields float32 audio chunks (samples,) as soon as they
        are final. With the default `lookahead` (None: `exact_lookahead(steps)` frames) the audio equals
        `vocode` of the whole mel with the same seed, however the mel is chunked; a smaller lookahead (frames)
        gives lower latency and audio that differs from it. Each chunk (frames, n_mels) is converted and checked
        as `vocode` does."""
        betas, t = self.schedule(steps)
        vocoder = StreamingVocoder(self.synthesizer, betas, t, seed, lookahead)
        for i, chunk in enumerate(mel_chunks):
            chunk = self._given_mel(chunk, convention, convention_options, f"mel chunk {i}")
            audio = vocoder.push(self._check_mel(chunk[None], f"mel chunk {i}")[0])
            if audio.size:
                yield audio
        if vocoder.mel.done == 0:
            raise UserError("the mel stream held no frames")
        audio = vocoder.finish()
        if audio.size:
            yield audio

    def exact_lookahead(self, steps="fast"):
        """Mel frames beyond a sample's own that streaming waits for, so that its audio equals whole vocoding:
        the network's reach into the mel for the first step, into the noisy audio for each other step."""
        betas, _ = self.schedule(steps)
        return sum(exact_lookaheads(self.backbone, len(betas)))

    def prior_std(self, mel):
        """The prior's std of every sample (float32 (samples,) for a mel (frames, n_mels), or (B, samples) for a
        batch): per frame, PriorGrad's normalised energy floored at `diffusion.std_min`; ones for the standard
        prior."""
        mel = np.asarray(mel, dtype=np.float32)
        single = mel.ndim == 2
        batch = self._check_mel(mel[None] if single else mel)
        std = self.synthesizer.prior.std(batch)
        std = np.ones((len(batch), batch.shape[1] * self.hop_length), np.float32) if std is None else std.numpy()
        return std[0] if single else std

    def _given_mel(self, mel, convention, convention_options, what="mel"):
        """A mel in the model's features: converted from `convention` if given, and checked."""
        if convention is not None:
            mel = convert(mel, convention, self.log_mel, **convention_options)
        check_mel(mel, self.log_mel, what)
        return np.asarray(mel, dtype=np.float32)

    def _check_mel(self, mel, what="mel"):
        """`mel` as float32 (B, frames, n_mels), or a UserError saying how it is not."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 3 or mel.shape[-1] != self.n_mels or mel.shape[1] == 0:
            raise UserError(f"{what} has shape {mel.shape}, expected (batch, frames, {self.n_mels})")
        if not np.all(np.isfinite(mel)):
            raise UserError(f"{what} contains NaN or infinite values")
        return mel

    def _checked_audio(self, audio, what, mel):
        """`audio` as float32 (B, samples), checked against the mel batch it goes with."""
        if mel is None:
            raise UserError(f"{self.where}: this model is a vocoder; it needs a mel")
        audio, _ = super()._checked_audio(audio, what, None)
        mel = self._check_mel(mel)
        if mel.shape[0] != audio.shape[0] or mel.shape[1] * self.hop_length != audio.shape[1]:
            raise UserError(f"{what} has shape {audio.shape}; with a mel of shape {mel.shape} it must be "
                            f"({mel.shape[0]}, {mel.shape[1] * self.hop_length}) (frames x hop {self.hop_length})")
        return audio, mel

    def _from_noise(self, betas, steps, noise, mel):
        return self.synthesizer.vocode_from_noise(mel, betas, steps, noise)

    def savedmodel_module(self):
        """mel (float32 [batch, frames, n_mels]) -> audio, the fast schedule inside (serving.savedmodel)."""
        return VocoderExport(self.synthesizer, *self.schedule("fast"), self.n_mels)

    def _litert_sample(self, betas, steps, noise_spec):
        backbone = self.backbone
        specs = [tf.TensorSpec([None, None, self.n_mels], tf.float32, name="mel"), noise_spec]

        def sample(mel, noise):
            cond = backbone.conditioner(mel, training=False)  # once, for every step
            denoise = lambda x, t: backbone.denoiser([x, t, cond], training=False)  # noqa: E731
            return {"audio": self._unrolled(denoise, betas, steps, noise, self.synthesizer.prior.std(mel))}

        return sample, specs

    def litert_probe_inputs(self, noise_for):
        """The LiteRT model's inputs (noise, mel) for the probe mel, given noise_for(samples) -> its noise."""
        mel = self.log_mel(probe_audio(self.sample_rate)).numpy()[None]
        return noise_for(mel.shape[1] * self.hop_length), mel

    def precision_probe(self):
        mel = self.log_mel(probe_audio(self.sample_rate)).numpy()[None]
        betas, t = self.schedule("fast")
        return lambda: self.synthesizer.vocode(mel, betas, t, np.zeros(1, np.int64)).numpy()[0]

    def tensorboard_samples(self, corpus):
        """A held-out utterance of `corpus` vocoded with the fast schedule, beside its recording."""
        betas, t = self.schedule("fast")
        return VocodedSample(self.config, corpus,
                             lambda mel: self.synthesizer.vocode(mel[None], betas, t, np.zeros(1, np.int64)).numpy())
