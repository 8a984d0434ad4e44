"""Loading trained models: `tf_diffwave.load(model_dir)` and the vocode / export calls on the result."""

import os

import numpy as np
import tensorflow as tf

from tf_diffwave.config import load_run_config
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_conventions import check_mel, convert
from tf_diffwave.diffusion.samplers import Sampler
from tf_diffwave.diffusion.synthesizer import Synthesizer
from tf_diffwave.errors import UserError
from tf_diffwave.inference.checkpoints import restore_ema
from tf_diffwave.models.contract import evaluation_loss
from tf_diffwave.models.registry import PRECISION_POLICIES, build_backbone
from tf_diffwave.serving.auto_precision import choose, cpu_flags, probe_audio
from tf_diffwave.serving.savedmodel import export_model
from tf_diffwave.shipped import DEMO_MODEL_DIR


class TrainedModel:
    """A trained model: its config, EMA weights and samplers."""

    def __init__(self, model_dir, precision="float32"):
        if not os.path.isdir(model_dir):
            raise UserError(f"{model_dir}: model folder not found")
        self.model_dir = model_dir
        auto = precision == "auto"
        self.precision = "float32" if auto else check_precision(precision)
        self.config = load_run_config(model_dir)
        self.backbone = build_backbone(self.config, PRECISION_POLICIES[self.precision])
        self.family = self.backbone.family
        self.step = restore_ema(self.backbone.model, model_dir)
        # the inference schedules of a diffusion model (None for an autoregressive one)
        self.sampler = None if self.family.autoregressive else \
            Sampler.from_config(self.config["diffusion"], self.family)
        self.synthesizer = self._synthesizer(self.backbone)
        self.log_mel = LogMel.from_config(self.config["audio"])
        self._features = self.log_mel.traced()
        # what precision="auto" chose and why, one line (None for a precision given by name)
        self.precision_choice = self._choose_precision() if auto else None

    def _choose_precision(self):
        """Try the reduced precisions this CPU has instructions for (auto_precision), take the one chosen; its
        line."""
        if self.unconditional or self.family.autoregressive:
            return "precision auto: float32 (the probe vocodes a mel: only vocoders have reduced-precision paths)"
        mel = self.log_mel(probe_audio(self.sample_rate)).numpy()[None]
        betas, t = self.sampler.betas_and_steps("fast")
        synthesizers = {p: self.synthesizer_in(p) for p in ("float32", "bfloat16")}
        seeds = np.zeros(1, np.int64)
        runners = {p: (lambda s=s: s.vocode(mel, betas, t, seeds).numpy()[0]) for p, s in synthesizers.items()}
        precision, line = choose(runners, lambda audio: self.log_mel(audio).numpy(), cpu_flags())
        self.precision, self.synthesizer = precision, synthesizers[precision]
        return line

    def _synthesizer(self, backbone):
        return Synthesizer.from_config(backbone, self.config)

    def synthesizer_in(self, precision):
        """A Synthesizer of this model's weights whose networks compute in `precision` (one of
        PRECISION_POLICIES)."""
        if check_precision(precision) == self.precision:
            return self.synthesizer
        backbone = build_backbone(self.config, PRECISION_POLICIES[precision])
        backbone.model.set_weights(self.backbone.model.get_weights())
        return self._synthesizer(backbone)

    @property
    def sample_rate(self):
        return self.config["audio"]["sample_rate"]

    @property
    def n_mels(self):
        return self.config["audio"]["n_mels"]

    @property
    def unconditional(self):
        return self.backbone.unconditional

    @property
    def noise_input(self):
        """What the network is conditioned on: "step" (DiffWave) or "level" (WaveGrad)."""
        return self.family.noise_input

    def features(self, audio, name="audio"):
        """The model's own mel features (frames, n_mels) of float audio (samples,) at its sample rate; errors name
        the audio `name` (its file, say)."""
        audio = np.asarray(audio, dtype=np.float32)
        hop = self.config["audio"]["hop_length"]
        if audio.ndim != 1:
            raise UserError(f"{name} has shape {audio.shape}; expected (samples,)")
        if len(audio) < hop:
            raise UserError(f"{name}: {len(audio)} samples, shorter than one mel frame ({hop} samples)")
        return self._features(audio).numpy()

    def vocode(self, mel, steps="fast", seed=0, convention=None, **convention_options):
        """Float32 audio from a mel (frames, n_mels) -> (samples,), or a batch (B, frames, n_mels) -> (B, samples).

        Example b of the batch is drawn with seed `seed + b`. A mel in another system's `convention`
        (data.mel_conventions: "ln", "log10" with `stats`, "db" with `max_norm`, `min_level_db`, `ref_level_db`,
        "lmnt") is converted to the model's features first; a mel that cannot be in them stops with a UserError
        naming the convention it most likely has."""
        mel = self._given_mel(mel, convention, convention_options)
        single = mel.ndim == 2
        batch = self._check_mel(mel[None] if single else mel)
        betas, t = self.sampler.betas_and_steps(steps)
        audio = self.synthesizer.vocode(batch, betas, t, seed + np.arange(len(batch), dtype=np.int64)).numpy()
        return audio[0] if single else audio

    def stream(self, mel_chunks, steps="fast", seed=0, lookahead=None, convention=None, **convention_options):
        """Vocode one utterance whose mel arrives in chunks: yields float32 audio chunks (samples,) as soon as they
        are final. With the default `lookahead` (None: `exact_lookahead(steps)` frames) the audio equals
        `vocode` of the whole mel with the same seed, however the mel is chunked; a smaller lookahead (frames)
        gives lower latency and audio that differs from it. Each chunk (frames, n_mels) is converted and checked
        as `vocode` does."""
        from tf_diffwave.diffusion.streaming import StreamingVocoder

        betas, t = self.sampler.betas_and_steps(steps)
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
        from tf_diffwave.diffusion.streaming import exact_lookaheads

        betas, _ = self.sampler.betas_and_steps(steps)
        return sum(exact_lookaheads(self.backbone, len(betas)))

    def _given_mel(self, mel, convention, convention_options, what="mel"):
        """A vocoder's mel in the model's features: converted from `convention` if given, and checked."""
        if self.unconditional:
            raise UserError(f"{self.model_dir}: this model is unconditional; it generates audio without a mel "
                            f"(use unconditional_generate)")
        if convention is not None:
            mel = convert(mel, convention, self.log_mel, **convention_options)
        check_mel(mel, self.log_mel, what)
        return np.asarray(mel, dtype=np.float32)

    def prior_std(self, mel):
        """The prior's std of every sample (float32 (samples,) for a mel (frames, n_mels), or (B, samples) for a
        batch): per frame, PriorGrad's normalised energy floored at `diffusion.std_min`; ones for the standard
        prior."""
        if self.unconditional:
            raise UserError(f"{self.model_dir}: this model is unconditional; its prior is the standard normal")
        mel = np.asarray(mel, dtype=np.float32)
        single = mel.ndim == 2
        batch = self._check_mel(mel[None] if single else mel)
        std = self.synthesizer.prior.std(batch)
        std = np.ones((len(batch), batch.shape[1] * self.config["audio"]["hop_length"]), np.float32) \
            if std is None else std.numpy()
        return std[0] if single else std

    def _check_mel(self, mel, what="mel"):
        """`mel` as float32 (B, frames, n_mels), or a UserError saying how it is not."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 3 or mel.shape[-1] != self.n_mels or mel.shape[1] == 0:
            raise UserError(f"{what} has shape {mel.shape}, expected (batch, frames, {self.n_mels})")
        if not np.all(np.isfinite(mel)):
            raise UserError(f"{what} contains NaN or infinite values")
        return mel

    def _check_audio(self, audio, what, mel=None):
        """`audio` as float32 (B, samples), checked against the mel batch it goes with (a vocoder's)."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] == 0 or not np.all(np.isfinite(audio)):
            raise UserError(f"{what} has shape {audio.shape} or non-finite values; expected finite (batch, samples)")
        if self.unconditional and mel is not None:
            raise UserError(f"{self.model_dir}: this model is unconditional; it takes no mel")
        if not self.unconditional:
            if mel is None:
                raise UserError(f"{self.model_dir}: this model is a vocoder; it needs a mel")
            mel = self._check_mel(mel)
            hop = self.config["audio"]["hop_length"]
            if mel.shape[0] != audio.shape[0] or mel.shape[1] * hop != audio.shape[1]:
                raise UserError(f"{what} has shape {audio.shape}; with a mel of shape {mel.shape} it must be "
                                f"({mel.shape[0]}, {mel.shape[1] * hop}) (frames x hop {hop})")
        return audio, mel

    def denoise(self, audio, step, mel=None):
        """The network's noise estimate (float32 [batch, samples]) for noisy `audio` [batch, samples], given `mel`
        [batch, frames, n_mels] for a vocoder, at `step`: a number or an array [batch] of what the network is
        conditioned on (`noise_input`): the 0-based training step (fractional steps interpolate the step
        embedding), or for WaveGrad the noise level sqrt(alpha_bar) in (0, 1]."""
        audio, mel = self._check_audio(audio, "audio", mel)
        step = np.broadcast_to(np.asarray(step, np.float32), audio.shape[:1])
        if self.noise_input == "level":
            if np.any(step <= 0) or np.any(step > 1):
                raise UserError(f"noise level {step.tolist()} out of range: levels sqrt(alpha_bar) lie in (0, 1]")
        elif np.any(step < 0) or np.any(step > self.sampler.schedule.num_steps - 1):
            raise UserError(f"step {step.tolist()} out of range: the training steps are 0 to "
                            f"{self.sampler.schedule.num_steps - 1}")
        return self.synthesizer.denoise(audio, step, mel).numpy()

    def reverse_process(self, noise, mel=None, steps="fast"):
        """Audio (float32 [batch, samples]) sampled with every noise draw given, for comparing samplers and
        implementations: `noise` [S, batch, samples] for a schedule of S steps holds the start in noise[S - 1] and
        the draw added after step n >= 1 in noise[n - 1] (lmnt-com/diffwave's order), standard-normal draws that
        the model scales by its prior's std; `mel` for a vocoder."""
        noise = np.asarray(noise, dtype=np.float32)
        betas, t = self.sampler.betas_and_steps(steps)
        if noise.ndim != 3 or len(noise) != len(betas):
            raise UserError(f"noise has shape {noise.shape}, expected ({len(betas)}, batch, samples) for the "
                            f"{len(betas)}-step schedule")
        _, mel = self._check_audio(noise[0], "noise[0]", mel)
        if mel is None:
            return self.synthesizer.generate_from_noise(betas, t, noise).numpy()
        return self.synthesizer.vocode_from_noise(mel, betas, t, noise).numpy()

    def unconditional_generate(self, n, seed=0, steps="fast", batch_size=16, on_batch=None, **options):
        """Float32 audio (n, model.audio_length) generated from noise; clip i is drawn with seed `seed + i`, so
        the clips do not depend on `batch_size`. `on_batch(done)` is called after each batch. Diffusion models use
        the schedule `steps`; autoregressive ones take their family's sampling options (for the autoregressive
        SaShiMi: temperature, top_p, prompt (float audio (samples,) that begins every clip), and on_sample(done)
        for progress within a batch)."""
        if not self.unconditional:
            raise UserError(f"{self.model_dir}: this model is a vocoder; it needs a mel (use vocode)")
        if n < 1 or batch_size < 1:
            raise UserError(f"the number of clips ({n}) and the batch size ({batch_size}) must be at least 1")
        length = self.config["model"]["audio_length"]
        if self.family.autoregressive:
            known = {flag.name for flag in self.family.sampling_flags} | {"on_sample"}
            unknown = sorted(set(options) - known)
            if unknown:
                raise UserError(f"{', '.join(unknown)}: not sampling options of {self.family.title} models (they take "
                                f"{', '.join(sorted(known))})")
            own = self.backbone.own_sampler(self.config)
            generate = lambda seeds: own.generate(seeds, length, **options)  # noqa: E731
        else:
            if options:
                raise UserError(f"{', '.join(sorted(options))}: {self.family.title} models take no sampling options "
                                f"but the schedule (steps)")
            betas, t = self.sampler.betas_and_steps(steps)
            generate = lambda seeds: self.synthesizer.generate(seeds, length, betas, t)  # noqa: E731
        clips = []
        for start in range(0, n, batch_size):
            seeds = seed + np.arange(start, min(start + batch_size, n), dtype=np.int64)
            clips.append(generate(seeds).numpy())
            if on_batch is not None:
                on_batch(start + len(seeds))
        return np.concatenate(clips)

    def _check_sequence(self, values, what, dtype):
        """`values` as a (n, samples) array of `dtype`, for an autoregressive model's network: samples a multiple
        of its period, at most the config's audio_length."""
        if not self.family.autoregressive:
            raise UserError(f"{self.model_dir}: a diffusion model has no exact likelihood; {what} is for "
                            f"autoregressive models")
        values = np.asarray(values, dtype)
        length, period = self.config["model"]["audio_length"], self.backbone.period
        if values.ndim != 2 or values.shape[1] > length or values.shape[1] % period:
            raise UserError(f"{what}: shape {values.shape}, expected (n, samples) with samples a multiple of "
                            f"{period} up to {length}")
        return values

    def logits(self, tokens):
        """The logits (float32 [n, samples, 256]) of each next mu-law class given input tokens (int [n, samples],
        0 .. 255; the first is the class before the clip, 128), for autoregressive models, in convolution mode."""
        tokens = self._check_sequence(tokens, "tokens", np.int32)
        if tokens.size and (tokens.min() < 0 or tokens.max() > 255):
            raise UserError(f"tokens: values from {tokens.min()} to {tokens.max()}, expected mu-law classes 0 .. 255")
        return self.backbone.model(tf.constant(tokens)).numpy()

    def nll(self, clips, batch_size=8):
        """Negative log-likelihood in bits per sample of each clip (n, samples) (samples as for `logits`), for
        likelihood models (the autoregressive ones): the training objective of the EMA weights, in convolution
        mode."""
        clips = self._check_sequence(clips, "clips", np.float32)
        return np.concatenate([evaluation_loss(self.backbone, self.config,
                                               {"audio": tf.constant(clips[start: start + batch_size])}).numpy()
                               for start in range(0, len(clips), batch_size)])

    def export(self, export_root, version=None, precision=None):
        """Write a TF Serving version folder <export_root>/<version> (default: the checkpoint's step) whose networks
        compute in `precision` (default: the model's); its signature takes and returns float32 either way."""
        return export_model(self.synthesizer_in(precision or self.precision), self.sampler, self.config,
                            export_root, self.step if version is None else version)


def check_precision(precision):
    """`precision` if it names one of PRECISION_POLICIES, else a UserError listing them."""
    if precision not in PRECISION_POLICIES:
        raise UserError(f"unknown precision '{precision}': use one of {', '.join(PRECISION_POLICIES)}")
    return precision


def load(model_dir=None, precision="float32"):
    """Load a trained model folder (default: the bundled demo checkpoint); its networks compute in `precision`
    "float32", "bfloat16" (CPUs with AVX-512 BF16 or AMX, TPUs) or "float16" (GPUs), the sampler's arithmetic
    staying in float32; "auto" tries the reduced ones this CPU has instructions for and keeps the fastest within
    the quality bound (`precision_choice` says which and why)."""
    return TrainedModel(model_dir or DEMO_MODEL_DIR, precision)
