"""The diffusion generator's pipeline: seeds in, clips out (an unconditional DiffWave)."""

import tensorflow as tf

from tf_diffwave.pipelines.base import generate_in_batches
from tf_diffwave.pipelines.diffusion import DiffusionPipeline
from tf_diffwave.pipelines.tensorboard import GeneratedSamples
from tf_diffwave.serving.savedmodel import GeneratorExport


class DiffusionGenerator(DiffusionPipeline):
    """Unconditional generation with a diffusion backbone: the reverse process from standard-normal noise."""

    kind_name = "diffusion generator"

    @property
    def length(self):
        return self.config["model"]["audio_length"]

    def generate(self, n, seed=0, steps="fast", batch_size=16, on_batch=None, on_sample=None):
        """Float32 audio (n, model.audio_length) generated from noise with the schedule `steps`; clip i is drawn
        with seed `seed + i`, so the clips do not depend on `batch_size`. `on_batch(done)` is called after each
        batch (`on_sample`, progress within a batch, is not reported by this pipeline)."""
        betas, t = self.schedule(steps)
        return generate_in_batches(lambda seeds: self.synthesizer.generate(seeds, self.length, betas, t).numpy(),
                                   n, seed, batch_size, self.length, on_batch)

    def _from_noise(self, betas, steps, noise, mel):
        return self.synthesizer.generate_from_noise(betas, steps, noise)

    def _clip_function(self):
        betas, steps = self._fast_schedule_tensors()
        return lambda seeds, length: self.synthesizer.generate(seeds, length, betas, steps)

    def savedmodel_module(self):
        """seed (int64 [batch]) -> audio (batch, audio_length), the fast schedule inside (serving.savedmodel)."""
        return GeneratorExport(self._clip_function(), self.length, self.synthesizer)

    def _litert_sample(self, betas, steps, noise_spec):
        backbone = self.backbone

        def sample(noise):
            denoise = lambda x, t: backbone.denoiser([x, t], training=False)  # noqa: E731
            return {"audio": self._unrolled(denoise, betas, steps, noise)}

        return sample, [noise_spec]

    def litert_probe_inputs(self, noise_for):
        """The LiteRT model's inputs (noise, no mel) for one clip, given noise_for(samples) -> its noise."""
        return noise_for(self.length), None

    def tensorboard_samples(self, corpus):
        """A few clips generated from fixed seeds."""
        generate = self._clip_function()
        return GeneratedSamples(self.config, lambda seeds: generate(tf.constant(seeds), self.length).numpy())


