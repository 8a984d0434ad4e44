"""The mel features a model is conditioned on: one tf.signal function used in preprocessing, training, inference
and evaluation, in the convention the config names (`audio.features`).

- "hifigan" (HiFi-GAN / Tacotron 2 front ends): magnitude STFT with a periodic Hann window, Slaney mel filters,
  natural log of max(mel, floor), frames centred as librosa's `center=True` (zero padding).
- "lmnt" (lmnt-com/diffwave, what its published models expect): torchaudio's MelSpectrogram with power 1 and
  `normalized=True` (magnitudes divided by the window's L2 norm), HTK mel filters without normalisation, frames
  centred with reflect padding; then 20 log10(max(mel, floor)) - 20 dB, mapped from [-100, 0] dB to [0, 1].
- "ivanvovk" (ivanvovk/WaveGrad): torchaudio's MelSpectrogram with power 2, HTK mel filters without
  normalisation, frames centred with reflect padding; then log10 of the mel power, where a power of exactly 0 gives
  0 (no floor); the last frame is dropped, so a clip of n samples has floor(n / hop) frames.
- "tacotron2" (NVIDIA/tacotron2's TacotronSTFT, WaveGlow's and philsyn/DiffWave-Vocoder's): as "hifigan", but
  the centred frames padded by reflection (its STFT's `F.pad(..., mode="reflect")`).
- "priorgrad" (PriorGrad's vocoder, after HiFi-GAN's code): reflect padding of (n_fft - hop) / 2 on each side and
  uncentred frames, so that a clip of n samples has floor(n / hop) frames, frame i starting (n_fft - hop) / 2 before
  sample i x hop; magnitude sqrt(re^2 + im^2 + 1e-9), Slaney mel filters, natural log of max(mel, floor). (PriorGrad
  also scales each training clip to a peak of 0.95 before this; the features here take the audio as it is given.)
"""

import librosa
import numpy as np
import tensorflow as tf

# per convention: librosa mel-filter options, the padding mode, whether frames are centred (padding n_fft / 2) or
# start at the hop (padding (n_fft - hop) / 2), whether the window is normalised to unit L2 norm, the power of the
# STFT magnitude that is filtered, what is added to its square before the root, whether the last frame is dropped
CONVENTIONS = {
    "hifigan": {"htk": False, "norm": "slaney", "pad_mode": "CONSTANT", "centred": True, "unit_window": False,
                "power": 1, "epsilon": 0.0, "drop_last": False},
    "lmnt": {"htk": True, "norm": None, "pad_mode": "REFLECT", "centred": True, "unit_window": True, "power": 1,
             "epsilon": 0.0, "drop_last": False},
    "ivanvovk": {"htk": True, "norm": None, "pad_mode": "REFLECT", "centred": True, "unit_window": False, "power": 2,
                 "epsilon": 0.0, "drop_last": True},
    "tacotron2": {"htk": False, "norm": "slaney", "pad_mode": "REFLECT", "centred": True, "unit_window": False,
                  "power": 1, "epsilon": 0.0, "drop_last": False},
    "priorgrad": {"htk": False, "norm": "slaney", "pad_mode": "REFLECT", "centred": False, "unit_window": False,
                  "power": 1, "epsilon": 1e-9, "drop_last": False},
}
LMNT_REF_DB, LMNT_RANGE_DB = 20.0, 100.0  # lmnt-com/diffwave's preprocess.py: dB - 20, then (dB + 100) / 100


class LogMel:
    """Callable turning audio (..., samples) into mel features (..., frames, n_mels) with tf.signal."""

    def __init__(self, sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax, log_floor,
                 features="hifigan"):
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.sample_rate, self.fmin, self.fmax = sample_rate, fmin, fmax
        self.log_floor, self.convention = log_floor, features
        convention = CONVENTIONS[features]
        self.htk, self.norm, self.pad_mode = convention["htk"], convention["norm"], convention["pad_mode"]
        self.power, self.drop_last = convention["power"], convention["drop_last"]
        self.epsilon = convention["epsilon"]
        # samples of padding before the first frame (and after the last)
        self.margin = n_fft // 2 if convention["centred"] else (n_fft - hop_length) // 2
        filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                      htk=self.htk, norm=self.norm, dtype=np.float64)
        # the window's L2 norm folded into the filters (tf.signal.stft takes the window unscaled)
        window = librosa.filters.get_window("hann", win_length, fftbins=True)  # periodic, as torch.hann_window
        self.window_norm = float(np.sqrt(np.sum(window ** 2))) if convention["unit_window"] else 1.0
        self.basis = tf.constant(filters.T / self.window_norm, tf.float32)
        self.n_mels = n_mels
        # the largest filter output full-scale audio can give: a filter's weights times the window's sum
        self.largest_output = float(np.max(filters.sum(axis=1)) * window.sum() / self.window_norm) ** self.power

    @classmethod
    def from_config(cls, audio_config):
        """Build from the config's `audio` section."""
        return cls(**audio_config)

    def traced(self):
        """This callable as a tf.function for one utterance (samples,) of any length, traced once."""
        return tf.function(self, input_signature=[tf.TensorSpec([None], tf.float32)])

    @property
    def silence(self):
        """The feature value of digital silence (every mel bin zero)."""
        return float(self.compress(tf.constant(0.0, tf.float32)).numpy())

    def compress(self, mel):
        """Mel filter outputs (magnitudes, or for "ivanvovk" powers) -> features, in the tensor's dtype."""
        if self.convention == "lmnt":
            db = (20.0 / np.log(10.0)) * tf.math.log(tf.maximum(mel, self.log_floor)) - LMNT_REF_DB
            return tf.clip_by_value((db + LMNT_RANGE_DB) / LMNT_RANGE_DB, 0.0, 1.0)
        if self.convention == "ivanvovk":
            return tf.where(mel > 0.0, tf.math.log(mel) / np.log(10.0), 0.0)
        return tf.math.log(tf.maximum(mel, self.log_floor))

    def frame_count(self, samples):
        """How many feature frames a clip of `samples` samples has."""
        frames = (samples + 2 * self.margin - self.n_fft) // self.hop_length + 1
        return frames - 1 if self.drop_last else frames

    def decompressed(self, features):
        """Features (..., frames, n_mels) -> the mel filters' output they encode (a magnitude, or for "ivanvovk" a
        power), in the convention's own scale (lmnt's window normalisation kept): the inverse of the compression,
        exact above the floor. A tensor of the features' dtype."""
        features = tf.convert_to_tensor(features)
        if self.convention == "lmnt":
            return tf.pow(tf.constant(10.0, features.dtype), (features * LMNT_RANGE_DB - LMNT_RANGE_DB + LMNT_REF_DB)
                          / 20.0)
        if self.convention == "ivanvovk":
            return tf.pow(tf.constant(10.0, features.dtype), features)
        return tf.exp(features)

    def magnitude(self, features):
        """Features (frames, n_mels) -> what librosa's filters give for the STFT magnitude to `power`
        (n_mels, frames), float64 numpy, for Griffin-Lim."""
        mel = self.decompressed(tf.constant(features, tf.float64)).numpy()
        return (mel * self.window_norm).T

    def __call__(self, audio, pad=True):
        """Features of `audio`; with pad=False the caller has already padded `margin` samples on each side as the
        convention does (and the convention's last frame is not dropped)."""
        audio = tf.convert_to_tensor(audio, tf.float32)
        if pad:
            paddings = [[0, 0]] * (audio.shape.rank - 1) + [[self.margin, self.margin]]
            audio = tf.pad(audio, paddings, mode=self.pad_mode)
        stft = tf.signal.stft(audio, frame_length=self.n_fft, frame_step=self.hop_length,
                              fft_length=self.n_fft, window_fn=self._window, pad_end=False)
        if self.epsilon:
            power = tf.square(tf.math.real(stft)) + tf.square(tf.math.imag(stft)) + self.epsilon
            spectrum = tf.sqrt(power) if self.power == 1 else power
        else:
            spectrum = tf.abs(stft) if self.power == 1 else tf.square(tf.abs(stft))
        features = self.compress(tf.tensordot(spectrum, self.basis, axes=1))
        return features[..., :-1, :] if pad and self.drop_last else features

    def _window(self, frame_length, dtype):
        # librosa centres a window shorter than n_fft inside the n_fft-sample frame, zeros around it
        window = tf.signal.hann_window(self.win_length, periodic=True, dtype=dtype)
        left = (frame_length - self.win_length) // 2
        return tf.pad(window, [[left, frame_length - self.win_length - left]])
