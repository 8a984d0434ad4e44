"""The benchmark's operation counts against the WaveNet's multiply-adds counted by hand, and its rate cells."""

from tests.helpers import DEMO_CONFIG
from tf_diffwave.bench.arithmetic import rate_cell, vocoding_flops
from tf_diffwave.config import load_config
from tf_diffwave.models.registry import build_backbone


def test_each_denoising_step_costs_the_wavenets_multiply_adds():
    """Per sample and step, each residual layer's dilated convolution (3 taps, C -> 2C) and output projection
    (C -> 2C), the input (1 -> C), skip (C -> C) and output (C -> 1) projections: two operations per multiply-add,
    plus the elementwise work (biases, gate, sums), about 1% at 64 channels."""
    channels, layers = 64, 3
    config = load_config(DEMO_CONFIG, [f"model.wavenet.residual_channels={channels}",
                                       f"model.wavenet.residual_layers={layers}", "model.wavenet.dilation_cycle=3"])
    backbone = build_backbone(config)
    frames = 4
    samples = frames * backbone.hop_length
    per_step = (vocoding_flops(backbone, frames, 3) - vocoding_flops(backbone, frames, 1)) / 2 / samples
    macs = layers * (3 * channels * 2 * channels + channels * 2 * channels) + channels + channels ** 2 + channels
    assert 2 * macs <= per_step < 1.02 * 2 * macs


def test_a_rate_cell_gives_the_rate_and_its_share_of_the_peak():
    assert rate_cell(4e9, 2.0, 8.0) == "2 (25%)"
