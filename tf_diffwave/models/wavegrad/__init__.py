"""WaveGrad (Chen et al. 2021) as ivanvovk/WaveGrad lays it out: a vocoder conditioned on the continuous noise
level, with the inference schedules ivanvovk ships. The network is in network.py."""

import math

import numpy as np

from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import Family


def _fibonacci(first, second, count):
    betas = [first, second]
    while len(betas) < count:
        betas.append(betas[-1] + betas[-2])
    return betas[:count]


_SIX = [1e-6, 1.892873e-5, 1.1943212e-4, 1.0047548e-3, 1.10942535e-2, 0.06]  # ivanvovk's 6iters.pt (float32)
_TWENTY_FIVE = _fibonacci(1e-6, 9e-6, 25)  # ivanvovk's 25-iteration construction (its benchmark.fibonacci)
SCHEDULES = {
    "6": _SIX,
    # the 6-iteration curve at twice the density (log-linear between its betas; its last beta twice)
    "12": [float(b) for b in 10 ** np.interp(np.arange(12) / 2, np.arange(6), np.log10(_SIX), right=None)],
    "25": _TWENTY_FIVE,
    "50": [b for b in _TWENTY_FIVE for _ in range(2)],  # ivanvovk: the 25-iteration betas, each repeated
    "100": [b for b in _TWENTY_FIVE for _ in range(4)],
    "1000": np.linspace(1e-6, 0.01, 1000).tolist(),  # the training schedule of the paper and of ivanvovk
}


def hop_factors(hop, blocks):
    """The hop as a product of `blocks` whole factors, as even as the hop's prime factors allow, largest first
    (300 in 5: 5, 5, 3, 2, 2; 256: 4, 4, 4, 2, 2; factors of 1 where the hop has fewer primes than blocks)."""
    primes, rest, p = [], hop, 2
    while rest > 1:
        while rest % p == 0:
            primes.append(p)
            rest //= p
        p += 1
    factors = [1] * blocks
    for prime in sorted(primes, reverse=True):
        factors[factors.index(min(factors))] *= prime
    return sorted(factors, reverse=True)


def upsampling_factors(model_config, hop):
    """The UBlocks' factors: `factors` if the config gives them, else the hop factored into one per block."""
    given = model_config["factors"]
    return [int(f) for f in given] if given else hop_factors(hop, len(model_config["upsampling_out_channels"]))


def check(config):
    """The factors multiply to the hop, and every per-block list has one entry per block."""
    w, hop = config["model"]["wavegrad"], config["audio"]["hop_length"]
    factors = upsampling_factors(w, hop)
    blocks = len(factors)
    if math.prod(factors) != hop or any(f < 1 or f != int(f) for f in w["factors"]):
        raise UserError(f"config key 'model.wavegrad.factors' = {w['factors']} must be whole numbers whose "
                        f"product is 'audio.hop_length' ({hop}), or [] for the hop's own factors")
    for key, count, inner in (("upsampling_out_channels", blocks, None), ("upsampling_dilations", blocks, 4),
                              ("downsampling_out_channels", blocks - 1, None),
                              ("downsampling_dilations", blocks - 1, 3)):
        value = w[key]
        if len(value) != count or (inner and any(len(v) != inner for v in value)):
            shape = f"{count} lists of {inner} dilations" if inner else f"{count} channel counts"
            raise UserError(f"config key 'model.wavegrad.{key}' must hold {shape} (one per block of "
                            f"'model.wavegrad.factors'), got {value}")


FAMILY = Family(
    name="wavegrad",
    title="WaveGrad",
    network="tf_diffwave.models.wavegrad.network:WaveGradBackbone",
    conditioning="mel",
    noise_input="level",
    schedules=SCHEDULES,
    section={                         # WaveGrad base (ivanvovk/WaveGrad's configs/default.json)
        "factors": [],                # upsampling factor of each UBlock, their product audio.hop_length; []: the
                                      # hop factored, largest first (hop 300: 5, 5, 3, 2, 2, as ivanvovk's)
        "upsampling_preconv_out_channels": 768,
        "upsampling_out_channels": [512, 512, 256, 128, 128],
        "upsampling_dilations": [[1, 2, 1, 2], [1, 2, 1, 2], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8]],
        "downsampling_preconv_out_channels": 32,
        "downsampling_out_channels": [128, 128, 256, 512],
        "downsampling_dilations": [[1, 2, 4], [1, 2, 4], [1, 2, 4], [1, 2, 4]],
        "noise_level_scale": 5000.0,  # the noise level is multiplied by this before its sinusoidal encoding
    },
    check=check,
)
