"""The diffusion prior: DiffWave's N(0, I), or PriorGrad's N(0, diag(std^2)) with a std per sample taken from the
energy of its mel frame (Lee et al., "PriorGrad", ICLR 2022, section 3 and appendix A), or FreGrad's, one such std
per band of a two-band signal (Nguyen et al., "FreGrad", ICASSP 2024, section 2.2: the low band's from the lower
half of the mel bins, the high band's from the upper half), smoothed over the frames by two biquad filters.

With std = 1 everywhere every formula below is the standard one, so "standard" adds no operation to a graph: the
prior is applied where noise is drawn (training noise, the start x_T, every added draw), and the loss weighs the
error by 1 / std (the Mahalanobis norm of PriorGrad eq. 6).
"""

import numpy as np
import tensorflow as tf

from tf_diffwave.data.features import LogMel
from tf_diffwave.data.filters import biquad, filtered
from tf_diffwave.errors import UserError


def frame_energy(log_mel, mel):
    """E = sqrt(sum over the mel bins of each bin's amplitude) per frame (..., frames), float32: PriorGrad's energy
    for natural-log magnitude mels (sqrt of the sum of exp(mel)); for the other conventions the same sum over the
    magnitudes their features encode (for a power mel, the square root of each bin's power)."""
    decoded = log_mel.decompressed(tf.cast(mel, tf.float32))
    amplitude = tf.sqrt(decoded) if log_mel.power == 2 else decoded
    return tf.sqrt(tf.reduce_sum(amplitude, axis=-1))


class Prior:
    """The prior of one model, from its config (`diffusion.prior` and the statistics beside it).

    "fregrad" is for two-band signals, each sample pair [low, high] of the two half-rate Haar bands (see
    models/layers.HaarBands): a std per band and frame, the low band's from mel bins 0 .. n/2 - 1 with energies
    clamped as PriorGrad's, the high band's from the others without the clamp (FreGrad's dataset.py), both
    normalised by the full-band statistics; then, over the sequence of frames as if it were audio at half the
    sample rate, a 15 Hz highpass and a `sample_rate` / 4 - 12.5 Hz lowpass (FreGrad's remove_cutoff_frequency:
    5500 Hz at 22.05 kHz), each clamped to [-1, 1], and the floor std_min again."""

    def __init__(self, kind="standard", log_mel=None, energy_min=None, energy_max=None, std_min=0.1,
                 max_energy=None):
        self.kind, self.log_mel, self.std_min = kind, log_mel, std_min
        if kind in ("priorgrad", "fregrad"):
            if energy_min is None or energy_max is None:
                raise UserError("the PriorGrad prior needs the training set's energy statistics "
                                "('diffusion.energy_min' and 'diffusion.energy_max')")
            # PriorGrad's max_energy_override: frame energies clamped to it, and it replaces the training maximum
            self.energy_min = float(energy_min)
            self.energy_max = float(energy_max if max_energy is None else max_energy)
            self.max_energy = max_energy

    @classmethod
    def from_config(cls, config):
        """The prior a config's `diffusion` section describes, for the features of its `audio` section."""
        d = config["diffusion"]
        if d["prior"] == "standard":
            return cls()
        return cls(d["prior"], LogMel.from_config(config["audio"]), d["energy_min"], d["energy_max"], d["std_min"],
                   d["max_energy_override"])

    @property
    def standard(self):
        return self.kind == "standard"

    def frame_std(self, mel):
        """The std of each mel frame (B, frames), float32: the energy normalised by the statistics, floored at
        std_min."""
        energy = frame_energy(self.log_mel, mel)
        if self.max_energy is not None:
            energy = tf.minimum(energy, self.max_energy)
        std = (energy - self.energy_min) / (self.energy_max - self.energy_min)
        return tf.maximum(std, self.std_min)

    def std(self, mel):
        """The std of every sample (B, frames * hop), each frame's value held for its hop (for "fregrad", the pair of
        each band's); None for the standard prior (std 1)."""
        return None if self.standard else self.expanded(self.frame_stds(mel))

    def frame_stds(self, mel):
        """The std of each frame and band of the signal (B, frames, bands): PriorGrad's one band, FreGrad's two."""
        if self.kind == "fregrad":
            return tf.stack(self.band_frame_std(mel), axis=-1)
        return tf.expand_dims(self.frame_std(mel), -1)  # not [..., None]: a StridedSlice LiteRT has no kernel for

    def expanded(self, frame_stds):
        """Frame stds (B, frames, bands) as the std of every sample of the signal (B, frames * hop): each frame's
        held for its hop, the bands interleaved sample by sample."""
        bands = frame_stds.shape[-1]
        held = tf.repeat(frame_stds, self.log_mel.hop_length // bands, axis=1)
        return tf.reshape(held, [tf.shape(frame_stds)[0], -1])

    def band_frame_std(self, mel, filters=True):
        """FreGrad's std of each band and frame, (low (B, frames), high (B, frames)); without `filters`, before the
        biquads."""
        mel = tf.cast(mel, tf.float32)
        half = mel.shape[-1] // 2
        low = frame_energy(self.log_mel, mel[..., :half])
        high = frame_energy(self.log_mel, mel[..., half:])
        if self.max_energy is not None:
            low = tf.minimum(low, self.max_energy)
        stds = [tf.maximum((e - self.energy_min) / (self.energy_max - self.energy_min), self.std_min)
                for e in (low, high)]
        if not filters:
            return stds
        rate = self.log_mel.sample_rate // 2  # the frames taken as samples at the band's rate (FreGrad: 11025)
        highpass, lowpass = biquad("highpass", rate, 15.0), biquad("lowpass", rate, rate / 2 - 12.5)
        return [tf.maximum(filtered(filtered(std, *highpass), *lowpass), self.std_min) for std in stds]


def scaled(noise, std):
    """Standard-normal draws as draws of the prior: noise x std (the draws themselves for std None)."""
    return noise if std is None else noise * tf.cast(std, noise.dtype)


def energy_statistics(mels, log_mel):
    """(min, max) of the frame energy over an iterable of mels (frames, n_mels): PriorGrad's training-set
    statistics."""
    low, high = np.inf, -np.inf
    for mel in mels:
        energy = frame_energy(log_mel, mel).numpy()
        low, high = min(low, float(energy.min())), max(high, float(energy.max()))
    if not np.isfinite(low) or high <= low:
        raise UserError("the training mels have no energy range to normalise the prior by (every frame alike)")
    return low, high
