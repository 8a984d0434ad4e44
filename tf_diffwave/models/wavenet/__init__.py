"""DiffWave's WaveNet (Kong et al. 2021): a vocoder or an unconditional generator. The network is in network.py."""

from tf_diffwave.models.registry import Family
from tf_diffwave.models.strides import upsample_strides


def check(config):
    """A vocoder's hop must be a product of two transposed-convolution strides."""
    if not config["model"]["unconditional"]:
        upsample_strides(config["audio"]["hop_length"])


FAMILY = Family(
    name="wavenet",
    title="DiffWave (WaveNet)",
    network="tf_diffwave.models.wavenet.network:WaveNetBackbone",
    section={
        "residual_channels": 64,
        "residual_layers": 30,
        "dilation_cycle": 10,
        "embed_dim": 512,             # width of the diffusion-step MLP
        "step_embedding": "float64",  # sinusoidal step table: "float64" (exact) or "float32" (lmnt-com/diffwave's
                                      # float32 arithmetic, which models imported from it learned on)
    },
    choices={"step_embedding": ("float64", "float32")},
    check=check,
)
