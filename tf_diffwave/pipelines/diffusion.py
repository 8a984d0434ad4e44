"""What the two diffusion pipelines share: the model's inference schedules (diffusion.Sampler), the synthesizer
that runs the reverse process with its networks, the checks of noisy audio and schedules, and the LiteRT graph's
reverse process (unrolled, the noise an input)."""

import numpy as np
import tensorflow as tf

from tf_diffwave.diffusion.samplers import Sampler, reverse_process_from_noise
from tf_diffwave.diffusion.synthesizer import Synthesizer
from tf_diffwave.errors import UserError
from tf_diffwave.pipelines.base import Pipeline


class DiffusionPipeline(Pipeline):
    """The reverse process of a diffusion backbone, with the schedules of its config: `sampler` (the schedules by
    name, and what the network is given at each step) and `synthesizer` (the sampling graphs)."""

    def __init__(self, backbone, config, where=""):
        super().__init__(backbone, config, where)
        self.sampler = Sampler.from_config(config["diffusion"], self.family)
        self.synthesizer = Synthesizer.from_config(backbone, config)

    @property
    def noise_input(self):
        """What the network is conditioned on: "step" (DiffWave) or "level" (WaveGrad)."""
        return self.family.noise_input

    def schedule(self, steps):
        """(betas float64, the network's inputs float32) of a schedule name or a list of betas."""
        return self.sampler.betas_and_steps(steps)

    def _fast_schedule_tensors(self):
        betas, steps = self.schedule("fast")
        return tf.constant(betas, tf.float64), tf.constant(steps, tf.float32)

    def _checked_audio(self, audio, what, mel):
        """`audio` as float32 (B, samples) and the mel it goes with (the vocoder's check); here: no mel."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] == 0 or not np.all(np.isfinite(audio)):
            raise UserError(f"{what} has shape {audio.shape} or non-finite values; expected finite (batch, samples)")
        if mel is not None:
            raise UserError(f"{self.where}: this model is unconditional; it takes no mel")
        return audio, None

    def denoise(self, audio, step, mel=None):
        """The network's noise estimate (float32 [batch, samples]) for noisy `audio` [batch, samples], given `mel`
        [batch, frames, n_mels] for a vocoder, at `step`: a number or an array [batch] of what the network is
        conditioned on (`noise_input`): the 0-based training step (fractional steps interpolate the step
        embedding), or for WaveGrad the noise level sqrt(alpha_bar) in (0, 1]."""
        audio, mel = self._checked_audio(audio, "audio", mel)
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
        betas, t = self.schedule(steps)
        if noise.ndim != 3 or len(noise) != len(betas):
            raise UserError(f"noise has shape {noise.shape}, expected ({len(betas)}, batch, samples) for the "
                            f"{len(betas)}-step schedule")
        _, mel = self._checked_audio(noise[0], "noise[0]", mel)
        return self._from_noise(betas, t, noise, mel).numpy()

    def litert_function(self):
        """(sample, input specs): the reverse process with the fast schedule unrolled into one graph, its noise an
        input (S, B, samples) (see serving.litert), for the LiteRT converter."""
        betas, steps = self.schedule("fast")
        noise = tf.TensorSpec([len(betas), None, None], tf.float32, name="noise")
        return self._litert_sample(betas, steps, noise)

    def _unrolled(self, eps_fn, betas, steps, noise, std=None):
        """The audio of the reverse process unrolled, every draw given (the network's signal decoded)."""
        return self.backbone.signal_to_audio(reverse_process_from_noise(eps_fn, betas, steps, noise,
                                                                        self.synthesizer.options, unroll=True, std=std))
