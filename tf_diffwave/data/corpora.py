"""Corpus layouts: which utterances a folder holds, where their WAVs are, their labels, and the splits."""

import csv
import hashlib
import logging
import os

from tf_diffwave.errors import UserError
from tf_diffwave.shipped import existing_path

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's

SC09_EXTENSIONS = (".wav", ".flac")  # SC09 clips: Speech Commands ships WAV; FLAC holds the same samples in less space
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class Corpus:
    """Utterance ids (in corpus order) with their WAV paths, optional integer labels, and three splits."""

    def __init__(self, wav_paths, train_ids, valid_ids, test_ids, labels=None):
        self.wav_paths = dict(wav_paths)
        self.ids = list(self.wav_paths)
        self.train_ids, self.valid_ids, self.test_ids = list(train_ids), list(valid_ids), list(test_ids)
        self.labels = dict(labels or {})

    def split(self, name):
        """The ids of split `name`: 'train', 'valid' or 'test'."""
        splits = {"train": self.train_ids, "valid": self.valid_ids, "test": self.test_ids}
        if name not in splits:
            raise UserError(f"unknown split '{name}': use train, valid or test")
        return splits[name]


def read_ljspeech(path, valid_count):
    """An LJSpeech-layout corpus: `metadata.csv` (id|text|normalized text) and `wavs/<id>.wav`.

    The last `valid_count` utterances are held out; the layout has no separate test split, so 'test' is the
    held-out part too.
    """
    if not os.path.isdir(path):
        raise UserError(f"{path}: data folder not found (config key 'data.path')")
    meta = os.path.join(path, "metadata.csv")
    if not os.path.isfile(meta):
        raise UserError(f"{meta}: not found; an LJSpeech-layout corpus needs metadata.csv and wavs/")
    with open(meta, newline="", encoding="utf-8") as f:
        ids = [row[0] for row in csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE) if row and row[0]]
    if not ids:
        raise UserError(f"{meta}: lists no utterances")
    if len(ids) <= valid_count:
        raise UserError(f"{meta}: {len(ids)} utterances are too few to hold out {valid_count} "
                        f"(config key 'data.valid_count')")
    cut = len(ids) - valid_count
    return Corpus({i: os.path.join(path, "wavs", f"{i}.wav") for i in ids}, ids[:cut], ids[cut:], ids[cut:])


def speaker_of(utterance_id):
    """The speaker of a Speech Commands file: the part of its name before '_nohash_'."""
    return os.path.basename(utterance_id).split("_nohash_")[0]


def hashed_split(speaker, valid_percent, test_percent):
    """A split for a speaker from a hash of its name: the same on every machine, whatever the other files."""
    share = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16) % 10000 / 100.0
    if share < valid_percent:
        return "valid"
    return "test" if share < valid_percent + test_percent else "train"


def _listed_splits(path):
    """Speaker -> split from Speech Commands' validation_list.txt / testing_list.txt, or None when absent."""
    lists = {"valid": os.path.join(path, "validation_list.txt"), "test": os.path.join(path, "testing_list.txt")}
    if not any(os.path.isfile(p) for p in lists.values()):
        return None
    speakers = {}
    for split, list_path in lists.items():
        if not os.path.isfile(list_path):
            continue
        with open(list_path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                speaker = speaker_of(line.strip())
                if speakers.setdefault(speaker, split) != split:
                    raise UserError(f"{list_path}: speaker '{speaker}' is also listed for the {speakers[speaker]} "
                                    f"split; splits must not share speakers")
    return speakers


def read_sc09(path, valid_percent, test_percent):
    """An SC09-layout corpus: `zero/` ... `nine/` folders of `<speaker>_nohash_<n>.wav` (or .flac) files.

    Ids are '<digit>/<file name without .wav>' and labels the digit. Splits are by speaker: from Speech Commands'
    list files when the folder has them (unlisted speakers train), otherwise from a hash of the speaker name.
    """
    if not os.path.isdir(path):
        raise UserError(f"{path}: data folder not found (config key 'data.path')")
    wav_paths, labels = {}, {}
    for label, digit in enumerate(DIGITS):
        folder = os.path.join(path, digit)
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(SC09_EXTENSIONS)) \
            if os.path.isdir(folder) else []
        if not names:
            logger.warning(f"{folder}: no audio files ({', '.join(SC09_EXTENSIONS)}) for the digit '{digit}'")
        for name in names:
            utterance_id = f"{digit}/{os.path.splitext(name)[0]}"
            wav_paths[utterance_id], labels[utterance_id] = os.path.join(folder, name), label
    if not wav_paths:
        raise UserError(f"{path}: no audio files ({', '.join(SC09_EXTENSIONS)}) in the digit folders zero/ ... "
                        f"nine/ (an SC09-layout corpus)")
    listed = _listed_splits(path)
    splits = {"train": [], "valid": [], "test": []}
    for utterance_id in wav_paths:
        speaker = speaker_of(utterance_id)
        split = listed.get(speaker, "train") if listed is not None else \
            hashed_split(speaker, valid_percent, test_percent)
        splits[split].append(utterance_id)
    if not splits["train"]:
        raise UserError(f"{path}: every speaker is held out; no clips are left for training")
    return Corpus(wav_paths, splits["train"], splits["valid"], splits["test"], labels)


def read_corpus(data_config):
    """The corpus named by the config's `data` section (a shipped corpus such as "data/ljspeech-demo" is found from
    any folder)."""
    d = data_config
    path = existing_path(d["path"]) or d["path"]
    if d["kind"] == "sc09":
        return read_sc09(path, d["valid_percent"], d["test_percent"])
    return read_ljspeech(path, d["valid_count"])
