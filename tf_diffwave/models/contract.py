"""The contract every model family's network (its backbone) meets.

The diffusion core, the trainer, the pipelines and the exports use a backbone only through `Backbone`'s
attributes and methods, and what its family declares (registry.Family); none of them knows which network it
drives, and this module knows nothing of the diffusion core. A new family is a package of its own (its Family and
a Backbone subclass) and a line in registry.FAMILIES.
"""

import contextlib


class Backbone:
    """What a denoising network offers. A subclass is built from `(model_config, audio_config, policy)`, where
    model_config holds the keys common to every backbone (`model.*`) and those of its own section
    (`model.<name>.*`) and `policy` is the Keras dtype policy its layers compute under (given to each layer: no
    global policy is set), and sets, in its constructor:

    - `denoiser`: Keras model (audio [B, L], noise input [B], and for vocoders the conditioner's output) ->
      predicted noise [B, L]. The noise input is what its family's `noise_input` names: "step", the 0-based
      diffusion step (DiffWave eq. 7; fractional for aligned fast schedules), or "level", the continuous noise level
      sqrt(alpha_bar) (WaveGrad eq. 8-9). The diffusion core draws it in training and computes it when sampling;
    - `conditioner`: Keras model mel [B, frames, n_mels] -> what the denoiser takes, computed once per utterance
      (or per chunk) when sampling; None for unconditional models;
    - `model`: the training model chaining them, (audio, noise input[, mel]) -> predicted noise;
    - `hop_length`, `n_mels`, `unconditional`: from the config.

    A diffusion family only predicts noise: the diffusion core's objective trains it and its reverse process
    samples it. An autoregressive family (the autoregressive SaShiMi) sets `model` to its own network,
    `conditioner` and `denoiser` to None, and brings its own `training_objective` and `own_sampler`; its `model`
    maps input tokens (B, L), integers 0 .. `classes` - 1 (an attribute it sets), to logits (B, L, classes), L any
    multiple of its `period` up to the config's `model.audio_length`.

    `registry.build_backbone` sets `family` (the registry.Family) on the instance it builds.
    """

    family = None

    # the signal the diffusion runs on: `signal_bands` bands interleaved sample by sample (1: the audio itself;
    # FreGrad: its two half-rate Haar bands), made from audio and back by the two methods below
    signal_bands = 1
    local_decoding = True  # signal_to_audio maps each frame's samples alone (streaming decodes frames as they end)

    def audio_to_signal(self, audio):
        """The signal (B, L) the diffusion runs on for audio (B, L): the audio itself unless the family diffuses
        another representation of it (tf operations; L a multiple of the hop)."""
        return audio

    def signal_to_audio(self, signal):
        """Audio (B, L) from a sampled signal (B, L): the inverse of audio_to_signal, and whatever the family does
        to its samples before it (tf operations)."""
        return signal

    def chunk_networks(self):
        """(conditioner, denoiser) that vocode a long input chunk by chunk, the conditioner then running at every
        step: by default the two above; a family whose conditioner output is large per sample gives a pair that
        leaves more of the work to the denoiser, so that less is held per chunk."""
        return self.conditioner, self.denoiser

    max_frames = None  # the most mel frames one pass takes (None: any); a chunk of a long input must fit it

    @property
    def context_frames(self):
        """Mel frames on each side of a chunk that a chunked vocoding pass adds, so that the kept centre of the
        chunk equals the whole-utterance result (the receptive field, or an approximation of it)."""
        raise NotImplementedError

    @property
    def lookahead_frames(self):
        """(mel, audio): how many frames after a frame's own the noise estimate of its samples reads, in the mel and
        in the noisy audio: what streaming waits for at each step. By default `context_frames` for both."""
        return self.context_frames, self.context_frames

    def own_learning_rate_variables(self):
        """(variables, learning rate) for the weights that train with an Adam of their own (the trainer gives them
        a second optimizer), or None when every weight trains alike."""
        return None

    def training_objective(self, config):
        """How a training example becomes a loss, for a family that brings its own (the interface of
        diffusion.TrainingObjective: `model_inputs(batch)`, `per_example_loss(batch, prediction)`); None, the
        default, trains it with the diffusion core's objective (diffusion.objectives.for_backbone)."""
        return None

    def own_sampler(self, config):
        """For an autoregressive family, a tf.Module whose `generate(seeds, length, **options)` returns audio
        (B, length), clip b drawn from seeds[b] alone (options: its family's sampling flags, and `on_sample(done)`
        for progress), and whose `frozen()` returns a `generate(seeds, length)` safe to trace into an export. None
        for the families the diffusion core samples."""
        return None

    def window(self, origin):
        """A context manager entered while the networks compute a window of a longer utterance (chunked vocoding,
        streaming) that starts at mel frame `origin` (a tensor): for networks whose arithmetic depends on absolute
        positions, so that the window computes what the whole utterance computes there."""
        return contextlib.nullcontext()

    def sampling(self, portable=False):
        """A context manager entered once per sampling call, around the reverse process: for work that depends on
        the weights only and would otherwise be repeated at every denoising step. `portable` (entered eagerly, for
        LiteRT) asks for a graph of the operators every runtime has: real arithmetic and forward FFTs."""
        return contextlib.nullcontext()

