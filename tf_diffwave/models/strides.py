"""The hop factored into the strides of a mel upsampler (no TensorFlow: config checks use it)."""

import math

from tf_diffwave.errors import UserError

MAX_UPSAMPLE_STRIDE = 32


def upsample_strides(hop_length):
    """Two transposed-convolution strides whose product is the hop, as equal as possible."""
    pairs = [(a, hop_length // a) for a in range(2, int(math.isqrt(hop_length)) + 1)
             if hop_length % a == 0 and hop_length // a <= MAX_UPSAMPLE_STRIDE]
    if not pairs:
        raise UserError(
            f"config key 'audio.hop_length' = {hop_length} cannot be upsampled: it must be a product of two "
            f"strides between 2 and {MAX_UPSAMPLE_STRIDE} (for example 256 = 16 x 16, 300 = 15 x 20)")
    return pairs[-1]
