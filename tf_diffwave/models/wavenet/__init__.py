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
        "embed_out_dim": None,        # width of its second layer (null: embed_dim)
        "skip_channels": None,        # width of the skip path (null: residual_channels)
        "step_embedding": "float64",  # sinusoidal step table: "float64" (exact) or "float32" (the originals'
                                      # float32 arithmetic, which models imported from them learned on)
        "step_frequencies": "diffwave",  # "diffwave" (10^(4j/63), the paper's) or "transformer" (10^(-4j/63),
                                         # philsyn/DiffWave-unconditional's)
        "step_in_residual": False,    # true: the residual path keeps the step projection, (x + step + residual) /
                                      # sqrt 2, as philsyn's in-place `h += part_t` computes and its checkpoints need
        "mel_upsampler": "shared",    # vocoders: "shared" (one upsampler, DiffWave's) or "per_layer" (each residual
                                      # layer its own upsampler and projection, philsyn/DiffWave-Vocoder's)
    },
    choices={"step_embedding": ("float64", "float32"), "step_frequencies": ("diffwave", "transformer"),
             "mel_upsampler": ("shared", "per_layer")},
    check=check,
)
