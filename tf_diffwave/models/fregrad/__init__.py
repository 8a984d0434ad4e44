"""FreGrad (Nguyen et al., "FreGrad: Lightweight and Fast Frequency-aware Diffusion Vocoder", ICASSP 2024): a
DiffWave that diffuses the two Haar bands of the audio, with frequency-aware dilated convolutions. The network is in
network.py."""

from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import Family
from tf_diffwave.models.strides import upsample_strides


def check(config):
    """The hop splits into the two bands' samples and the Freq-DConv's quarter rate, and its half upsamples."""
    hop = config["audio"]["hop_length"]
    if hop % 4:
        raise UserError(f"config key 'audio.hop_length' = {hop} must be a multiple of 4 for FreGrad (its bands run "
                        f"at half the rate and its convolutions at a quarter)")
    upsample_strides(hop // 2)


FAMILY = Family(
    name="fregrad",
    title="FreGrad",
    network="tf_diffwave.models.fregrad.network:FreGradBackbone",
    conditioning="mel",
    bands=2,
    section={
        "residual_channels": 32,
        "residual_layers": 30,
        "dilation_cycle": 7,
        "embed_dim": 512,             # width of the diffusion-step MLP
        "step_embedding": "float32",  # sinusoidal step table: "float32" (lmnt's arithmetic, as FreGrad's) or
                                      # "float64" (exact)
        "output_filter": False,       # true: FreGrad's remove_cutoff_alias on the sampled bands (a 5 Hz highpass
                                      # and a lowpass at 5500 Hz of 11025, over the whole output: no streaming)
    },
    choices={"step_embedding": ("float64", "float32")},
    check=check,
)
