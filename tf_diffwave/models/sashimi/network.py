"""The SaShiMi backbone for DiffWave (Goel et al., "It's Raw! Audio Generation with State-Space Models", ICML 2022,
section 3 and the DiffWave+SaShiMi model of its section 5.3) as a Keras functional model.

A U-Net over time: tiers of residual blocks (S4 then feed-forward, the diffusion-step embedding added in each)
at rates L, L/p1, L/(p1 p2), ..., joined by down-pooling (fold p samples into channels, then a linear layer)
and up-pooling (the inverse), with a skip connection around every layer. The backbone knows nothing about
noise schedules; it is driven by the same diffusion core, trainer, samplers and exports as the WaveNet.
"""


import keras
from keras import layers, ops

from tf_diffwave.models.contract import Backbone
from tf_diffwave.models.layers import StepEmbedding, upsample_mel
from tf_diffwave.models.s4 import S4Layer, kernels_computed_once, ssm_training_group


@keras.saving.register_keras_serializable(package="tf_diffwave")
class ScalarLayerNorm(layers.Layer):
    """Normalisation over channels with one learned scale and shift for the whole layer:
    y = s (x - mean + m) / std, as DiffWave+SaShiMi's transposed layer norm."""

    def build(self, input_shape):
        self.shift = self.add_weight(name="shift", shape=(), initializer="zeros")
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

    def call(self, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=-1, keepdims=True) + 1e-5)
        return self.scale * (x - mean + self.shift) / std


@keras.saving.register_keras_serializable(package="tf_diffwave")
class WeightNormDense(layers.Layer):
    """A dense layer with weight normalisation (Salimans and Kingma, 2016): kernel = g v / ||v|| for each output
    unit, with g (one gain per unit) starting at the initial ||v||, so that it starts as a plain Dense. Its
    weights are named and ordered as a Dense's (kernel v, bias), then the gain, so checkpoints keep their keys."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation = units, keras.activations.get(activation)

    def build(self, input_shape):
        self._kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                       initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.gain = self.add_weight(name="gain", shape=(self.units,), initializer="ones")
        self.gain.assign(ops.sqrt(ops.sum(ops.square(self._kernel), axis=0)))

    @property
    def kernel(self):
        return self._kernel * (self.gain / ops.sqrt(ops.sum(ops.square(self._kernel), axis=0, keepdims=True)))

    def call(self, x):
        return self.activation(ops.matmul(x, self.kernel) + self.bias)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


class SashimiBackbone(Backbone):
    """The conditioner (vocoders), denoiser and training model of one DiffWave+SaShiMi network.

    S4 kernels are computed for `model.audio_length` samples (per tier, that divided by the pooling so far);
    the denoiser takes any length up to that which is a multiple of the pooling product. Vocoders condition
    every block on the upsampled mel averaged down to its tier's rate, and longer inputs are vocoded in
    overlapping windows (see `context_frames`)."""

    def __init__(self, model_config, audio_config, policy="float32"):
        m = model_config
        self.policy = policy
        self.config = m
        self.unconditional = m["unconditional"]
        self.ssm_learning_rate = m["ssm_learning_rate"]
        self.hop_length, self.n_mels = audio_config["hop_length"], audio_config["n_mels"]
        self.dense = WeightNormDense if m["weight_norm"] else layers.Dense  # the feed-forward and pooling layers
        self.length = m["audio_length"]
        self.pool = [int(p) for p in m["pool"]]
        self.conditioner = None if self.unconditional else self._build_conditioner()
        self.denoiser = self._build_denoiser()
        self.model = self.denoiser if self.unconditional else self._build_training_model()

    @property
    def max_frames(self):
        """The most mel frames one pass of the network takes (S4 kernels have a fixed length)."""
        return self.length // self.hop_length

    @property
    def context_frames(self):
        """Frames of context on each side of a window when a long input is vocoded window by window. S4 layers
        see the whole window, so this is not an exact receptive field: a quarter of the window on each side."""
        return max(self.max_frames // 4, 1)

    def own_learning_rate_variables(self):
        return ssm_training_group(self.model, self.ssm_learning_rate)

    def sampling(self, portable=False):
        """Each S4 kernel computed once per sampling call, not at every denoising step."""
        return kernels_computed_once(self.model, portable)

    def _build_conditioner(self):
        mel = keras.Input((None, self.n_mels), name="mel")
        return keras.Model(mel, upsample_mel(mel, self.hop_length, self.policy), name="conditioner")

    def _build_training_model(self):
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        mel = keras.Input((None, self.n_mels), name="mel")
        return keras.Model([audio, step, mel], self.denoiser([audio, step, self.conditioner(mel)]), name="diffwave")

    def _norm(self, name):
        if self.config["norm"] == "channel":
            return layers.LayerNormalization(epsilon=1e-5, name=name, dtype=self.policy)
        return ScalarLayerNorm(name=name, dtype=self.policy)

    def _s4_layer(self, x, emb, cond, channels, length, name):
        """The first half of a residual block: S4 on the normalised input plus the step embedding (plus the tier's
        mel), with its skip."""
        m = self.config
        y = self._norm(f"{name}_norm1")(x)
        y = y + ops.expand_dims(layers.Dense(channels, name=f"{name}_step", dtype=self.policy)(emb), 1)
        y = S4Layer(channels, m["s4_length"] or length, state_size=m["state_size"], bidirectional=m["bidirectional"],
                    ssm=m["ssm"], trainable_ssm=m["ssm_trainable"], variant=m["s4_variant"], nodes=m["s4_nodes"],
                    tied_state=m["tie_state"],
                    name=f"{name}_s4", dtype=self.policy)(y)
        if cond is not None:
            y = y + layers.Dense(channels, name=f"{name}_cond", dtype=self.policy)(cond)
        return x + y

    def _ff_layer(self, x, channels, name):
        """The second half of a residual block: a feed-forward layer on the normalised input, with its skip."""
        y = self._norm(f"{name}_norm2")(x)
        y = self.dense(self.config["ff"] * channels, activation=lambda t: ops.gelu(t, approximate=False),
                       name=f"{name}_ff1", dtype=self.policy)(y)
        return x + self.dense(channels, name=f"{name}_ff2", dtype=self.policy)(y)

    def _build_denoiser(self):
        m = self.config
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        inputs = [audio, step]
        tier_cond = [None] * (len(self.pool) + 1)
        if not self.unconditional:
            cond = keras.Input((None, self.n_mels), name="cond")
            inputs.append(cond)
            rate = 1
            for tier in range(len(self.pool) + 1):
                tier_cond[tier] = cond if rate == 1 else \
                    layers.AveragePooling1D(rate, name=f"cond_pool{tier}", dtype=self.policy)(cond)
                rate *= self.pool[tier] if tier < len(self.pool) else 1
        emb = StepEmbedding(128, m["step_embedding"], m["step_frequencies"], name="step_embedding",
                            dtype=self.policy)(step)
        emb = layers.Dense(m["embed_dim"], activation="swish", name="step_mlp_1", dtype=self.policy)(emb)
        emb = layers.Dense(m["embed_out_dim"] or m["embed_dim"], activation="swish", name="step_mlp_2",
                           dtype=self.policy)(emb)
        by_layer = m["skips"] == "layer"

        channels, length = m["d_model"], self.length
        x = self.dense(channels, activation="relu", name="input_projection", dtype=self.policy)(
            ops.expand_dims(audio, -1))
        skips = [x]
        for tier, factor in enumerate(self.pool):
            for i in range(m["n_layers"] if m["unet"] else 0):
                x = self._s4_layer(x, emb, tier_cond[tier], channels, length, f"down{tier}_{i}")
                if by_layer:
                    skips.append(x)
                x = self._ff_layer(x, channels, f"down{tier}_{i}")
                skips.append(x)
            channels, length = channels * m["expand"], length // factor
            # down-pooling: each `factor` consecutive samples become one, (B, L, C) -> (B, L / factor, factor C)
            x = layers.Reshape((-1, factor * x.shape[-1]), dtype=self.policy)(x)
            x = self.dense(channels, name=f"down{tier}_pool", dtype=self.policy)(x)
            skips.append(x)
        for i in range(m["n_layers"]):
            x = self._s4_layer(x, emb, tier_cond[-1], channels, length, f"center_{i}")
            x = self._ff_layer(x, channels, f"center_{i}")
        x = x + skips.pop()
        for tier, factor in reversed(list(enumerate(self.pool))):
            channels, length = channels // m["expand"], length * factor
            x = self.dense(factor * channels, name=f"up{tier}_pool", dtype=self.policy)(x)
            x = layers.Reshape((-1, channels), dtype=self.policy)(x)  # the inverse
            x = x + skips.pop()
            for i in range(m["n_layers"]):
                x = self._s4_layer(x, emb, tier_cond[tier], channels, length, f"up{tier}_{i}")
                if by_layer:
                    x = x + skips.pop()
                x = self._ff_layer(x, channels, f"up{tier}_{i}")
                if m["unet"]:
                    x = x + skips.pop()
        x = self._norm("output_norm")(x)
        x = self.dense(channels, activation="relu", name="skip_projection", dtype=self.policy)(x)
        x = layers.Dense(1, kernel_initializer="zeros", dtype="float32", name="output")(x)
        return keras.Model(inputs, ops.squeeze(x, -1), name="denoiser")
