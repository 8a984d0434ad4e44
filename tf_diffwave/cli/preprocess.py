"""tf-diffwave preprocess (also python preprocess.py): compute the mels of a corpus into a folder."""

import argparse
import os

from tf_diffwave.cli.common import add_config, writable_folder
from tf_diffwave.config import load_config
from tf_diffwave.data.corpora import read_corpus
from tf_diffwave.errors import UserError
from tf_diffwave.tensorflow_import import import_tensorflow


def main(argv=None, prog=None):
    """tf-diffwave preprocess --config CFG [--out-dir DIR] [key=value ...]: <out-dir>/<id>.npy for every utterance."""
    parser = argparse.ArgumentParser(prog=prog, description="Compute the mel features of a corpus, one .npy per "
                                                            "utterance, for training with data.mel_dir.")
    parser.add_argument("--out-dir", help="the folder to write them to (default: the config's data.mel_dir)")
    add_config(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    mel_dir = args.out_dir or config["data"]["mel_dir"]
    if not mel_dir:
        raise UserError("no folder for the mels: give --out-dir or config key 'data.mel_dir'")
    writable_folder(mel_dir, "--out-dir" if args.out_dir else "config key 'data.mel_dir'")
    corpus = read_corpus(config["data"])
    import_tensorflow()
    import numpy as np

    from tf_diffwave.data.audio import read_audio
    from tf_diffwave.data.features import LogMel
    from tf_diffwave.data.mel_files import mel_path
    from tf_diffwave.progress import progress_bar

    log_mel = LogMel.from_config(config["audio"]).traced()
    progbar = progress_bar(len(corpus.ids), "file")
    for n, utterance in enumerate(corpus.ids, 1):
        audio = read_audio(corpus.wav_paths[utterance], config["audio"]["sample_rate"])
        out = mel_path(mel_dir, utterance)
        os.makedirs(os.path.dirname(out), exist_ok=True)  # SC09 ids name a digit folder
        np.save(out, log_mel(audio).numpy())
        progbar.update(n)
    print(f"wrote {len(corpus.ids)} mels to {mel_dir}")
