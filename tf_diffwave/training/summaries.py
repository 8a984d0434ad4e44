"""What training writes to TensorBoard besides scalars: a held-out utterance vocoded (or clips generated) with the
EMA weights, as audio and mel images, with the held-out distances."""

import numpy as np
import tensorflow as tf

from tf_diffwave.data.audio import read_audio, read_clips
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_files import crop_to_audio, mel_path, read_mel
from tf_diffwave.data.pipelines import uses_precomputed_mels
from tf_diffwave.errors import UserError
from tf_diffwave.evaluation.pictures import matplotlib_classes, spectrogram_png
from tf_diffwave.evaluation.vocoder_measures import griffin_lim, log_mel_distance, mr_stft_distance
from tf_diffwave.models.contract import evaluation_loss
from tf_diffwave.serving.savedmodel import clip_generator


class VocodedSample:
    """One held-out utterance vocoded with the EMA weights, written to TensorBoard beside the ground truth."""

    def __init__(self, config, corpus, synthesizer, sampler, max_seconds=4.0):
        self.synthesizer, self.sampler = synthesizer, sampler
        a = config["audio"]
        self.sample_rate = a["sample_rate"]
        utterance = corpus.valid_ids[0]
        audio = read_audio(corpus.wav_paths[utterance], a["sample_rate"])
        audio = audio[: int(max_seconds * a["sample_rate"])]
        self.log_mel = LogMel.from_config(a)
        mel = read_mel(mel_path(config["data"]["mel_dir"], utterance), a["n_mels"]) \
            if uses_precomputed_mels(config["data"]) else self.log_mel(audio).numpy()
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
        betas, steps = self.sampler.betas_and_steps("fast")
        generated = self.synthesizer.vocode(self.mel[None], betas, steps, np.zeros(1, np.int64)).numpy()
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
    """A few clips generated from fixed seeds by the EMA weights of an unconditional model, for TensorBoard; for
    likelihood models (the autoregressive ones) also the NLL of a few held-out clips, `valid/nll_bits`."""

    def __init__(self, config, synthesizer, sampler, corpus, count=4):
        self.synthesizer, self.sampler, self.count, self.config = synthesizer, sampler, count, config
        self.length = config["model"]["audio_length"]
        self.sample_rate = config["audio"]["sample_rate"]
        self.log_mel = LogMel.from_config(config["audio"])
        self.held_out = None
        if synthesizer.backbone.family.autoregressive and corpus.valid_ids:
            self.held_out = read_clips([corpus.wav_paths[i] for i in corpus.valid_ids[:count]], self.sample_rate,
                                       self.length)

    def write_summaries(self):
        """Audio and spectrogram images (and the held-out NLL) into the default summary writer."""
        generate, _ = clip_generator(self.synthesizer, self.sampler, self.config)  # of the weights now
        generated = generate(np.arange(self.count, dtype=np.int64), self.length)
        write_audio_summaries("generated", generated.numpy(), self.sample_rate, self.log_mel)
        if self.held_out is not None:
            bits = evaluation_loss(self.synthesizer.backbone, self.config, {"audio": tf.constant(self.held_out)})
            tf.summary.scalar("valid/nll_bits", tf.reduce_mean(bits))


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
