"""The contract every denoising network (backbone) meets.

The diffusion core, the trainer, the synthesizer, the exports and the benchmark use a backbone only through
`Backbone`'s attributes and methods; none of them knows which network it drives. A new backbone is a module of its
own that subclasses `Backbone`, a line in `backbones.BACKBONES` and its keys in the config.
"""

import contextlib


class Backbone:
    """What a denoising network offers. A subclass sets, in its constructor:

    - `denoiser`: Keras model (audio [B, L], step [B], and for vocoders the conditioner's output) -> predicted
      noise [B, L] (DiffWave, eq. 7: the step may be fractional, for aligned fast schedules);
    - `conditioner`: Keras model mel [B, frames, n_mels] -> what the denoiser takes, computed once per utterance
      when sampling; None for unconditional models;
    - `model`: the training model chaining them, (audio, step[, mel]) -> predicted noise;
    - `hop_length`, `n_mels`, `unconditional`: from the config.
    """

    max_frames = None  # the most mel frames one pass takes (None: any); a chunk of a long input must fit it

    @property
    def context_frames(self):
        """Mel frames on each side of a chunk that a chunked vocoding pass adds, so that the kept centre of the
        chunk equals the whole-utterance result (the receptive field, or an approximation of it)."""
        raise NotImplementedError

    def own_learning_rate_variables(self):
        """(variables, config key of their learning rate) for the weights that train with an Adam of their own
        (the trainer gives them a second optimizer), or None when every weight trains alike."""
        return None

    def sampling(self):
        """A context manager entered once per sampling call, around the reverse process: for work that depends on
        the weights only and would otherwise be repeated at every denoising step."""
        return contextlib.nullcontext()

    wants_full_float32 = False  # GPU TF32 matmuls cost this network accuracy (see config key `model.tf32`)
