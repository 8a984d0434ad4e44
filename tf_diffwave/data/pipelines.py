"""Training input pipelines: random audio crops with their matching mel frames, or whole fixed-length clips."""

import logging
import os

import numpy as np
import tensorflow as tf

from tf_diffwave.data.audio import check_audio_file, fit_length, read_audio
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_files import mel_path, read_mel, uses_precomputed_mels
from tf_diffwave.errors import UserError

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's


class UnreadableFiles:
    """The training files that failed to read: each is skipped with a one-line warning (once) and counted. When
    more than half of the split has failed, `error` says so and the pipelines end (see `Trainer.train`)."""

    def __init__(self, ids):
        self.total = len(ids)
        self.failed, self.warned = set(), set()
        self.error = None

    def warn(self, message):
        """Warn about a file that is used all the same (a truncated one), once."""
        if message not in self.warned:
            self.warned.add(message)
            logger.warning(message)

    @property
    def count(self):
        """How many distinct files have been skipped."""
        return len(self.failed)

    def read(self, reader, utterance_id):
        """reader(utterance_id), or None for a file that fails (now or before)."""
        if utterance_id in self.failed:
            return None
        try:
            return reader(utterance_id)
        except UserError as err:
            self.failed.add(utterance_id)
            logger.warning(f"skipping {err} ({self.count} of {self.total} training files skipped)")
            if 2 * self.count > self.total:
                self.error = f"{self.count} of the {self.total} training files are unreadable, the last one: {err}"
            return None

    def check_all(self, paths):
        """Try every file's header; raise UserError when most fail."""
        for utterance_id, path in paths.items():
            self.read(lambda _: check_audio_file(path), utterance_id)
        if self.error:
            raise UserError(self.error)


class CropSource:
    """Draws random training crops (audio, and either its mel or the audio around it to compute the mel from)."""

    def __init__(self, config, ids, corpus, files):
        a, d = config["audio"], config["data"]
        self.sample_rate, self.hop, self.n_fft, self.n_mels = (
            a["sample_rate"], a["hop_length"], a["n_fft"], a["n_mels"])
        self.crop_frames = d["crop_frames"]
        self.silence_pad = round(d["silence_pad"] * self.sample_rate)
        features = LogMel.from_config(a)
        self.mel_floor, self.pad_mode, self.margin = features.silence, features.pad_mode.lower(), features.margin
        self.frame_count = features.frame_count
        self.mel_dir = d["mel_dir"] if uses_precomputed_mels(d) else ""
        if self.silence_pad and self.mel_dir:
            raise UserError(f"data.silence_pad {d['silence_pad']}: must be 0 with precomputed mels (data.mel_dir)")
        self.ids, self.corpus, self.files = list(ids), corpus, files
        files.check_all({i: corpus.wav_paths[i] for i in self.ids})
        for i in self.ids:
            if self.mel_dir and not os.path.isfile(mel_path(self.mel_dir, i)):
                raise UserError(f"{mel_path(self.mel_dir, i)}: mel file not found; run preprocess.py again")
        self._cache = {}

    def _load(self, utterance_id):
        if utterance_id not in self._cache:
            audio = read_audio(self.corpus.wav_paths[utterance_id], self.sample_rate, self.files.warn)
            audio = np.pad(audio, self.silence_pad)
            mel = read_mel(mel_path(self.mel_dir, utterance_id), self.n_mels) if self.mel_dir else None
            self._cache[utterance_id] = (audio, mel)
        return self._cache[utterance_id]

    def examples(self, seed):
        """Endless random crops; with precomputed mels (audio, mel), otherwise (audio window with n_fft margin,)."""
        rng = np.random.default_rng(seed)
        samples = self.crop_frames * self.hop
        while not self.files.error:
            loaded = self.files.read(self._load, self.ids[rng.integers(len(self.ids))])
            if loaded is None:
                continue
            audio, mel = loaded
            frames = self.frame_count(len(audio)) if mel is None else len(mel)
            start = int(rng.integers(max(frames - self.crop_frames, 0) + 1))
            if mel is None:
                # padded as the features pad a whole utterance
                padded = np.pad(np.pad(audio, self.margin, mode=self.pad_mode), (0, samples + self.n_fft))
                yield (padded[start * self.hop: start * self.hop + samples + self.n_fft],)
            else:
                clip = np.pad(audio, (0, samples + self.hop))[start * self.hop: start * self.hop + samples]
                m = mel[start: start + self.crop_frames]
                m = np.pad(m, ((0, self.crop_frames - len(m)), (0, 0)), constant_values=self.mel_floor)
                yield clip, m


def random_clips(corpus, ids, sample_rate, length, seed, files):
    """Endless (clip (length,), label) pairs drawn at random from `ids`, each clip padded or cropped to `length`;
    files that fail to read are skipped (see UnreadableFiles)."""
    rng = np.random.default_rng(seed)
    while not files.error:
        utterance_id = ids[rng.integers(len(ids))]
        audio = files.read(lambda i: read_audio(corpus.wav_paths[i], sample_rate, files.warn), utterance_id)
        if audio is not None:
            yield fit_length(audio, length), corpus.labels.get(utterance_id, -1)


def clip_dataset(corpus, ids, sample_rate, length, seed, files=None):
    """random_clips as a tf.data.Dataset of {'audio': (length,), 'label': ()}; the files are checked first."""
    files = UnreadableFiles(ids) if files is None else files
    files.check_all({i: corpus.wav_paths[i] for i in ids})
    signature = (tf.TensorSpec([length], tf.float32), tf.TensorSpec([], tf.int32))
    ds = tf.data.Dataset.from_generator(lambda: random_clips(corpus, ids, sample_rate, length, seed, files),
                                        output_signature=signature)
    return ds.map(lambda audio, label: {"audio": audio, "label": label})


def training_examples(config, corpus, seed, examples, files=None):
    """Training examples from the training split, seeded: `examples` "clips" gives whole clips
    {'audio': (model.audio_length,)} (what generators train on), "crops" gives crops with their mels {'audio':
    (crop * hop,), 'mel': (crop, n_mels)} (vocoders). Endless, unless most files turn out unreadable
    (`files.error`, an UnreadableFiles of the split)."""
    a = config["audio"]
    files = UnreadableFiles(corpus.train_ids) if files is None else files
    if examples == "clips":
        ds = clip_dataset(corpus, corpus.train_ids, a["sample_rate"], config["model"]["audio_length"], seed, files)
        return ds.map(lambda example: {"audio": example["audio"]})
    source = CropSource(config, corpus.train_ids, corpus, files)
    samples = source.crop_frames * source.hop
    if source.mel_dir:
        signature = (tf.TensorSpec([samples], tf.float32), tf.TensorSpec([source.crop_frames, a["n_mels"]], tf.float32))
        ds = tf.data.Dataset.from_generator(lambda: source.examples(seed), output_signature=signature)
        ds = ds.map(lambda audio, mel: {"audio": audio, "mel": mel})
    else:
        log_mel = LogMel.from_config(a)
        window = samples + a["n_fft"]
        signature = (tf.TensorSpec([window], tf.float32),)
        ds = tf.data.Dataset.from_generator(lambda: source.examples(seed), output_signature=signature)
        margin = log_mel.margin

        def with_mel(audio_window):
            mel = log_mel(audio_window, pad=False)[: source.crop_frames]
            return {"audio": audio_window[margin: margin + samples], "mel": mel}

        ds = ds.map(with_mel, num_parallel_calls=tf.data.AUTOTUNE)
    return ds
