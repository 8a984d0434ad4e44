"""What training writes to TensorBoard besides scalars, for a pipeline: a held-out utterance vocoded (or clips
generated) with the EMA weights, as audio and mel images, with the held-out distances."""

import numpy as np
import tensorflow as tf

from tf_diffwave.data.audio import read_audio
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_files import crop_to_audio, utterance_mel
from tf_diffwave.errors import UserError
from tf_diffwave.evaluation.pictures import matplotlib_classes, spectrogram_png
from tf_diffwave.evaluation.vocoder_measures import griffin_lim, log_mel_distance, mr_stft_distance


class VocodedSample:
    """One held-out utterance of `corpus` vocoded by `vocode(mel (frames, n_mels))` -> audio (1, samples), written
    to TensorBoard beside the ground truth."""

    def __init__(self, config, corpus, vocode, max_seconds=4.0):
        self.vocode = vocode
        a = config["audio"]
        self.sample_rate = a["sample_rate"]
        utterance = corpus.valid_ids[0]
        audio = read_audio(corpus.wav_paths[utterance], a["sample_rate"])
        audio = audio[: int(max_seconds * a["sample_rate"])]
        self.log_mel = LogMel.from_config(a)
        mel = utterance_mel(config["data"], a["n_mels"], utterance, lambda: self.log_mel(audio).numpy())
        self.audio, self.mel = audio, crop_to_audio(mel, len(audio), a["hop_length"])
        self.hop, self.utterance = a["hop_length"], utterance
        try:  # the picture `evaluate vocoder` draws, when matplotlib (the eval extra) is there
            matplotlib_classes()
            rebuilt = griffin_lim(self.mel, self.log_mel, length=len(audio))
            # the two fixed rows of the picture, computed once
            self.picture_mels = {"recording": self.log_mel(audio).numpy(), "Griffin-Lim": self.log_mel(rebuilt).numpy()}
        except UserError:
            self.picture_mels = None

    def write_summaries(self):
        """Audio and spectrogram images into the default summary writer."""
        generated = self.vocode(self.mel)
        write_audio_summaries("generated", generated, self.sample_rate, self.log_mel)
        write_audio_summaries("ground_truth", self.audio[None], self.sample_rate, self.log_mel)
        tf.summary.scalar("valid/log_mel_l1", log_mel_distance(self.audio, generated[0], self.log_mel))
        tf.summary.scalar("valid/mr_stft", mr_stft_distance(self.audio, generated[0]))
        if self.picture_mels is not None:
            mels = self.picture_mels
            png = spectrogram_png({"recording": mels["recording"], "model": self.log_mel(generated[0]).numpy(),
                                   "Griffin-Lim": mels["Griffin-Lim"]},
                                  self.hop, self.sample_rate, self.utterance)
            tf.summary.image("valid/spectrograms", tf.image.decode_png(png)[None], max_outputs=1)


class GeneratedSamples:
    """A few clips generated from fixed seeds by `generate(seeds (B,))` -> audio (B, samples), for TensorBoard; with
    `held_out_loss` (a likelihood model's: clips -> bits per sample, (B,)), also its mean on `held_out` clips,
    `valid/nll_bits`."""

    def __init__(self, config, generate, count=4, held_out=None, held_out_loss=None):
        self.generate, self.count = generate, count
        self.sample_rate = config["audio"]["sample_rate"]
        self.log_mel = LogMel.from_config(config["audio"])
        self.held_out, self.held_out_loss = held_out, held_out_loss

    def write_summaries(self):
        """Audio and spectrogram images (and the held-out NLL) into the default summary writer."""
        generated = self.generate(np.arange(self.count, dtype=np.int64))
        write_audio_summaries("generated", generated, self.sample_rate, self.log_mel)
        if self.held_out is not None:
            tf.summary.scalar("valid/nll_bits", tf.reduce_mean(self.held_out_loss(self.held_out)))


def write_audio_summaries(name, clips, sample_rate, log_mel):
    """Clips (B, samples) as TensorBoard audio and their log-mels as images, `<name>` and `<name>_mel`."""
    tf.summary.audio(name, clips[:, :, None], sample_rate, max_outputs=len(clips))
    images = np.concatenate([_mel_image(log_mel(clip).numpy()) for clip in clips])
    tf.summary.image(f"{name}_mel", images, max_outputs=len(clips))


def _mel_image(mel):
    """A log-mel (frames, n_mels) as a [1, n_mels, frames, 1] image in [0, 1], low frequencies at the bottom."""
    lo, hi = float(np.min(mel)), float(np.max(mel))
    scaled = (mel - lo) / max(hi - lo, 1e-6)
    return scaled.T[::-1][None, :, :, None].astype(np.float32)
