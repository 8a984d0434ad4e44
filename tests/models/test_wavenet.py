"""The WaveNet backbone: parameter count, step embedding, shapes, and chunked synthesis equal to whole."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import BASE_CONFIG, DEMO_CONFIG
from tf_diffwave.config import load_config
from tf_diffwave.models.layers import StepEmbedding
from tf_diffwave.models.registry import build_backbone


def test_base_parameter_count():
    count = build_backbone(load_config(BASE_CONFIG)).model.count_params()
    assert abs(count - 2.64e6) / 2.64e6 < 0.01
    assert count == 2_619_971  # lmnt-com/diffwave's BASE model, counted layer by layer


def test_step_embedding_interpolates_sinusoids():
    def table(s):
        i = np.arange(64)
        angles = s * 10.0 ** (i * 4.0 / 63.0)
        return np.concatenate([np.sin(angles), np.cos(angles)])

    steps = np.array([0.0, 3.0, 4.0867, 42.9186])
    ours = StepEmbedding(128)(tf.constant(steps, tf.float32)).numpy()
    for row, s in zip(ours, steps):
        lo = np.floor(s)
        ref = table(lo) * (1 - (s - lo)) + table(lo + 1) * (s - lo)
        np.testing.assert_allclose(row, ref, atol=1e-5)


def test_float32_step_embedding_rounds_as_lmnt():
    """lmnt-com/diffwave's table in numpy float32, as its fixtures' README spells it out: exponent 4j/63 in
    float32, 10**exponent rounded once, one float32 multiplication by the step, then interpolation in float32."""
    j = np.arange(64, dtype=np.float32)
    freqs = (10.0 ** (j * np.float32(4.0) / np.float32(63.0)).astype(np.float64)).astype(np.float32)

    def table(s):
        angles = np.float32(s) * freqs
        return np.concatenate([np.sin(angles.astype(np.float64)), np.cos(angles.astype(np.float64))]).astype(
            np.float32)

    steps = np.array([0.0, 3.7, 5.0, 42.918644, 48.5], np.float32)
    ours = StepEmbedding(128, "float32")(tf.constant(steps)).numpy()
    for row, s in zip(ours, steps):
        low, high = table(np.floor(s)), table(np.ceil(s))
        np.testing.assert_allclose(row, low + (high - low) * (s - np.floor(s)), atol=2e-6)
    exact = StepEmbedding(128)(tf.constant(steps)).numpy()
    assert np.max(np.abs(exact[-1] - ours[-1])) > 1e-2  # float32 moves the phase at high steps


@pytest.mark.parametrize("hop", [256, 300])
def test_output_length_follows_hop(hop):
    cfg = load_config(DEMO_CONFIG, [f"audio.hop_length={hop}", "model.residual_layers=2"])
    backbone = build_backbone(cfg)
    mel = np.zeros((2, 7, 80), np.float32)
    assert backbone.conditioner(mel).shape == (2 * 2, 2, 1, 7 * hop, 32)  # (gate, filter) x layers, B, 1, L, C
    eps = backbone.model([np.zeros((2, 7 * hop), np.float32), np.array([1.0, 2.5], np.float32), mel])
    assert eps.shape == (2, 7 * hop)


def numpy_denoiser(backbone, audio, step, cond):
    """DiffWave's WaveNet (Kong et al. 2021, figure 2) in float64 numpy, from the Keras model's weights.

    `cond` holds the conditioner projection of each layer, (layers, B, L, 2C) with the gate half first.
    """
    w = {layer.name: [v.numpy().astype(np.float64) for v in layer.weights] for layer in backbone.denoiser.layers}
    c = backbone.channels
    half = np.arange(64)
    angles = step[:, None] * 10.0 ** (half * 4.0 / 63.0)
    emb = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    for name in ("step_mlp_1", "step_mlp_2"):
        z = emb @ w[name][0] + w[name][1]
        emb = z / (1.0 + np.exp(-z))
    x = np.maximum(audio[..., None] * w["input_projection"][0][0] + w["input_projection"][1], 0.0)
    skips = 0.0
    for i, d in enumerate(backbone.dilations):
        y = x + (emb @ w[f"step_projection_{i}"][0] + w[f"step_projection_{i}"][1])[:, None, :]
        kernel, bias = w[f"dilated_conv_{i}"]
        padded = np.pad(y, ((0, 0), (d, d), (0, 0)))
        length = y.shape[1]
        y = sum(padded[:, k * d: k * d + length] @ kernel[k] for k in range(3)) + bias + cond[i]
        y = 1.0 / (1.0 + np.exp(-y[..., :c])) * np.tanh(y[..., c:])
        y = y @ w[f"output_projection_{i}"][0][0] + w[f"output_projection_{i}"][1]
        x = (x + y[..., :c]) / np.sqrt(2.0)
        skips = skips + y[..., c:]
    x = np.maximum(skips / np.sqrt(len(backbone.dilations)) @ w["skip_projection"][0][0] + w["skip_projection"][1], 0)
    return (x @ w["output"][0][0] + w["output"][1])[..., 0]


def test_denoiser_matches_float64_wavenet():
    cfg = load_config(DEMO_CONFIG, ["model.residual_layers=3", "model.dilation_cycle=2", "model.residual_channels=4",
                                    "model.embed_dim=8"])
    backbone = build_backbone(cfg)
    rng = np.random.default_rng(4)
    for v in backbone.model.weights:  # the zero-initialised output layer would hide everything
        v.assign(rng.normal(0, 0.5, v.shape).astype(np.float32))
    audio, step = rng.uniform(-1, 1, (2, 50)), np.array([3.0, 17.0])
    cond = rng.normal(0, 1, (3, 2, 50, 8))
    as_rows = cond.reshape(3, 2, 50, 2, 4).transpose(0, 3, 1, 2, 4).reshape(6, 2, 1, 50, 4)  # (gate, filter) rows
    ours = backbone.denoiser([audio.astype(np.float32), step.astype(np.float32), as_rows.astype(np.float32)])
    np.testing.assert_allclose(ours.numpy(), numpy_denoiser(backbone, audio, step, cond), rtol=1e-4, atol=1e-4)


def test_conditioner_rows_are_each_layers_projection():
    """Row 2i of the conditioner is layer i's gate projection, row 2i + 1 its filter projection."""
    cfg = load_config(DEMO_CONFIG, ["model.residual_layers=3", "model.residual_channels=4"])
    backbone = build_backbone(cfg)
    rng = np.random.default_rng(5)
    for v in backbone.conditioner.weights:
        v.assign(rng.normal(0, 0.5, v.shape).astype(np.float32))
    mel = rng.normal(-4, 2, (2, 3, 80)).astype(np.float32)
    rows = backbone.conditioner(mel).numpy()[:, :, 0]  # (2 * layers, B, 1, L, C)
    upsampled = tf.keras.Model(backbone.conditioner.input,
                               backbone.conditioner.get_layer("conditioner_projection").input)(mel).numpy()
    projection = backbone.conditioner.get_layer("conditioner_projection")
    kernel, bias = [v.numpy().astype(np.float64) for v in projection.weights]
    full = upsampled.astype(np.float64) @ kernel + bias  # (B, L, layers * 2C): layer i owns columns 8i .. 8i + 7
    for i in range(3):
        np.testing.assert_allclose(rows[2 * i], full[..., 8 * i: 8 * i + 4], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(rows[2 * i + 1], full[..., 8 * i + 4: 8 * i + 8], rtol=1e-4, atol=1e-4)


def test_output_layer_starts_at_zero():
    backbone = build_backbone(load_config(DEMO_CONFIG, ["model.residual_layers=2"]))
    eps = backbone.model([np.ones((1, 512), np.float32), np.array([3.0], np.float32), np.ones((1, 2, 80), np.float32)])
    assert np.all(eps.numpy() == 0)


def reach(eps_of, inputs, frame, hop, axis_frames):
    """The last frame after `frame` whose change moves the noise estimate of `frame`'s samples, found by changing
    each following frame of `inputs` in turn."""
    base = eps_of(inputs)[frame * hop: (frame + 1) * hop]
    moved = []
    for k in range(8):
        changed = inputs.copy()
        changed[0, axis_frames(frame + k)] += 1.0
        moved.append(np.abs(eps_of(changed)[frame * hop: (frame + 1) * hop] - base).max() > 0)
    return max(k for k, m in enumerate(moved) if m)


@pytest.mark.parametrize("hop,layers", [(256, 4), *(pytest.param(*case, marks=pytest.mark.slow)
                                                   for case in ((256, 10), (300, 3), (200, 5)))])
def test_the_lookahead_is_how_far_ahead_the_network_reads(hop, layers):
    """`lookahead_frames` (mel, audio) against the reach found by changing the mel and the noisy audio frame by
    frame, with random weights (the output layer's zero start would hide every input)."""
    config = load_config(DEMO_CONFIG, [f"audio.hop_length={hop}", f"model.wavenet.residual_layers={layers}",
                                       f"model.wavenet.dilation_cycle={layers}", "model.wavenet.residual_channels=4",
                                       "model.wavenet.embed_dim=8", "diffusion.prior=standard"])
    backbone = build_backbone(config)
    rng = np.random.default_rng(0)
    backbone.model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in backbone.model.get_weights()])
    conditioner, denoiser = backbone.chunk_networks()
    mel = rng.normal(-5, 2, (1, 24, 80)).astype(np.float32)
    audio = rng.normal(0, 1, (1, 24 * hop)).astype(np.float32)
    t = tf.constant([3.0])

    def eps(x, m):
        return denoiser([tf.constant(x), t, conditioner(tf.constant(m))]).numpy()[0]

    found = (reach(lambda m: eps(audio, m), mel, 8, hop, lambda f: f),
             reach(lambda x: eps(x, mel), audio, 8, hop, lambda f: slice(f * hop, (f + 1) * hop)))
    assert backbone.lookahead_frames == found
