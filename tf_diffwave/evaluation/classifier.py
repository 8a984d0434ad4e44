"""The SC09 digit classifier behind the quality metrics: a small CNN on log-mels, trained and saved like the
other models (a run folder with config.json and checkpoints).

`tf-diffwave classifier --config configs/sc09_classifier.json [key=value ...]` trains it on the corpus's training
split, reports accuracy on the validation split after each period of `train.save_every` steps, and at the end
the accuracy on the held-out test speakers (also written to <train.model_dir>/test_accuracy.json).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tf_diffwave.config import load_run_config, save_config
from tf_diffwave.data.audio import read_clips
from tf_diffwave.data.corpora import DIGITS, read_corpus
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.pipelines import clip_dataset
from tf_diffwave.errors import UserError
from tf_diffwave.evaluation import classifier_section  # noqa: F401  (the `classifier` config section)
from tf_diffwave.models.checkpoints import restore_latest


@keras.saving.register_keras_serializable(package="tf_diffwave")
class LogMelLayer(layers.Layer):
    """The project's log-mel (features.LogMel) as a Keras layer: audio (B, samples) -> (B, frames, n_mels)."""

    def __init__(self, audio_config, **kwargs):
        super().__init__(**kwargs)
        self.audio_config = dict(audio_config)
        self.log_mel = LogMel.from_config(self.audio_config)

    def call(self, audio):
        return self.log_mel(audio)

    def get_config(self):
        return {**super().get_config(), "audio_config": self.audio_config}


def build_classifier(config):
    """Keras functional model: audio (B, model.audio_length) -> [logits (B, 10), penultimate features (B, F)]."""
    c = config["classifier"]
    audio = keras.Input((config["model"]["audio_length"],), name="audio")
    x = layers.BatchNormalization(name="input_norm")(LogMelLayer(config["audio"])(audio)[..., None])
    for block in range(3):
        width = c["channels"] * 2 ** block
        for conv in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{block}_{conv}")(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.MaxPooling2D(2)(x)
    features = layers.Dense(c["features"], activation="relu", name="features")(layers.GlobalAveragePooling2D()(x))
    logits = layers.Dense(len(DIGITS), name="logits")(layers.Dropout(c["dropout"])(features))
    return keras.Model(audio, [logits, features], name="digit_classifier")


def labelled_clips(corpus, ids, sample_rate, length):
    """The clips of `ids` as one array (N, length) and their labels (N,)."""
    clips = read_clips([corpus.wav_paths[i] for i in ids], sample_rate, length)
    return clips, np.array([corpus.labels[i] for i in ids], np.int32)


def random_shift(clip, max_shift):
    """Circular shift by a uniform whole number of samples in [-max_shift, max_shift] (training augmentation)."""
    shift = tf.random.uniform([], -max_shift, max_shift + 1, dtype=tf.int32)
    return tf.roll(clip, shift, axis=0)


class DigitClassifier:
    """A trained classifier folder: its config and model; `predict` gives probabilities and features."""

    def __init__(self, model_dir):
        if not os.path.isdir(model_dir):
            raise UserError(f"{model_dir}: classifier folder not found")
        self.config = load_run_config(model_dir)
        self.model = build_classifier(self.config)
        restore_latest(model_dir, "classifier", self.model)

    @property
    def sample_rate(self):
        return self.config["audio"]["sample_rate"]

    @property
    def length(self):
        return self.config["model"]["audio_length"]

    def predict(self, clips, batch_size=64):
        """Class probabilities (N, 10) and penultimate features (N, F), float64, for clips (N, length)."""
        logits, features = self.model.predict(np.asarray(clips, np.float32), batch_size=batch_size, verbose=0)
        return tf.nn.softmax(tf.cast(logits, tf.float64)).numpy(), features.astype(np.float64)


def train_classifier(config):
    """Train on the training split; return the test accuracy (None without test clips). The initial weights are
    drawn from Keras' random state: seed it (keras.utils.set_random_seed) for a repeatable run."""
    t, a, length = config["train"], config["audio"], config["model"]["audio_length"]
    if config["data"]["kind"] != "sc09":
        raise UserError("config key 'data.kind' must be 'sc09': the digit classifier needs labelled digit clips")
    corpus = read_corpus(config["data"])
    max_shift = int(config["classifier"]["max_shift"] * a["sample_rate"])
    ds = clip_dataset(corpus, corpus.train_ids, a["sample_rate"], length, t["seed"])
    ds = ds.map(lambda ex: (random_shift(ex["audio"], max_shift), ex["label"]))
    ds = ds.batch(t["batch_size"]).prefetch(tf.data.AUTOTUNE)
    model = build_classifier(config)
    trainable = keras.Model(model.input, model.output[0])
    trainable.compile(keras.optimizers.Adam(t["learning_rate"]),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    valid = labelled_clips(corpus, corpus.valid_ids, a["sample_rate"], length) if corpus.valid_ids else None
    trainable.fit(ds, steps_per_epoch=t["save_every"], epochs=max(t["max_steps"] // t["save_every"], 1),
                  validation_data=valid, shuffle=False, verbose=2)
    save_config(config, t["model_dir"])
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(classifier=model), t["model_dir"], max_to_keep=1)
    manager.save(checkpoint_number=t["max_steps"])
    if not corpus.test_ids:
        return None
    clips, labels = labelled_clips(corpus, corpus.test_ids, a["sample_rate"], length)
    accuracy = float(np.mean(np.argmax(trainable.predict(clips, verbose=0), -1) == labels))
    with open(os.path.join(t["model_dir"], "test_accuracy.json"), "w") as f:
        json.dump({"test_accuracy": accuracy, "test_clips": len(labels)}, f)
    return accuracy
