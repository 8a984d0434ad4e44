"""Autoregressive SaShiMi (Goel et al. 2022): an unconditional likelihood model of 8-bit mu-law samples, sampled
as a recurrence. It brings its own objective and sampler. The network is in network.py."""

from tf_diffwave.models.registry import Family, SamplingFlag
from tf_diffwave.models.s4_config import check_s4_clip


def check(config):
    """Clips that the pooling divides, S4 kernels that cover them."""
    check_s4_clip(config, "ar_sashimi")


FAMILY = Family(
    name="ar_sashimi",
    title="autoregressive SaShiMi",
    network="tf_diffwave.models.ar_sashimi.network:ArSashimiBackbone",
    kind="autoregressive",
    conditioning="none",
    noise_input=None,
    section={                         # autoregressive SaShiMi (Goel et al. 2022) over 8-bit mu-law samples
        "d_model": 64,                # channels of the first tier (times ar_sashimi.expand per tier down)
        "n_layers": 8,                # S4 + feed-forward blocks per tier
        "pool": [4, 4],               # pooling factor of each tier
        "expand": 2,                  # channel multiplier per tier
        "ff": 2,                      # feed-forward width multiplier
        "ssm": "s4",                  # "s4" (DPLR) or "s4d" (diagonal)
        "state_size": 64,             # S4 state size N
        "ssm_trainable": True,        # False freezes Lambda, P, B and dt
        "ssm_learning_rate": 1e-3,    # Adam for the S4 state-space parameters
        "s4_variant": "glu",          # "glu" or "jan2022" (as model.sashimi.s4_variant)
        "s4_length": None,            # as model.sashimi.s4_length
        "tie_state": False,           # as model.sashimi.tie_state
        "step_mode": "dense",         # S4 recurrence when sampling: "dense" (exact) or "diagonal" (eigenbasis)
        "temperature": 1.0,           # sampling: logits divided by this
        "top_p": 1.0,                 # sampling: nucleus (top-p) mass; 1 samples from the whole distribution
    },
    choices={"ssm": ("s4", "s4d"), "s4_variant": ("glu", "jan2022"), "step_mode": ("dense", "diagonal")},
    check=check,
    sampling_flags=(
        SamplingFlag("temperature", float, "sampling temperature (default: the config's)"),
        SamplingFlag("top_p", float, "nucleus sampling mass (default: the config's)"),
        SamplingFlag("prompt", "audio", "an audio file whose beginning every clip continues"),
    ),
    full_float32=True,  # TF32 matmuls cost S4 kernels about 1e-2 relative accuracy on GPUs
)
