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
from tf_diffwave.s4 import S4Layer
from tf_diffwave.wavenet import StepEmbedding


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


def _down_pool(x, factor, channels, name):
    """(B, L, H) -> (B, L / factor, channels): fold `factor` consecutive samples into the channels, then a linear."""
    x = ops.reshape(x, (-1, x.shape[1] // factor, factor * x.shape[-1]))
    return layers.Dense(channels, name=name)(x)


def _up_pool(x, factor, channels, name):
    """(B, L, H) -> (B, L * factor, channels): a linear to factor * channels, unfolded along time."""
    x = layers.Dense(factor * channels, name=name)(x)
    return ops.reshape(x, (-1, x.shape[1] * factor, channels))


class SashimiBackbone:
    """The denoiser and training model of one DiffWave+SaShiMi network (unconditional)."""

    def __init__(self, model_config, audio_config):
        m = model_config
        if not m["unconditional"]:
            raise UserError("config key 'model.backbone' = 'sashimi' supports unconditional models "
                            "(model.unconditional=true) only, so far")
        self.unconditional = True
        self.conditioner = None
        self.hop_length, self.n_mels = audio_config["hop_length"], audio_config["n_mels"]
        self.length = m["audio_length"]
        self.pool = [int(p) for p in m["pool"]]
        total = math.prod(self.pool)
        if self.length % total:
            raise UserError(f"config key 'model.audio_length' = {self.length} must be a multiple of the product "
                            f"of 'model.pool' ({total})")
        self.config = m
        self.denoiser = self._build_denoiser()
        self.model = self.denoiser  # unconditional: training runs the denoiser itself

    @property
    def context_frames(self):
        """S4 layers see the whole clip: there is no finite receptive field to chunk by."""
        return self.length

    def _block(self, x, emb, channels, length, name):
        """One residual block: S4 on the normalised input plus the step embedding, then a feed-forward layer."""
        m = self.config
        y = ScalarLayerNorm(name=f"{name}_norm1")(x)
        y = y + ops.expand_dims(layers.Dense(channels, name=f"{name}_step")(emb), 1)
        y = S4Layer(channels, length, state_size=m["state_size"], bidirectional=m["bidirectional"], ssm=m["ssm"],
                    trainable_ssm=m["ssm_trainable"], name=f"{name}_s4", dtype="float32")(y)
        x = x + y
        y = ScalarLayerNorm(name=f"{name}_norm2")(x)
        y = layers.Dense(m["ff"] * channels, activation=lambda t: ops.gelu(t, approximate=False),
                         name=f"{name}_ff1")(y)
        return x + layers.Dense(channels, name=f"{name}_ff2")(y)

    def _build_denoiser(self):
        m = self.config
        audio = keras.Input((self.length,), name="audio")
        step = keras.Input((), name="step")
        emb = StepEmbedding(128)(step)
        emb = layers.Dense(m["embed_dim"], activation="swish", name="step_mlp_1")(emb)
        emb = layers.Dense(m["embed_dim"], activation="swish", name="step_mlp_2")(emb)

        channels, length = m["d_model"], self.length
        x = layers.Dense(channels, activation="relu", name="input_projection")(ops.expand_dims(audio, -1))
        skips = [x]
        for tier, factor in enumerate(self.pool):
            for i in range(m["n_layers"] if m["unet"] else 0):
                x = self._block(x, emb, channels, length, f"down{tier}_{i}")
                skips.append(x)
            channels, length = channels * m["expand"], length // factor
            x = _down_pool(x, factor, channels, f"down{tier}_pool")
            skips.append(x)
        for i in range(m["n_layers"]):
            x = self._block(x, emb, channels, length, f"center_{i}")
        x = x + skips.pop()
        for tier, factor in reversed(list(enumerate(self.pool))):
            channels, length = channels // m["expand"], length * factor
            x = _up_pool(x, factor, channels, f"up{tier}_pool")
            x = x + skips.pop()
            for i in range(m["n_layers"]):
                x = self._block(x, emb, channels, length, f"up{tier}_{i}")
                if m["unet"]:
                    x = x + skips.pop()
        x = ScalarLayerNorm(name="output_norm")(x)
        x = layers.Dense(channels, activation="relu", name="skip_projection")(x)
        x = layers.Dense(1, kernel_initializer="zeros", name="output")(x)
        return keras.Model([audio, step], ops.squeeze(x, -1), name="denoiser")
