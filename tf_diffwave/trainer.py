"""The custom graph-mode training loop: tf.distribute strategy, EMA, checkpoints, TensorBoard, exports."""

import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf

from tf_diffwave.config import load_run_config, save_config
from tf_diffwave.corpora import read_corpus
from tf_diffwave.dataset import read_mel, mel_path, training_examples, uses_precomputed_mels
from tf_diffwave.audio import read_audio
from tf_diffwave.diffusion import Sampler, per_example_loss, q_sample
from tf_diffwave.errors import UserError
from tf_diffwave.export import export_model
from tf_diffwave.features import LogMel
from tf_diffwave.s4 import s4_layers
from tf_diffwave.synthesis import Synthesizer
from tf_diffwave.backbones import build_backbone


def make_strategy(name):
    """MirroredStrategy over all visible GPUs (one CPU replica without GPUs), or a single device."""
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0")
    return tf.distribute.MirroredStrategy()


def add_training_noise(index, example, seed):
    """Give each example its own noise and uniform draw for the diffusion step, from a per-example seed, so the
    result does not depend on how the global batch is split across replicas."""
    noise_seed = tf.stack([tf.cast(seed, tf.int64), index])
    example["noise"] = tf.random.stateless_normal(tf.shape(example["audio"]), seed=noise_seed)
    example["u"] = tf.random.stateless_uniform([], seed=noise_seed + [0, 1 << 40])
    return example


def _check_resumable(config, model_dir):
    saved = os.path.join(model_dir, "config.json")
    if not os.path.isfile(saved) or tf.train.latest_checkpoint(model_dir) is None:
        return
    previous = load_run_config(model_dir)
    for section in ("audio", "model", "diffusion"):
        for key, value in config[section].items():
            if previous[section][key] != value:
                raise UserError(
                    f"{saved}: config key '{section}.{key}' was {previous[section][key]!r} when this run started, "
                    f"now {value!r}; use a new train.model_dir or the original value")


class Trainer:
    """Trains one model described by a config, in the run folder `train.model_dir`."""

    def __init__(self, config):
        self.config = config
        t = config["train"]
        self.model_dir = t["model_dir"]
        _check_resumable(config, self.model_dir)
        self.corpus = read_corpus(config["data"])
        self.strategy = make_strategy(t["strategy"])
        self.global_batch = t["batch_size"]
        replicas = self.strategy.num_replicas_in_sync
        if self.global_batch % (replicas * t["micro_batches"]):
            raise UserError(f"config key 'train.batch_size' = {self.global_batch} must be a multiple of the "
                            f"{replicas} replicas x {t['micro_batches']} train.micro_batches")
        self.sampler = Sampler.from_config(config["diffusion"])
        keras.utils.set_random_seed(t["seed"])  # the same initial weights on every run and replica count
        with self.strategy.scope():
            self.backbone = build_backbone(config)
            self.ema_backbone = build_backbone(config)
            self.ema_backbone.model.set_weights(self.backbone.model.get_weights())
            variables = self.backbone.model.trainable_variables
            ssm = {id(v) for layer in s4_layers(self.backbone.model) for v in layer.ssm_variables}
            self._is_ssm = [id(v) in ssm for v in variables]
            # the S4 state-space parameters train in their own group: Adam at train.ssm_learning_rate (S4 paper)
            self.optimizer = keras.optimizers.Adam(t["learning_rate"])
            self.optimizer.build(self._group(variables, False))
            self.ssm_optimizer = keras.optimizers.Adam(t["ssm_learning_rate"]) if any(self._is_ssm) else None
            if self.ssm_optimizer is not None:
                self.ssm_optimizer.build(self._group(variables, True))
            self.step = tf.Variable(0, dtype=tf.int64, name="step")
        optimizers = {"optimizer": self.optimizer}
        if self.ssm_optimizer is not None:
            optimizers["ssm_optimizer"] = self.ssm_optimizer
        self.checkpoint = tf.train.Checkpoint(step=self.step, model=self.backbone.model,
                                              ema=self.ema_backbone.model, **optimizers)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.model_dir, max_to_keep=t["keep_checkpoints"])
        self._alpha_bars = tf.constant(self.sampler.schedule.alpha_bars, tf.float32)
        self._stop_signal = None

    # ---- the graph-mode step -------------------------------------------------------------------------------------

    def _micro_batch_grads(self, batch):
        """Loss and gradients of one micro-batch (DiffWave algorithm 1), scaled for the global batch."""
        num_steps = self.sampler.schedule.num_steps
        t = tf.minimum(tf.cast(batch["u"] * num_steps, tf.int32), num_steps - 1)
        x_t = q_sample(self._alpha_bars, batch["audio"], t, batch["noise"])
        model = self.backbone.model
        inputs = [x_t, tf.cast(t, tf.float32)]
        if not self.backbone.unconditional:
            inputs.append(batch["mel"])
        with tf.GradientTape() as tape:
            prediction = model(inputs, training=True)
            per_example = per_example_loss(batch["noise"], prediction, self.config["diffusion"]["loss"])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
        return loss, tape.gradient(loss, model.trainable_variables)

    def _compute_grads(self, batch):
        """Replica function: loss and gradients for this replica's share of the global batch.

        The share is processed in `train.micro_batches` sequential parts whose gradients are summed: the same
        result as one pass, with activation memory divided by the number of parts.
        """
        parts = self.config["train"]["micro_batches"]
        split = {k: tf.reshape(v, tf.concat([[parts, -1], tf.shape(v)[1:]], 0)) for k, v in batch.items()}
        variables = self.backbone.model.trainable_variables

        def body(i, loss, grads):
            part_loss, part_grads = self._micro_batch_grads({k: v[i] for k, v in split.items()})
            return i + 1, loss + part_loss, [g + p for g, p in zip(grads, part_grads)]

        zeros = [tf.zeros_like(v) for v in variables]
        _, loss, grads = tf.while_loop(lambda i, *_: i < parts, body, (0, tf.constant(0.0), zeros))
        return loss, grads

    def _group(self, items, ssm):
        """The items (one per trainable variable) of the S4 state-space group, or of the main group."""
        return [item for item, is_ssm in zip(items, self._is_ssm) if is_ssm == ssm]

    def _apply(self, grads):
        """Cross-replica: clip the summed gradients by their global norm, apply them, update the EMA."""
        variables = self.backbone.model.trainable_variables
        grads, norm = tf.clip_by_global_norm(grads, self.config["train"]["grad_clip_norm"])
        self.optimizer.apply_gradients(zip(self._group(grads, False), self._group(variables, False)))
        if self.ssm_optimizer is not None:
            self.ssm_optimizer.apply_gradients(zip(self._group(grads, True), self._group(variables, True)))
        step = tf.cast(self.step, tf.float32)
        # EMA with the usual warm-up, so that short runs are not dominated by the initial weights
        decay = tf.minimum(self.config["train"]["ema_decay"], (1.0 + step) / (10.0 + step))
        for ema_var, var in zip(self.ema_backbone.model.weights, self.backbone.model.weights):
            ema_var.assign(decay * ema_var + (1.0 - decay) * var)
        self.step.assign_add(1)
        return norm

    def _train_step(self, iterator):
        batch = next(iterator)
        per_replica_loss, per_replica_grads = self.strategy.run(self._compute_grads, args=(batch,))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)
        variables = self.backbone.model.trainable_variables
        grads = self.strategy.extended.batch_reduce_to(
            tf.distribute.ReduceOp.SUM, [(g, v.value) for g, v in zip(per_replica_grads, variables)])
        norm = self._apply(grads)
        return loss, norm

    # ---- the loop ------------------------------------------------------------------------------------------------

    def _dataset(self, start_step):
        seed = self.config["train"]["seed"]
        ds = training_examples(self.config, self.corpus, seed=[seed, start_step])
        ds = ds.enumerate().map(lambda i, ex: add_training_noise(i, ex, seed * 1000003 + start_step))
        ds = ds.batch(self.global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        return self.strategy.experimental_distribute_dataset(ds)

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def save(self):
        """Checkpoint the training state and, when configured, export the EMA model for serving."""
        step = int(self.step.numpy())
        path = self.manager.save(checkpoint_number=step)
        if self.config["train"]["export"]:
            export_model(Synthesizer(self.ema_backbone), self.sampler, self.config,
                         os.path.join(self.model_dir, "export"), step)
        return path

    def train(self):
        """Train until `train.max_steps`, resuming from the newest checkpoint in the run folder."""
        t = self.config["train"]
        save_config(self.config, self.model_dir)
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            print(f"resumed from {self.manager.latest_checkpoint} at step {int(self.step.numpy())}")
        start = int(self.step.numpy())
        if start >= t["max_steps"]:
            print(f"{self.model_dir}: already trained to step {start} (train.max_steps = {t['max_steps']})")
            return
        iterator = iter(self._dataset(start))
        train_step = tf.function(self._train_step)
        writer = tf.summary.create_file_writer(os.path.join(self.model_dir, "logs"))
        synthesizer = Synthesizer(self.ema_backbone)
        validation = GeneratedSamples(self.config, synthesizer, self.sampler) if self.backbone.unconditional else \
            VocodedSample(self.config, self.corpus, synthesizer, self.sampler)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        progbar = keras.utils.Progbar(t["max_steps"], stateful_metrics=["loss", "steps/s"], unit_name="step")
        last_time, last_step = time.perf_counter(), start
        try:
            while int(self.step.numpy()) < t["max_steps"] and self._stop_signal is None:
                loss, norm = train_step(iterator)
                step = int(self.step.numpy())
                if step % t["log_every"] == 0 or step == t["max_steps"]:
                    now = time.perf_counter()
                    rate = (step - last_step) / (now - last_time)
                    last_time, last_step = now, step
                    with writer.as_default(step=step):
                        tf.summary.scalar("loss", loss)
                        tf.summary.scalar("grad_norm", norm)
                        tf.summary.scalar("learning_rate", float(self.optimizer.learning_rate.numpy()))
                        tf.summary.scalar("steps_per_second", rate)
                    progbar.update(step, [("loss", float(loss)), ("steps/s", rate)])
                if step % t["sample_every"] == 0:
                    with writer.as_default(step=step):
                        validation.write_summaries()
                if step % t["save_every"] == 0:
                    self.save()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self.manager.latest_checkpoint is None or \
                    int(self.step.numpy()) > int(self.manager.latest_checkpoint.rsplit("-", 1)[1]):
                path = self.save()
                print(f"\nsaved {path} at step {int(self.step.numpy())}")
            writer.flush()


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
        if uses_precomputed_mels(config["data"]):
            mel = read_mel(mel_path(config["data"]["mel_dir"], utterance), a["n_mels"])[: len(audio) // a["hop_length"]]
        else:
            mel = self.log_mel(audio).numpy()[: len(audio) // a["hop_length"]]
        self.audio, self.mel = audio, mel

    def write_summaries(self):
        """Audio and spectrogram images into the default summary writer."""
        betas, steps = self.sampler.betas_and_steps("fast")
        generated = self.synthesizer.vocode(self.mel[None], betas, steps, np.zeros(1, np.int64))
        write_audio_summaries("generated", generated.numpy(), self.sample_rate, self.log_mel)
        write_audio_summaries("ground_truth", self.audio[None], self.sample_rate, self.log_mel)


class GeneratedSamples:
    """A few clips generated from fixed seeds by the EMA weights of an unconditional model, for TensorBoard."""

    def __init__(self, config, synthesizer, sampler, count=4):
        self.synthesizer, self.sampler, self.count = synthesizer, sampler, count
        self.length = config["model"]["audio_length"]
        self.sample_rate = config["audio"]["sample_rate"]
        self.log_mel = LogMel.from_config(config["audio"])

    def write_summaries(self):
        """Audio and spectrogram images into the default summary writer."""
        betas, steps = self.sampler.betas_and_steps("fast")
        generated = self.synthesizer.generate(np.arange(self.count, dtype=np.int64), self.length, betas, steps)
        write_audio_summaries("generated", generated.numpy(), self.sample_rate, self.log_mel)


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
