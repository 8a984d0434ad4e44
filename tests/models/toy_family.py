"""A family that lives outside the package: a tiny vocoder that meets the contract (models/contract.py), for
checking that registering a family is all it takes to train, vocode and export it."""

import keras
from keras import layers, ops

from tf_diffwave.errors import UserError
from tf_diffwave.models.contract import Backbone
from tf_diffwave.models.registry import Family


class ToyBackbone(Backbone):
    """mel -> (repeated to the audio rate, projected) -> added to a projection of the noisy audio and of the step."""

    def __init__(self, model_config, audio_config, policy="float32"):
        c = model_config["channels"]
        self.unconditional = False
        self.hop_length, self.n_mels = audio_config["hop_length"], audio_config["n_mels"]
        mel = keras.Input((None, self.n_mels), name="mel")
        upsampled = layers.UpSampling1D(self.hop_length, dtype=policy, name="toy_upsample")(mel)
        self.conditioner = keras.Model(mel, layers.Dense(c, dtype=policy, name="toy_cond")(upsampled))
        audio, step = keras.Input((None,), name="audio"), keras.Input((), name="step")
        cond = keras.Input((None, c), name="cond")
        emb = layers.Dense(c, activation="tanh", dtype=policy, name="toy_step")(ops.expand_dims(step / 50.0, -1))
        x = layers.Dense(c, activation="tanh", dtype=policy, name="toy_in")(ops.expand_dims(audio, -1))
        eps = layers.Dense(1, dtype="float32", name="toy_out")(x + ops.expand_dims(emb, 1) + cond)
        self.denoiser = keras.Model([audio, step, cond], ops.squeeze(eps, -1))
        self.model = keras.Model([audio, step, mel], self.denoiser([audio, step, self.conditioner(mel)]))

    @property
    def context_frames(self):
        return 1


def check(config):
    if config["model"]["toy"]["channels"] < 1:
        raise UserError("config key 'model.toy.channels' must be at least 1")


FAMILY = Family(name="toy", title="toy vocoder", network="tests.models.toy_family:ToyBackbone", conditioning="mel",
                section={"channels": 8}, check=check)
