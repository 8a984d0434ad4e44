"""The statistics a data-dependent prior is normalised by (diffusion.prior "priorgrad" or "fregrad"): computed once
from the training split when a run starts, and stored in the run's config, so that inference and exports need no
data."""

import copy
import logging
import os

import tensorflow as tf

from tf_diffwave.config import load_run_config
from tf_diffwave.data.audio import read_audio
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_files import utterance_mel
from tf_diffwave.diffusion.prior import energy_statistics
from tf_diffwave.errors import UserError

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's

def with_prior_statistics(config, model_dir, corpus, files):
    """`config` with `diffusion.energy_min` / `energy_max` filled in where the prior needs them and they are null:
    from the run folder's saved config when the run is resumed (it has a checkpoint), else the frame energies'
    range over the training split (`files`: its UnreadableFiles, which skips and counts the files that fail to
    read)."""
    d = config["diffusion"]
    if d["prior"] == "standard" or d["energy_min"] is not None:
        return config
    config = copy.deepcopy(config)
    if os.path.isfile(os.path.join(model_dir, "config.json")) and tf.train.latest_checkpoint(model_dir) is not None:
        saved = load_run_config(model_dir)["diffusion"]
        if saved["prior"] == d["prior"] and saved["energy_min"] is not None:
            config["diffusion"].update(energy_min=saved["energy_min"], energy_max=saved["energy_max"])
            return config
    a, data = config["audio"], config["data"]
    log_mel = LogMel.from_config(a)

    def mel_of(utterance_id):
        return utterance_mel(data, a["n_mels"], utterance_id, lambda: log_mel(
            read_audio(corpus.wav_paths[utterance_id], a["sample_rate"], files.warn)))

    mels = [mel for mel in (files.read(mel_of, i) for i in corpus.train_ids) if mel is not None]
    if files.error:
        raise UserError(files.error)
    low, high = energy_statistics(mels, log_mel)
    logger.info(f"prior statistics of the {len(corpus.train_ids)} training utterances: frame energy from {low:.6g} "
                f"to {high:.6g} (stored in the run's config.json)")
    config["diffusion"].update(energy_min=low, energy_max=high)
    return config
