"""Mel arrays stored as .npy files, one per utterance (no TensorFlow: commands check them before importing it)."""

import os

import numpy as np

from tf_diffwave.errors import UserError


def load_npy(path):
    """The array of a .npy file (no pickles), read only when its header declares no more data than the file holds
    (np.load allocates what the header declares before reading). ValueError says what is wrong."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0  # 2.0's layout, 3.0's too (its header is ASCII in practice)
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared > os.path.getsize(path) - f.tell():
            raise ValueError(f"its header declares {declared} bytes of data, more than the file holds")
    return np.load(path, allow_pickle=False)


def read_mel(path, n_mels):
    """A log-mel array (frames, n_mels) from a .npy file, checked for shape and finite values."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: mel file not found")
    try:
        mel = load_npy(path)
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


def uses_precomputed_mels(data_config):
    """True when `data.mel_dir` names a folder that holds .npy files."""
    d = data_config["mel_dir"]
    return bool(d) and os.path.isdir(d) and any(name.endswith(".npy") for name in os.listdir(d))


def utterance_mel(data_config, n_mels, utterance_id, features_of_recording):
    """The log-mel (frames, n_mels) of one utterance of a corpus: the .npy that preprocessing wrote for it in
    `data.mel_dir`, where that folder holds mels and has its file, else `features_of_recording()` (the model's
    features of its recording)."""
    path = mel_path(data_config["mel_dir"], utterance_id)
    if uses_precomputed_mels(data_config) and os.path.isfile(path):
        return read_mel(path, n_mels)
    return features_of_recording()


def crop_to_audio(mel, samples, hop_length):
    """The frames of `mel` (frames, n_mels) that `samples` of audio cover whole: the first samples // hop_length."""
    return mel[: samples // hop_length]
