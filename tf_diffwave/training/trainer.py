"""The custom graph-mode training loop: the step, EMA, checkpoints, signals, exports. The strategy set-up is in
strategy.py; a network is used only through the backbone contract (models/contract.py), its loss through the
diffusion core's objectives.for_backbone, and what is sampled, exported and written to TensorBoard through the
pipeline of its kind (tf_diffwave.pipelines)."""

import logging
import os
import shutil
import signal
import sys
import tempfile
import time

import keras
import tensorflow as tf

from tf_diffwave.config import flatten, load_run_config, save_config, used_keys, with_searched_schedule
from tf_diffwave.data.corpora import read_corpus
from tf_diffwave.data.pipelines import UnreadableFiles, training_examples
from tf_diffwave.diffusion.objectives import for_backbone
from tf_diffwave.errors import UserError
from tf_diffwave.models.checkpoints import restore_ema
from tf_diffwave.models.registry import build_backbone
from tf_diffwave.pipelines import kind_of, pipeline_for
from tf_diffwave.progress import progress_bar
from tf_diffwave.serving.savedmodel import write_export
from tf_diffwave.training.prior_energy_range import with_prior_statistics
from tf_diffwave.training.strategy import is_chief, make_strategy, mixed_precision_policy

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's


def add_training_noise(index, example, seed):
    """Give each example its own noise and two uniform draws (the diffusion step, and the noise level within it;
    see diffusion.TrainingObjective), from a per-example seed, so the result does not depend on how the global
    batch is split across replicas."""
    noise_seed = tf.stack([tf.cast(seed, tf.int64), index])
    example["noise"] = tf.random.stateless_normal(tf.shape(example["audio"]), seed=noise_seed)
    example["u"] = tf.random.stateless_uniform([], seed=noise_seed + [0, 1 << 40])
    example["v"] = tf.random.stateless_uniform([], seed=noise_seed + [0, 2 << 40])
    return example


def _check_resumable(config, model_dir):
    saved = os.path.join(model_dir, "config.json")
    if not os.path.isfile(saved) or tf.train.latest_checkpoint(model_dir) is None:
        return
    previous, now = flatten(used_keys(load_run_config(model_dir))), flatten(used_keys(config))
    for key, value in now.items():
        if key.split(".")[0] in ("audio", "model", "diffusion") and previous.get(key) != value \
                and key != "diffusion.fast_schedule":  # sampling only
            raise UserError(f"{saved}: config key '{key}' was {previous.get(key)!r} when this run started, now "
                            f"{value!r}; use a new train.model_dir or the original value")


class Trainer:
    """Trains one model described by a config, in the run folder `train.model_dir`. The initial weights are drawn
    from Keras' random state: the train command seeds it with `train.seed` (keras.utils.set_random_seed)."""

    def __init__(self, config):
        t = config["train"]
        self.model_dir = t["model_dir"]
        # first: a multi-worker strategy must be made before TensorFlow runs any operation
        self.strategy = make_strategy(t["strategy"])
        self.chief = is_chief(self.strategy)
        self.corpus = read_corpus(config["data"])
        self.files = UnreadableFiles(self.corpus.train_ids)
        config = with_prior_statistics(config, self.model_dir, self.corpus, self.files)
        _check_resumable(config, self.model_dir)
        self.config = config = with_searched_schedule(config, self.model_dir)  # exports use a searched schedule
        self.global_batch = t["batch_size"]
        replicas = self.strategy.num_replicas_in_sync
        if self.global_batch % (replicas * t["micro_batches"]):
            raise UserError(f"config key 'train.batch_size' = {self.global_batch} must be a multiple of the "
                            f"{replicas} replicas x {t['micro_batches']} train.micro_batches")
        policy = mixed_precision_policy() if t["mixed_precision"] else "float32"
        self.loss_scaling = policy == "mixed_float16"
        with self.strategy.scope():
            # the trained model computes under the policy; the EMA model, used to sample and export, in float32
            self.backbone = build_backbone(config, policy)
            self.ema_backbone = build_backbone(config)
            self.kind = kind_of(config)
            self.objective = for_backbone(self.backbone, config)
            if t["init_from"] and tf.train.latest_checkpoint(self.model_dir) is None:  # fine-tuning, not resuming:
                # the weights of another model folder (a run's EMA weights, or a conversion)
                step = restore_ema(self.backbone.model, t["init_from"])
                logger.info(f"initialised the weights from {t['init_from']} (its step {step})")
            self.ema_backbone.model.set_weights(self.backbone.model.get_weights())
            variables = self.backbone.model.trainable_variables
            own = self.backbone.own_learning_rate_variables()  # weights with an Adam of their own
            own_ids = {id(v) for v in own[0]} if own else set()
            self._own_rate = [id(v) in own_ids for v in variables]
            self.optimizer = keras.optimizers.Adam(t["learning_rate"])
            if self.loss_scaling:  # float16 gradients underflow without it; it also skips overflowing steps
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self._group(variables, False))
            self.own_optimizer = keras.optimizers.Adam(own[1]) if any(self._own_rate) else None
            if self.own_optimizer is not None:
                self.own_optimizer.build(self._group(variables, True))
            self.step = tf.Variable(0, dtype=tf.int64, name="step")
        optimizers = {"optimizer": self.optimizer}
        if self.own_optimizer is not None:  # checkpointed as "ssm_optimizer": the name SaShiMi runs were saved with
            optimizers["ssm_optimizer"] = self.own_optimizer
        self.checkpoint = tf.train.Checkpoint(step=self.step, model=self.backbone.model,
                                              ema=self.ema_backbone.model, **optimizers)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.model_dir, max_to_keep=t["keep_checkpoints"])
        self._stop_signal = None
        self._grads = tf.function(self.replica_grads, jit_compile=True) if t["jit_compile"] else \
            self.replica_grads

    # ---- the graph-mode step -------------------------------------------------------------------------------------

    def micro_batch_grads(self, batch):
        """Loss and gradients of one micro-batch (the backbone's training objective), scaled for the global batch."""
        model = self.backbone.model
        inputs = self.objective.model_inputs(batch)
        with tf.GradientTape() as tape:
            prediction = model(inputs, training=True)
            per_example = self.objective.per_example_loss(batch, prediction)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
            scaled = self.optimizer.scale_loss(loss) if self.loss_scaling else loss
        return loss, tape.gradient(scaled, model.trainable_variables)

    def replica_grads(self, batch):
        """Replica function: loss and gradients for this replica's share of the global batch.

        The share is processed in `train.micro_batches` sequential parts whose gradients are summed: the same
        result as one pass, with activation memory divided by the number of parts.
        """
        # by hand rather than Keras 3's `gradient_accumulation_steps`, which accumulates over successive
        # apply_gradients calls: each part would then be a training step of its own (the step counter, the seeded
        # per-step noise, the EMA and the non-finite check would count parts), and clipping would see one part
        parts = self.config["train"]["micro_batches"]
        split = {k: tf.reshape(v, tf.concat([[parts, -1], tf.shape(v)[1:]], 0)) for k, v in batch.items()}
        variables = self.backbone.model.trainable_variables

        def body(i, loss, grads):
            part_loss, part_grads = self.micro_batch_grads({k: v[i] for k, v in split.items()})
            return i + 1, loss + part_loss, [g + p for g, p in zip(grads, part_grads)]

        zeros = [tf.zeros_like(v) for v in variables]
        _, loss, grads = tf.while_loop(lambda i, *_: i < parts, body, (0, tf.constant(0.0), zeros))
        return loss, grads

    def _group(self, items, own):
        """The items (one per trainable variable) of the group with its own learning rate, or of the main group."""
        return [item for item, has_own in zip(items, self._own_rate) if has_own == own]

    def _apply(self, loss, grads):
        """Cross-replica: clip the summed gradients by their global norm, apply them and update the EMA, unless the
        loss or the gradients are not finite (then nothing changes but the step counter). Returns the gradient norm
        and whether the step was applied."""
        variables = self.backbone.model.trainable_variables
        scale = self.optimizer.dynamic_scale if self.loss_scaling else tf.constant(1.0)
        scaled_norm = tf.linalg.global_norm(grads)
        norm = scaled_norm / scale
        finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))
        # clipping commutes with the loss scale: clip the scaled gradients at the scaled threshold
        grads, _ = tf.clip_by_global_norm(grads, self.config["train"]["grad_clip_norm"] * scale, use_norm=scaled_norm)
        if self.loss_scaling:  # it applies finite gradients, and halves its scale on the others
            self.optimizer.apply_gradients(zip(self._group(grads, False), self._group(variables, False)))

        def apply():
            if not self.loss_scaling:
                self.optimizer.apply_gradients(zip(self._group(grads, False), self._group(variables, False)))
            if self.own_optimizer is not None:
                self.own_optimizer.apply_gradients(
                    zip([g / scale for g in self._group(grads, True)], self._group(variables, True)))
            # EMA with the usual warm-up, so that short runs are not dominated by the initial weights. By hand rather
            # than Keras 3's `use_ema`: that keeps the average in the optimizer and swaps it into the model only at
            # the end of fit(); here a second model holds it, sampled, exported and checkpointed during training
            decay = tf.minimum(self.config["train"]["ema_decay"], (1.0 + step) / (10.0 + step))
            for ema_var, var in zip(self.ema_backbone.model.weights, self.backbone.model.weights):
                ema_var.assign(decay * ema_var + (1.0 - decay) * var)
            return tf.constant(True)

        step = tf.cast(self.step, tf.float32)
        applied = tf.cond(finite, apply, lambda: tf.constant(False))
        self.step.assign_add(1)
        return norm, applied

    def train_step(self, iterator, stop=False):
        """One step; `stop` (a bool tensor) says this process was asked to stop. Returns the loss, the gradient
        norm, whether the step was applied, and whether any process of the run was asked to stop: summed across
        workers with the loss, so that all of them stop after the same step."""
        batch = next(iterator)

        def replica_fn(batch):
            loss, grads = self._grads(batch)
            return tf.stack([loss, tf.cast(stop, tf.float32)]), grads

        per_replica_values, per_replica_grads = self.strategy.run(replica_fn, args=(batch,))
        loss, stops = tf.unstack(self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_values, axis=None))
        variables = self.backbone.model.trainable_variables
        grads = self.strategy.extended.batch_reduce_to(
            tf.distribute.ReduceOp.SUM, [(g, v.value) for g, v in zip(per_replica_grads, variables)])
        norm, applied = self._apply(loss, grads)
        return loss, norm, applied, stops > 0

    # ---- the loop ------------------------------------------------------------------------------------------------

    def dataset(self, start_step):
        """The training batches from `start_step` on. Every worker draws the same seeded example stream and keeps
        its share (every n-th example), so a global batch holds the same examples whatever the number of workers
        and replicas; each example's noise is seeded by its position in the stream."""
        seed = self.config["train"]["seed"]

        def make(context):
            ds = training_examples(self.config, self.corpus, [seed, start_step], self.kind.examples, self.files)
            ds = ds.enumerate().map(lambda i, ex: add_training_noise(i, ex, seed * 1000003 + start_step))
            ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
            ds = ds.batch(context.get_per_replica_batch_size(self.global_batch), drop_remainder=True)
            return ds.prefetch(tf.data.AUTOTUNE)

        return self.strategy.distribute_datasets_from_function(make)

    def pipeline(self):
        """The pipeline that samples the EMA weights (what exports and TensorBoard samples use)."""
        return pipeline_for(self.ema_backbone, self.config, self.model_dir)

    def _on_signal(self, signum, frame):
        if self._stop_signal is None and self.chief:
            print(f"\nstopping after the current step, then saving (signal {signum})", file=sys.stderr, flush=True)
        self._stop_signal = signum

    def save(self):
        """Checkpoint the training state and, when configured, export the EMA model for serving. Workers other than
        the chief write theirs to a temporary folder that is removed (TensorFlow's multi-worker saving protocol)."""
        step = int(self.step.numpy())
        root = self.model_dir if self.chief else tempfile.mkdtemp(prefix="worker-", dir=self.model_dir)
        try:
            path = self.manager.save(checkpoint_number=step) if self.chief else \
                self.checkpoint.write(os.path.join(root, f"ckpt-{step}"))
            if self.config["train"]["export"]:
                write_export(self.pipeline().savedmodel_module(), os.path.join(root, "export"), step)
        finally:
            if not self.chief:
                shutil.rmtree(root, ignore_errors=True)
        return path

    def restore(self):
        """Restore the newest checkpoint of the run folder that can be read, warning about each newer one that
        cannot (a truncated file); return its path, or None when the folder has no checkpoint."""
        # the state file's own list: the manager's leaves out every checkpoint the file gives no timestamp for (a
        # state file written by hand or by another tool), and would start the run again from step 0
        state = tf.train.get_checkpoint_state(self.model_dir)
        saved = list(reversed(state.all_model_checkpoint_paths)) if state else []
        for path in saved:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                return path
            except (tf.errors.OpError, IndexError) as err:  # a truncated data file raises IndexError
                reason = (err.message if isinstance(err, tf.errors.OpError) else str(err)).strip().splitlines()[0]
                logger.warning(f"{path}: cannot read this checkpoint ({reason}); trying the one before")
        if saved:
            raise UserError(f"{self.model_dir}: none of the checkpoints {', '.join(map(os.path.basename, saved))} "
                            f"can be read; move them away to start from scratch")
        return None

    def train(self):
        """Train until `train.max_steps`, resuming from the newest readable checkpoint in the run folder, and return
        None; SIGINT or SIGTERM (on any worker) saves the current step and returns the signal's number (SIGTERM's
        on the workers that did not receive it). Non-finite steps are skipped, and `train.max_nonfinite_steps` of
        them in a row stop the run without saving."""
        t = self.config["train"]
        start = self._resume()
        if start >= t["max_steps"]:
            logger.info(f"{self.model_dir}: already trained to step {start} (train.max_steps = {t['max_steps']})")
            return None
        iterator, train_step = iter(self.dataset(start)), tf.function(self.train_step)
        writer = tf.summary.create_file_writer(os.path.join(self.model_dir, "logs")) if self.chief else \
            tf.summary.create_noop_writer()
        samples = self.pipeline().tensorboard_samples(self.corpus)
        log = StepLog(writer, self, start)
        nonfinite = NonFiniteSteps(t["max_nonfinite_steps"])
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._keep_state = True
        try:
            while int(self.step.numpy()) < t["max_steps"]:
                loss, norm, applied, stop = self._run_step(train_step, iterator)
                step = int(self.step.numpy())
                if nonfinite.record(bool(applied), step, writer):
                    self._keep_state = False
                    raise UserError(f"step {step}: the loss or the gradients were not finite for {nonfinite.in_a_row} "
                                    f"steps in a row (train.max_nonfinite_steps); stopped without saving, the last "
                                    f"checkpoint is {self.manager.latest_checkpoint}")
                log.record(step, loss, norm)
                if self.chief and step % t["sample_every"] == 0:
                    with writer.as_default(step=step):
                        samples.write_summaries()
                if step % t["save_every"] == 0:
                    self.save()
                if stop:  # a signal here, or on another worker (shared through the step): a preemption
                    self._stop_signal = self._stop_signal or signal.SIGTERM
                    break
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._save_unsaved_steps()
            writer.flush()
        return self._stop_signal

    def _resume(self):
        """Record the run's config, restore its newest checkpoint; the step training starts from."""
        if self.chief:
            save_config(used_keys(self.config), self.model_dir)
        resumed = self.restore()
        if resumed:
            logger.info(f"resumed from {resumed} at step {int(self.step.numpy())}")
        return int(self.step.numpy())

    def _run_step(self, train_step, iterator):
        """One training step (see train_step), its input and cluster failures turned into UserErrors."""
        try:
            return train_step(iterator, tf.constant(self._stop_signal is not None))
        except tf.errors.OutOfRangeError:
            raise UserError(self.files.error or "the training data ended") from None
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError):
            self._keep_state = False
            raise UserError(f"step {int(self.step.numpy())}: lost contact with another worker; restart all "
                            f"workers to resume from {self.manager.latest_checkpoint}") from None

    def _save_unsaved_steps(self):
        """Checkpoint the steps since the last checkpoint, unless the state is not to be kept."""
        latest = self.manager.latest_checkpoint
        if self._keep_state and int(self.step.numpy()) > (int(latest.rsplit("-", 1)[1]) if latest else 0):
            path = self.save()
            if self.chief:
                logger.info(f"\nsaved {path} at step {int(self.step.numpy())}")


class StepLog:
    """The scalars of every `train.log_every`-th step to TensorBoard and the progress bar, with the rate since the
    last; the time to the first step (the graph's tracing) once."""

    def __init__(self, writer, trainer, start):
        t = trainer.config["train"]
        self.writer, self.trainer, self.start = writer, trainer, start
        self.every, self.last = t["log_every"], t["max_steps"]
        self.progbar = progress_bar(t["max_steps"], "step", stateful_metrics=["loss", "steps/s"],
                                    verbose=trainer.chief)
        if trainer.chief:
            logger.info("building the training graph (tracing the first step; this can take a minute) ...")
        self.started = self.last_time = time.perf_counter()
        self.last_step = start

    def record(self, step, loss, norm):
        """Note the step just done."""
        if self.trainer.chief and step == self.start + 1:
            logger.info(f"first step done {time.perf_counter() - self.started:.0f} s after the start of the loop")
        if step % self.every and step != self.last:
            return
        now = time.perf_counter()
        rate = (step - self.last_step) / (now - self.last_time)
        self.last_time, self.last_step = now, step
        with self.writer.as_default(step=step):
            tf.summary.scalar("loss", loss)
            tf.summary.scalar("grad_norm", norm)
            tf.summary.scalar("learning_rate", float(self.trainer.optimizer.learning_rate.numpy()))
            tf.summary.scalar("steps_per_second", rate)
            tf.summary.scalar("skipped_files", self.trainer.files.count)
        self.progbar.update(step, [("loss", float(loss)), ("steps/s", rate)])


class NonFiniteSteps:
    """Counts the steps skipped for a non-finite loss or gradients, in all and in a row."""

    def __init__(self, patience):
        self.patience, self.total, self.in_a_row = patience, 0, 0

    def record(self, applied, step, writer):
        """Note whether `step` was applied (a skipped one is warned about and logged as `skipped_steps`); True
        when `patience` steps in a row have been skipped."""
        if applied:
            self.in_a_row = 0
            return False
        self.total, self.in_a_row = self.total + 1, self.in_a_row + 1
        with writer.as_default(step=step):
            tf.summary.scalar("skipped_steps", self.total)
        logger.warning(f"step {step}: the loss or the gradients are not finite; step skipped")
        return self.in_a_row >= self.patience
