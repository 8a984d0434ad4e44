"""Streaming vocoding: audio out while the mel frames are still coming in, equal to vocoding the whole utterance.

The reverse process runs as a pipeline of its S steps. Level S holds the start x_T, level n the audio after step n,
level 0 the result. A frame of level n is final once level n + 1 is final over the frame's receptive field. The
network reads (mel, audio) = `backbone.lookahead_frames` frames ahead, so the first step trails the mel by `mel`
frames and each other step the one above by `audio`: the result trails the mel by mel + (S - 1) x audio frames,
the lookahead that exactness needs. At the end of the utterance every level completes at once. The noise is drawn
by absolute sample position (samplers.per_example_normal) and every window runs the networks chunked vocoding runs
(Synthesizer.window_eps), so how the mel is chunked changes nothing but float rounding.

A window runs the networks on the mel as far ahead as it has come (up to `context_frames`) and on the level
above as far as it is final, zeros after. A smaller lookahead than exactness needs shares its frames evenly among
the steps, each then reading less of the future than its receptive field: lower latency, at an error that
`tf-diffwave bench` measures.
"""

import numpy as np
import tensorflow as tf

from tf_diffwave.diffusion.prior import scaled
from tf_diffwave.diffusion.samplers import output_clip, per_example_normal, reverse_coefficients, step_clip, step_mean
from tf_diffwave.errors import UserError


class _Frames:
    """The final frames of one signal, frame f at [f * width, (f + 1) * width) along axis 1 of `values`, held from
    frame `start` on; `done` frames are final."""

    def __init__(self, width):
        self.width, self.start, self.done, self.values = width, 0, 0, None

    def append(self, values):
        """Add the next frames (1, frames * width, ...)."""
        self.values = values if self.values is None else np.concatenate([self.values, values], axis=1)
        self.done += values.shape[1] // self.width

    def window(self, a, b):
        """Frames [a, b), a >= start."""
        return self.values[:, (a - self.start) * self.width: (b - self.start) * self.width]

    def forget_before(self, frame):
        """Let go of the frames before `frame`."""
        if self.values is not None and frame > self.start:
            self.values = self.window(frame, self.done)
            self.start = frame


def step_lookaheads(total, steps):
    """The frames of right context each of `steps` steps gets when the whole lookahead is `total` frames."""
    return [total // steps + (1 if n < total % steps else 0) for n in range(steps)]


def exact_lookaheads(backbone, steps):
    """The frames each of `steps` steps (indexed as the reverse process counts them, the first step last) trails the
    level above by, for audio equal to whole vocoding's: the network's reach into the mel for the first step, into
    the noisy audio for the others."""
    mel, audio = backbone.lookahead_frames
    return [audio] * (steps - 1) + [mel]


class StreamingVocoder:
    """Vocodes one utterance whose mel arrives in chunks: `push(mel_chunk)` and, when the mel has ended, `finish()`
    return the audio samples that have become final (float32 (samples,), possibly none). Drawn with `seed` through
    `synthesizer` with the schedule (betas, the network's inputs); `lookahead` in frames (None: exact)."""

    def __init__(self, synthesizer, betas, inputs, seed, lookahead=None):
        if synthesizer.backbone.max_frames is not None:
            raise UserError(f"{synthesizer.backbone.family.title} networks see their whole window (S4 layers): they "
                            f"have no finite receptive field to stream with; vocode whole utterances")
        if not synthesizer.backbone.local_decoding:
            raise UserError(f"this {synthesizer.backbone.family.title} model filters its whole output after sampling "
                            f"(model.fregrad.output_filter): turn that off to stream, or vocode whole utterances")
        self.synthesizer, self.hop = synthesizer, synthesizer.hop
        self.context = synthesizer.backbone.context_frames
        steps = len(betas)
        exact = exact_lookaheads(synthesizer.backbone, steps)
        self.exact_lookahead = sum(exact)
        self.lookahead = self.exact_lookahead if lookahead is None else int(lookahead)
        if not 0 <= self.lookahead <= self.exact_lookahead:
            raise UserError(f"lookahead {lookahead}: give 0 to {self.exact_lookahead} frames (the exact lookahead of "
                            f"this network's {steps} steps)")
        self.right = exact if lookahead is None else step_lookaheads(self.lookahead, steps)
        self.coefficients = reverse_coefficients(betas, synthesizer.options.precision)
        self.inputs = tf.constant(inputs, tf.float32)
        self.seeds = tf.constant([seed], tf.int64)
        self.mel = _Frames(1)
        self.mel_seen = []  # every frame, for priors whose std depends on the frames before (FreGrad's filters)
        self.frame_stds = None
        self.levels = [_Frames(self.hop) for _ in range(steps + 1)]
        self.emitted = 0  # frames of the result returned

    def push(self, mel):
        """Take the next mel frames (frames, n_mels); the audio that is final now."""
        self.mel.append(np.asarray(mel, np.float32)[None])
        self.mel_seen.append(np.asarray(mel, np.float32))
        self.frame_stds = None
        return self._advance(ended=False)

    def finish(self):
        """The mel has ended: the rest of the audio."""
        return self._advance(ended=True)

    def _noise(self, stream, f0, f1):
        """The prior's draws of `stream` for frames [f0, f1), its std computed from every frame so far (a frame's
        std depends on no later frame)."""
        z = per_example_normal(self.seeds, (f1 - f0) * self.hop, stream, start=f0 * self.hop)
        prior = self.synthesizer.prior
        if prior.standard:
            return z
        if self.frame_stds is None:
            self.frame_stds = prior.frame_stds(np.concatenate(self.mel_seen)[None])
        return scaled(z, prior.expanded(self.frame_stds[:, f0:f1]))

    def _advance(self, ended):
        top, options, c = self.levels[-1], self.synthesizer.options, self.coefficients
        if self.mel.done > top.done:
            top.append(self._noise(-1, top.done, self.mel.done).numpy())
        for n in reversed(range(len(self.levels) - 1)):
            above, level = self.levels[n + 1], self.levels[n]
            upper = above.done if ended else above.done - self.right[n]
            if upper <= level.done:
                continue
            a, b = max(level.done - self.context, 0), min(upper + self.context, self.mel.done)
            x = above.window(a, min(b, above.done))
            # zeros past what is final: with the exact lookahead the frames kept do not read them
            x = np.pad(x, [(0, 0), (0, (b - a) * self.hop - x.shape[1])])
            eps = self.synthesizer.window_eps(self.mel.window(a, b), x, self.inputs[n][None],
                                              tf.constant(a, tf.int32))
            keep = slice((level.done - a) * self.hop, (upper - a) * self.hop)
            x = step_mean(c, n, above.window(level.done, upper), tf.cast(eps[:, keep], tf.float32), options)
            if n > 0:
                x = x + c["sigma"][n] * self._noise(n, level.done, upper)
            level.append(step_clip(x, options).numpy())
        result = self.levels[0]
        if result.done == self.emitted:
            return np.zeros(0, np.float32)
        audio = self.synthesizer.backbone.signal_to_audio(output_clip(result.window(self.emitted, result.done),
                                                                      options)).numpy()[0]
        self.emitted = result.done
        self.mel.forget_before(result.done - self.context)
        for above, level in zip(self.levels[1:], self.levels):
            above.forget_before(level.done - self.context)
        result.forget_before(self.emitted)
        return audio
