"""The SaShiMi backbone for DiffWave (Goel et al., "It's Raw! Audio Generation with State-Space Models", ICML 2022,
section 3 and the DiffWave+SaShiMi model of its section 5.3) as a Keras functional model.

A U-Net over time: tiers of residual blocks (S4 then feed-forward, the diffusion-step embedding added in each)
at rates L, L/p1, L/(p1 p2), ..., joined by down-pooling (fold p samples into channels, then a linear layer)
and up-pooling (the inverse), with a skip connection around every layer. The backbone knows nothing about
noise schedules; it is driven by the same diffusion core, trainer, samplers and exports as the WaveNet.
"""

import math

import keras
from keras import layers, ops

from tf_diffwave.errors import UserError
from tf_diffwave.family import Backbone
from tf_diffwave.s4 import S4Layer, kernels_computed_once, s4_layers
from tf_diffwave.wavenet import StepEmbedding, upsample_mel, upsample_strides


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
class WeightNormDense(layers.Dense):
    """A Dense layer with weight normalisation (Salimans and Kingma, 2016): kernel = g v / ||v|| for each output
    unit, with g (one gain per unit) starting at the initial ||v||, so that it starts as the plain layer."""

    def build(self, input_shape):
        super().build(input_shape)
        self.gain = self.add_weight(name="gain", shape=(self.units,), initializer="ones")
        self.gain.assign(ops.sqrt(ops.sum(ops.square(self._kernel), axis=0)))

    @property
    def kernel(self):
        return self._kernel * (self.gain / ops.sqrt(ops.sum(ops.square(self._kernel), axis=0, keepdims=True)))


class SashimiBackbone(Backbone):
    """The conditioner (vocoders), denoiser and training model of one DiffWave+SaShiMi network.

    S4 kernels are computed for `model.audio_length` samples (per tier, that divided by the pooling so far);
    the denoiser takes any length up to that which is a multiple of the pooling product. Vocoders condition
    every block on the upsampled mel averaged down to its tier's rate, and longer inputs are vocoded in
    overlapping windows (see `context_frames`)."""

    def __init__(self, model_config, audio_config):
        m = model_config
        self.config = m
        self.unconditional = m["unconditional"]
        self.ssm_learning_rate = m["ssm_learning_rate"]
        self.hop_length, self.n_mels = audio_config["hop_length"], audio_config["n_mels"]
        self.dense = WeightNormDense if m["weight_norm"] else layers.Dense  # the feed-forward and pooling layers
        self.length = m["audio_length"]
        self.pool = [int(p) for p in m["pool"]]
        total = math.prod(self.pool)
        if self.length % total:
            raise UserError(f"config key 'model.audio_length' = {self.length} must be a multiple of the product "
                            f"of 'model.sashimi.pool' ({total})")
        if not self.unconditional and self.hop_length % total:
            raise UserError(f"config key 'audio.hop_length' = {self.hop_length} must be a multiple of the product "
                            f"of 'model.sashimi.pool' ({total}) for a SaShiMi vocoder")
        self.conditioner = None if self.unconditional else self._build_conditioner()
        self.denoiser = self._build_denoiser()
        self.model = self.denoiser if self.unconditional else self._build_training_model()

    @classmethod
    def check_config(cls, config):
        """A vocoder's S4 kernels must cover the training crop; the jan2022 variant needs DPLR S4."""
        model, sashimi, audio = config["model"], config["model"]["sashimi"], config["audio"]
        if not model["unconditional"]:
            upsample_strides(audio["hop_length"])
            crop = config["data"]["crop_frames"] * audio["hop_length"]
            if crop > model["audio_length"]:
                raise UserError(f"config key 'model.audio_length' = {model['audio_length']} must be at least the "
                                f"training crop of {crop} samples ('data.crop_frames' x 'audio.hop_length'): a "
                                f"SaShiMi network's S4 kernels have that length")
        if sashimi["s4_variant"] == "jan2022" and sashimi["ssm"] != "s4":
            raise UserError("config key 'model.sashimi.s4_variant' = 'jan2022' needs 'model.sashimi.ssm' = 's4' (its "
                            "Q is the low-rank term of a DPLR state matrix)")

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
        """The S4 state-space parameters (Lambda, P, B, dt) train with Adam at `model.sashimi.ssm_learning_rate` (S4
        paper); None when they are frozen."""
        ssm = [v for layer in s4_layers(self.model) for v in layer.ssm_variables]
        return (ssm, self.ssm_learning_rate) if ssm else None

    def sampling(self):
        """Each S4 kernel computed once per sampling call, not at every denoising step."""
        return kernels_computed_once(self.model)

    wants_full_float32 = True  # TF32 matmuls cost S4 kernels about 1e-2 relative accuracy on GPUs

    def _build_conditioner(self):
        mel = keras.Input((None, self.n_mels), name="mel")
        return keras.Model(mel, upsample_mel(mel, self.hop_length), name="conditioner")

    def _build_training_model(self):
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        mel = keras.Input((None, self.n_mels), name="mel")
        return keras.Model([audio, step, mel], self.denoiser([audio, step, self.conditioner(mel)]), name="diffwave")

    def _block(self, x, emb, cond, channels, length, name):
        """One residual block: S4 on the normalised input plus the step embedding (plus the tier's mel), then a
        feed-forward layer."""
        m = self.config
        y = ScalarLayerNorm(name=f"{name}_norm1")(x)
        y = y + ops.expand_dims(layers.Dense(channels, name=f"{name}_step")(emb), 1)
        y = S4Layer(channels, length, state_size=m["state_size"], bidirectional=m["bidirectional"], ssm=m["ssm"],
                    trainable_ssm=m["ssm_trainable"], variant=m["s4_variant"], name=f"{name}_s4")(y)
        if cond is not None:
            y = y + layers.Dense(channels, name=f"{name}_cond")(cond)
        x = x + y
        y = ScalarLayerNorm(name=f"{name}_norm2")(x)
        y = self.dense(m["ff"] * channels, activation=lambda t: ops.gelu(t, approximate=False), name=f"{name}_ff1")(y)
        return x + self.dense(channels, name=f"{name}_ff2")(y)

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
                tier_cond[tier] = cond if rate == 1 else layers.AveragePooling1D(rate, name=f"cond_pool{tier}")(cond)
                rate *= self.pool[tier] if tier < len(self.pool) else 1
        emb = StepEmbedding(128, m["step_embedding"])(step)
        emb = layers.Dense(m["embed_dim"], activation="swish", name="step_mlp_1")(emb)
        emb = layers.Dense(m["embed_dim"], activation="swish", name="step_mlp_2")(emb)

        channels, length = m["d_model"], self.length
        x = self.dense(channels, activation="relu", name="input_projection")(ops.expand_dims(audio, -1))
        skips = [x]
        for tier, factor in enumerate(self.pool):
            for i in range(m["n_layers"] if m["unet"] else 0):
                x = self._block(x, emb, tier_cond[tier], channels, length, f"down{tier}_{i}")
                skips.append(x)
            channels, length = channels * m["expand"], length // factor
            # down-pooling: each `factor` consecutive samples become one, (B, L, C) -> (B, L / factor, factor C)
            x = self.dense(channels, name=f"down{tier}_pool")(layers.Reshape((-1, factor * x.shape[-1]))(x))
            skips.append(x)
        for i in range(m["n_layers"]):
            x = self._block(x, emb, tier_cond[-1], channels, length, f"center_{i}")
        x = x + skips.pop()
        for tier, factor in reversed(list(enumerate(self.pool))):
            channels, length = channels // m["expand"], length * factor
            x = layers.Reshape((-1, channels))(self.dense(factor * channels, name=f"up{tier}_pool")(x))  # the inverse
            x = x + skips.pop()
            for i in range(m["n_layers"]):
                x = self._block(x, emb, tier_cond[tier], channels, length, f"up{tier}_{i}")
                if m["unet"]:
                    x = x + skips.pop()
        x = ScalarLayerNorm(name="output_norm")(x)
        x = self.dense(channels, activation="relu", name="skip_projection")(x)
        x = layers.Dense(1, kernel_initializer="zeros", dtype="float32", name="output")(x)
        return keras.Model(inputs, ops.squeeze(x, -1), name="denoiser")
