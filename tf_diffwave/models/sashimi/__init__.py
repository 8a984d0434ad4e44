"""DiffWave with a SaShiMi backbone (Goel et al. 2022, section 5.3): a vocoder or an unconditional generator built
of S4 layers. The network is in network.py."""

import math

from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import Family
from tf_diffwave.models.s4_config import check_s4_clip
from tf_diffwave.models.strides import upsample_strides


def check(config):
    """The pooling divides the clip (and a vocoder's hop), a vocoder's S4 kernels cover the training crop, and the
    jan2022 variant has DPLR S4."""
    model, sashimi, audio = config["model"], config["model"]["sashimi"], config["audio"]
    check_s4_clip(config, "sashimi")
    total = math.prod(sashimi["pool"])
    if not model["unconditional"]:
        upsample_strides(audio["hop_length"])
        if audio["hop_length"] % total:
            raise UserError(f"config key 'audio.hop_length' = {audio['hop_length']} must be a multiple of the "
                            f"product of 'model.sashimi.pool' ({total}) for a SaShiMi vocoder")
        crop = config["data"]["crop_frames"] * audio["hop_length"]
        if crop > model["audio_length"]:
            raise UserError(f"config key 'model.audio_length' = {model['audio_length']} must be at least the "
                            f"training crop of {crop} samples ('data.crop_frames' x 'audio.hop_length'): a "
                            f"SaShiMi network's S4 kernels have that length")
    if sashimi["s4_variant"] == "jan2022" and sashimi["ssm"] != "s4":
        raise UserError("config key 'model.sashimi.s4_variant' = 'jan2022' needs 'model.sashimi.ssm' = 's4' (its "
                        "Q is the low-rank term of a DPLR state matrix)")
    if sashimi["s4_nodes"] == "stored" and sashimi["ssm"] != "s4":
        raise UserError("config key 'model.sashimi.s4_nodes' = 'stored' needs 'model.sashimi.ssm' = 's4' (S4D "
                        "computes its kernel without them)")
    if sashimi["skips"] == "layer" and not sashimi["unet"]:
        raise UserError("config key 'model.sashimi.skips' = 'layer' needs 'model.sashimi.unet' = true (the skips "
                        "come from the layers on the way down)")


FAMILY = Family(
    name="sashimi",
    title="DiffWave (SaShiMi)",
    network="tf_diffwave.models.sashimi.network:SashimiBackbone",
    section={
        "d_model": 64,                # channels of the first tier (times sashimi.expand per tier down)
        "n_layers": 8,                # residual blocks (S4 + feed-forward) per tier
        "pool": [4, 4],               # pooling factor of each tier
        "expand": 2,                  # channel multiplier per tier
        "ff": 2,                      # feed-forward width multiplier
        "unet": True,                 # blocks on the way down too, with a skip around every layer
        "bidirectional": True,        # S4 kernels in both directions (diffusion sees the whole clip)
        "ssm": "s4",                  # "s4" (DPLR, Cauchy kernel) or "s4d" (diagonal, Vandermonde)
        "state_size": 64,             # S4 state size N
        "ssm_trainable": True,        # False freezes Lambda, P, B and dt (the paper's checkpoints)
        "ssm_learning_rate": 1e-3,    # Adam for the S4 state-space parameters (Lambda, P, B, dt)
        "s4_variant": "glu",          # "glu" (directions summed, linear to 2H, GLU) or "jan2022" (the paper's
                                      # S4: a Q per direction, directions kept apart, linear 2H -> H)
        "weight_norm": False,         # weight normalisation on the feed-forward, pooling, in/out layers
        "embed_dim": 512,             # width of the diffusion-step MLP
        "embed_out_dim": None,        # width of its second layer (null: embed_dim)
        "step_embedding": "float64",  # as model.wavenet.step_embedding
        "step_frequencies": "diffwave",  # as model.wavenet.step_frequencies
        "norm": "scalar",             # "scalar" (one learned scale and shift per norm, DiffWave+SaShiMi's) or
                                      # "channel" (a LayerNorm with a scale and shift per channel, RF5's)
        "skips": "block",             # U-Net skips around every block ("block") or around every S4 and
                                      # feed-forward layer apart ("layer", RF5's SaShiMi-DiffWave)
        "s4_length": None,            # null: each tier's S4 kernels as long as the tier; a number: every S4
                                      # kernel computed at that length and cut to its tier (S4 v1's l_max)
        "s4_nodes": "exact",          # the kernel's FFT nodes: "exact" roots of unity or "stored" in the weights
                                      # (S4 v1 checkpoints hold the complex64 nodes their kernels learned on)
        "tie_state": False,           # one Lambda, B and P per S4 layer, shared by its channels (S4 v1's
                                      # tie_state), instead of one per channel
    },
    choices={"ssm": ("s4", "s4d"), "s4_variant": ("glu", "jan2022"), "step_embedding": ("float64", "float32"),
             "step_frequencies": ("diffwave", "transformer"), "norm": ("scalar", "channel"),
             "skips": ("block", "layer"), "s4_nodes": ("exact", "stored")},
    check=check,
    full_float32=True,  # TF32 matmuls cost S4 kernels about 1e-2 relative accuracy on GPUs
    legacy_keys={("train", "ssm_learning_rate"): "ssm_learning_rate"},
)
