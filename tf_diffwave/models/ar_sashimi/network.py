"""Autoregressive SaShiMi (Goel et al., "It's Raw! Audio Generation with State-Space Models", ICML 2022, section 3
and its SC09 model): a causal multi-rate stack of S4 blocks over 8-bit mu-law samples, trained as a convolution
over whole clips and sampled as a recurrence, one sample at a time at a constant cost per sample.

  tier 0 (H channels, L samples) --down-pool p0--> tier 1 (H e, L / p0) --down-pool p1--> ... center
  each tier on the way up: up-pool (shifted right by one coarse step, for causality), skip, S4/feed-forward
  blocks, skip; then a layer norm and a linear layer to 256 logits.

Down-pooling folds p consecutive samples into one (their channels side by side, then a linear layer);
up-pooling is the inverse. In step mode a down-pool buffers p inputs and emits on the p-th; an up-pool emits
the p outputs it computed from the previous coarse step, one per step (zeros at the start: the shift).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tf_diffwave.errors import UserError
from tf_diffwave.models.contract import Backbone
from tf_diffwave.models.layers import rowwise_dense
from tf_diffwave.models.s4 import S4Layer, s4_layers, ssm_training_group

MU = 255  # 8-bit mu-law: 256 classes
START = 128  # the token before the first sample (mu-law of 0), as the reference's generation starts


def mu_law_encode(audio):
    """Float audio in [-1, 1] -> int32 mu-law classes 0 .. 255 (ITU-T G.711's companding, 8 bits)."""
    x = tf.clip_by_value(tf.cast(audio, tf.float32), -1.0, 1.0)
    y = tf.sign(x) * tf.math.log1p(MU * tf.abs(x)) / math.log1p(MU)
    return tf.cast(tf.floor((y + 1.0) / 2.0 * MU + 0.5), tf.int32)


def mu_law_decode(tokens):
    """int mu-law classes 0 .. 255 -> float32 audio in [-1, 1], in torchaudio's float32 arithmetic (y = c / mu * 2
    - 1, x = sign(y) (exp(|y| log1p(mu)) - 1) / mu) with the exponential correctly rounded (torch's float32 exp is
    not, so 5 of the 256 values differ from torchaudio's by one ulp)."""
    mu = tf.constant(float(MU), tf.float32)
    y = tf.cast(tokens, tf.float32) / mu * 2.0 - 1.0
    exponential = tf.cast(tf.exp(tf.cast(tf.abs(y) * tf.math.log1p(mu), tf.float64)), tf.float32)
    return tf.sign(y) * (exponential - 1.0) / mu


class Block:
    """A residual S4 block and a residual feed-forward block, pre-norm (SaShiMi's ResidualBlock pair)."""

    def __init__(self, channels, length, m, name, policy):
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm1", dtype=policy)
        self.s4 = S4Layer(channels, m["s4_length"] or length, state_size=m["state_size"], ssm=m["ssm"],
                          tied_state=m["tie_state"],
                          trainable_ssm=m["ssm_trainable"], variant=m["s4_variant"], name=f"{name}_s4")
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm2", dtype=policy)
        self.ff1 = layers.Dense(m["ff"] * channels, activation=lambda t: ops.gelu(t, approximate=False),
                                name=f"{name}_ff1", dtype=policy)
        self.ff2 = layers.Dense(channels, name=f"{name}_ff2", dtype=policy)

    def _feed_forward(self, x, dense=lambda layer, x: layer(x)):
        """The feed-forward block; `dense(layer, x)` applies its dense layers."""
        return x + dense(self.ff2, dense(self.ff1, self.norm2(x)))

    def __call__(self, x):
        """Over a sequence (B, L, C)."""
        return self._feed_forward(x + self.s4(self.norm1(x)))

    def step(self, x, state):
        """One time step (B, C) -> (B, C), with the S4 layer's state; each example's sums done alone."""
        y, state = self.s4.step(self.norm1(x), state)
        return self._feed_forward(x + y, rowwise_dense), state


class ArSashimiBackbone(Backbone):
    """The autoregressive SaShiMi of config section `model.ar_sashimi`: `model` maps input tokens (B, L) (the
    clip's mu-law classes shifted right by one, START first) to logits (B, L, 256) of each next sample."""

    def __init__(self, model_config, audio_config, policy="float32"):
        m = self.config = model_config
        self.policy = policy
        self.unconditional, self.hop_length, self.n_mels = True, audio_config["hop_length"], audio_config["n_mels"]
        self.classes = MU + 1
        self.length, self.pool = m["audio_length"], [int(p) for p in m["pool"]]
        self.ssm_learning_rate, self.step_mode = m["ssm_learning_rate"], m["step_mode"]
        self.embedding = layers.Embedding(MU + 1, m["d_model"], name="embedding", dtype=policy)
        self.down_pools, self.up_pools, self.blocks = [], [], []
        channels, length = m["d_model"], self.length
        for tier, factor in enumerate(self.pool):
            self.blocks.append([Block(channels, length, m, f"tier{tier}_{i}", policy) for i in range(m["n_layers"])])
            self.down_pools.append(layers.Dense(channels * m["expand"], name=f"tier{tier}_down_pool", dtype=policy))
            self.up_pools.append(layers.Dense(channels * factor, name=f"tier{tier}_up_pool", dtype=policy))
            channels, length = channels * m["expand"], length // factor
        self.blocks.append([Block(channels, length, m, f"center_{i}", policy) for i in range(m["n_layers"])])
        self.output_norm = layers.LayerNormalization(epsilon=1e-5, name="output_norm", dtype=policy)
        self.head = layers.Dense(MU + 1, dtype="float32", name="logits")
        self.conditioner, self.denoiser, self._sampler = None, None, None
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        logits = self.head(self.output_norm(self._tier(0, self.embedding(tokens))))
        self.model = keras.Model(tokens, logits, name="ar_sashimi")

    @property
    def context_frames(self):
        return 0

    def _tier(self, tier, x):
        """The network from tier `tier` down, over a sequence (B, L_tier, C_tier)."""
        skip = x
        if tier < len(self.pool):
            factor, channels = self.pool[tier], x.shape[-1]
            folded = layers.Reshape((-1, factor * channels), dtype=self.policy)(x)
            lower = self._tier(tier + 1, self.down_pools[tier](folded))
            up = self.up_pools[tier](lower)
            up = layers.Cropping1D((0, 1), dtype=self.policy)(up)
            up = layers.ZeroPadding1D((1, 0), dtype=self.policy)(up)  # one coarse step later: causal
            x = skip = layers.Reshape((-1, channels), dtype=self.policy)(up) + skip
        for block in self.blocks[tier]:
            x = block(x)
        return x + skip

    def own_learning_rate_variables(self):
        return ssm_training_group(self.model, self.ssm_learning_rate)

    def training_objective(self, config):
        return NextSampleObjective()

    def own_sampler(self, config):
        """The recurrent sampler of this network (one per backbone: its graph is traced once)."""
        if self._sampler is None:
            self._sampler = RecurrentSampler(self, config["model"]["ar_sashimi"])
        return self._sampler

    # ---- step mode --------------------------------------------------------------------------------------------------

    def initial_state(self, batch):
        """The state before the first sample: every S4 layer's zero state, and every up-pool's pending outputs
        (zeros: the shift by one coarse step)."""
        s4_states = [[block.s4.initial_state(batch) for block in tier] for tier in self.blocks]
        channels = [self.config["d_model"] * self.config["expand"] ** t for t in range(len(self.pool))]
        pending = [[tf.zeros([batch, c]) for _ in range(p)] for c, p in zip(channels, self.pool)]
        return {"s4": s4_states, "pending": pending}

    @property
    def period(self):
        """Samples after which every tier's clock comes round (the product of the pooling factors)."""
        return math.prod(self.pool)

    def step(self, token, clock, state, buffers):
        """Logits (B, 256) of the sample after `token` (B,), the `clock`-th of a period (a Python int), updating
        `state` and the down-pool `buffers` (Python lists, emptied within a period) in place. Every matmul is a
        matrix-vector product per example (layers.rowwise_dense), so that a clip does not depend on its batch."""
        x = self._tier_step(0, self.embedding(token), clock, state, buffers)
        return tf.cast(rowwise_dense(self.head, self.output_norm(x)), tf.float32)

    def _tier_step(self, tier, x, clock, state, buffers):
        skip = x
        if tier < len(self.pool):
            factor = self.pool[tier]
            pending = state["pending"][tier]
            up = pending[clock % factor]  # read before a refill: the outputs of the previous coarse step
            buffers[tier].append(x)
            if clock % factor == factor - 1:
                lower = rowwise_dense(self.down_pools[tier], tf.concat(buffers[tier], axis=-1))
                buffers[tier].clear()
                lower = self._tier_step(tier + 1, lower, clock // factor, state, buffers)
                pending[:] = tf.split(rowwise_dense(self.up_pools[tier], lower), factor, axis=-1)
            x = skip = up + skip
        for i, block in enumerate(self.blocks[tier]):
            x, state["s4"][tier][i] = block.step(x, state["s4"][tier][i])
        return x + skip


class NextSampleObjective:
    """Training loss of an autoregressive model: the negative log-likelihood of each mu-law sample given the
    previous ones, in bits per sample (cross-entropy / ln 2), averaged over the clip."""

    def model_inputs(self, batch):
        """The input tokens: the clip's classes shifted right by one, START first."""
        tokens = mu_law_encode(batch["audio"])
        return tf.concat([tf.fill([tf.shape(tokens)[0], 1], START), tokens[:, :-1]], axis=1)

    def per_example_loss(self, batch, logits):
        """NLL in bits per sample of each clip of the batch."""
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=mu_law_encode(batch["audio"]),
                                                              logits=tf.cast(logits, tf.float32))
        return tf.reduce_mean(nats, axis=1) / math.log(2.0)


def nucleus_gumbel_sample(logits, temperature, top_p, uniform):
    """Sample a class per row of logits (B, K) with the given temperature, from the smallest set of classes whose
    probability reaches top_p (nucleus sampling), by Gumbel-max with the uniform draws (B, K)."""
    logits = logits / temperature
    order = tf.argsort(logits, axis=-1, direction="DESCENDING")
    sorted_logits = tf.gather(logits, order, batch_dims=1)
    probs = tf.nn.softmax(sorted_logits)
    keep = tf.math.cumsum(probs, axis=-1, exclusive=True) < top_p  # the first class always stays
    sorted_logits = tf.where(keep, sorted_logits, -np.inf)
    gumbel = -tf.math.log(-tf.math.log(tf.clip_by_value(uniform, 1e-20, 1.0 - 1e-7)))
    return tf.gather(order, tf.argmax(sorted_logits + gumbel, axis=-1, output_type=tf.int32), batch_dims=1)


class RecurrentSampler(tf.Module):
    """Generation with the model in step mode: audio (B, length), clip b drawn from seeds[b] alone. The loop runs
    one period of the tiers' clocks per iteration (its steps unrolled), so every sample costs the same."""

    def __init__(self, backbone, config):
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model  # tracked: its weights are the sampler's
        self.temperature, self.top_p = config["temperature"], config["top_p"]
        self.layers = list(s4_layers(backbone.model))

    def step_systems(self):
        """Every S4 layer's recurrence from the current weights (eagerly: numpy), as the tensors `generate` takes."""
        return [layer.step_system(self.backbone.step_mode)[1:] for layer in self.layers]

    def generate(self, seeds, length, temperature=None, top_p=None, prompt=None, systems=None, on_sample=None):
        """Audio (B, length) from seeds (B,), with the config's temperature and top-p unless given; `prompt`
        (samples,) float audio, if given, is every clip's beginning, which the model continues. `systems` (from
        `step_systems`) saves recomputing the recurrences when the weights have not changed; `on_sample(done)`,
        if given, is called with the samples done so far every 1024 samples (progress reports)."""
        temperature = self.temperature if temperature is None else temperature
        top_p = self.top_p if top_p is None else top_p
        if not temperature > 0:
            raise UserError(f"temperature = {temperature} must be positive")
        if not 0 < top_p <= 1:
            raise UserError(f"top_p = {top_p} must be positive and at most 1")
        prompt = np.zeros([0], np.float32) if prompt is None else np.asarray(prompt, np.float32)
        if not len(prompt) < length:
            raise UserError(f"the prompt has {len(prompt)} samples; it must be shorter than a clip ({length}): trim "
                            f"it, e.g. to its first {length // 2} samples")
        args = (self.step_systems() if systems is None else systems, tf.constant(seeds, tf.int64),
                tf.constant(length, tf.int32), tf.constant(temperature, tf.float32), tf.constant(top_p, tf.float32),
                tf.constant(np.tile(prompt[None], (len(seeds), 1)), tf.float32))
        # one graph for every batch size, length and setting, traced with none of them known: a graph made for one
        # batch size is optimised differently, and its rounding would make a clip depend on its batch
        graph = self.generate_with.get_concrete_function(
            args[0], tf.TensorSpec([None], tf.int64), *(tf.TensorSpec([], a.dtype) for a in args[2:5]),
            tf.TensorSpec([None, None], tf.float32), on_sample)
        return graph(*args, on_sample)

    def frozen(self):
        """generate(seeds, length) with the current weights' recurrences and the config's sampling options, safe to
        trace (for exports)."""
        systems, temperature, top_p = self.step_systems(), self.temperature, self.top_p
        return lambda seeds, length: self.generate_with(systems, seeds, length, tf.constant(temperature, tf.float32),
                                                        tf.constant(top_p, tf.float32),
                                                        tf.zeros([tf.shape(seeds)[0], 0]))

    @tf.function(reduce_retracing=True)
    def generate_with(self, systems, seeds, length, temperature, top_p, prompt, on_sample=None):
        """`generate` with the S4 recurrences given (`step_systems`: a traced graph keeps what it was given)."""
        for layer, system in zip(self.layers, systems):
            layer.use_step_system((self.backbone.step_mode, *system))
        try:
            return self._loop(seeds, length, temperature, top_p, mu_law_encode(prompt), on_sample)
        finally:
            for layer in self.layers:
                layer.use_step_system(None)

    def _loop(self, seeds, length, temperature, top_p, prompt_tokens, on_sample):
        period = self.backbone.period
        seeds = tf.cast(seeds, tf.int64)
        batch = tf.shape(seeds)[0]
        periods = (tf.cast(length, tf.int32) + period - 1) // period
        prompted = tf.shape(prompt_tokens)[1]
        prompt_tokens = tf.concat([prompt_tokens, tf.fill([batch, 1], START)], axis=1)  # never empty

        def report(done):
            tf.py_function(on_sample, [done], [])
            return tf.constant(True)

        def body(n, token, state, tokens):
            buffers = [[] for _ in self.backbone.pool]
            draw = tf.cast(n, tf.int64)
            uniform = tf.map_fn(lambda s: tf.random.stateless_uniform([period, MU + 1], seed=tf.stack([s, draw])),
                                seeds, fn_output_signature=tf.float32)
            for i in range(period):
                t = n * period + i
                sampled = nucleus_gumbel_sample(self.backbone.step(token, i, state, buffers), temperature, top_p,
                                                uniform[:, i])
                token = tf.where(t < prompted, tf.gather(prompt_tokens, tf.minimum(t, prompted), axis=1), sampled)
                tokens = tokens.write(t, token)
            if on_sample is not None:
                tf.cond(((n + 1) * period) % 1024 < period, lambda: report((n + 1) * period), lambda: tf.constant(True))
            return n + 1, token, state, tokens

        _, _, _, tokens = tf.while_loop(
            lambda n, *_: n < periods, body,
            (0, tf.fill([batch], START), self.backbone.initial_state(batch),
             tf.TensorArray(tf.int32, periods * period)))
        return mu_law_decode(tf.transpose(tokens.stack())[:, :length])
