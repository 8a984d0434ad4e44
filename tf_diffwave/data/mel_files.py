"""Mel arrays stored as .npy files, one per utterance (no TensorFlow: commands check them before importing it)."""

import os

import numpy as np

from tf_diffwave.errors import UserError


def read_mel(path, n_mels):
    """A log-mel array (frames, n_mels) from a .npy file, checked for shape and finite values."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: mel file not found")
    try:
        mel = np.load(path, allow_pickle=False)
    except Exception as err:
        if "allow_pickle" in str(err):  # numpy's advice to allow pickles: the file holds Python objects
            raise UserError(f"{path}: not a mel array (it holds Python objects, not numbers)") from None
        raise UserError(f"{path}: not a readable .npy array ({err})") from None
    if not isinstance(mel, np.ndarray) or not np.issubdtype(mel.dtype, np.number):
        raise UserError(f"{path}: not a mel array of numbers")
    if mel.ndim == 2 and mel.shape[0] == n_mels and mel.shape[1] != n_mels:
        raise UserError(f"{path}: mel has shape {mel.shape}: it looks transposed (mels before frames); expected "
                        f"(frames, {n_mels})")
    if mel.ndim != 2 or mel.shape[1] != n_mels or mel.shape[0] == 0:
        raise UserError(f"{path}: mel has shape {mel.shape}, expected (frames, {n_mels})")
    if not np.all(np.isfinite(mel)):
        raise UserError(f"{path}: mel contains NaN or infinite values")
    return mel.astype(np.float32)


def mel_path(mel_dir, utterance_id):
    """Where preprocessing stores the mel of one utterance."""
    return os.path.join(mel_dir, f"{utterance_id}.npy")


def crop_to_audio(mel, samples, hop_length):
    """The frames of `mel` (frames, n_mels) that `samples` of audio cover whole: the first samples // hop_length."""
    return mel[: samples // hop_length]
