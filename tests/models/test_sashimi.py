"""The SaShiMi backbone: shapes, parameter counts against the reference implementation, training, export."""

import os

import numpy as np
import pytest
import tensorflow as tf

import tf_diffwave
from tests.helpers import (
    REPO,
    SC09_DEMO_CONFIG,
    SC09_SPEAKERS,
    make_sc09_corpus,
    overfit_losses,
    run_script,
    seeded_trainer,
    tiny_sc09_overrides,
)
from tf_diffwave.cli.train import main as train_main
from tf_diffwave.config import load_config
from tf_diffwave.diffusion.samplers import reverse_process
from tf_diffwave.diffusion.synthesizer import Synthesizer
from tf_diffwave.models.registry import build_backbone
from tf_diffwave.models.s4 import S4Layer, s4_layers

SASHIMI = os.path.join(REPO, "configs", "sc09_sashimi.json")
SASHIMI_SMALL = os.path.join(REPO, "configs", "sc09_sashimi_small.json")
TINY = ["model.backbone=sashimi", "model.d_model=8", "model.n_layers=1", "model.state_size=8",
        "model.audio_length=2048", "model.embed_dim=16"]


def test_tiers_and_output_shape_for_one_second_clips():
    backbone = build_backbone(load_config(SASHIMI, ["model.d_model=8", "model.n_layers=1", "model.state_size=8"]))
    tiers = {(layer.d_model, layer.max_length) for layer in backbone.denoiser.layers
             if isinstance(layer, S4Layer)}
    assert tiers == {(8, 16000), (16, 4000), (32, 1000)}
    out = backbone.model([tf.random.normal([2, 16000]), tf.constant([1.0, 150.0])])
    assert out.shape == (2, 16000) and np.all(out.numpy() == 0)  # zero-initialised output layer


@pytest.mark.parametrize("config,reference,d_model", [
    pytest.param(SASHIMI, 23_470_971, 128, marks=pytest.mark.slow),
    pytest.param(SASHIMI_SMALL, 7_734_267, 64, marks=pytest.mark.slow)])
def test_parameter_counts_match_the_reference_implementation_and_the_paper(config, reference, d_model):
    """albertfgu/diffwave-sashimi (master) counts 23,470,971 (d_model 128) and 7,734,267 (64), everything
    trainable. Its convolutions and pooling linears are weight-normalised: one gain per output channel, 200 x
    d_model in all (3 H per block's feed-forward over 30 blocks whose widths sum to 60 d_model, plus 20 d_model in
    the input, output and pooling layers). The paper's released checkpoint trains 22,964,091 (its 23.0M): Lambda,
    P, B and dt frozen (193 H per S4 layer of width H), and the January 2022 S4 (a Q per direction, 128 H, and a
    linear 2H -> H instead of H -> 2H with a GLU, H fewer): 66 H fewer per layer than master."""
    def trainable(backbone):
        return sum(int(np.prod(v.shape)) for v in backbone.model.trainable_variables)

    paper = build_backbone(load_config(config))  # the configs are the paper's form
    assert trainable(paper) == reference - 66 * 60 * d_model
    if d_model == 128:
        assert trainable(paper) == 22_964_091
    master = ["model.s4_variant=glu", "model.weight_norm=false"]
    assert build_backbone(load_config(config, master + ["model.ssm_trainable=true"])).model.count_params() == \
        reference - 200 * d_model
    frozen = build_backbone(load_config(config, master))
    assert trainable(frozen) == reference - 200 * d_model - 193 * 60 * d_model


def test_the_jan2022_variant_needs_a_dplr_ssm():
    from tf_diffwave.errors import UserError

    with pytest.raises(UserError, match="'model.sashimi.s4_variant' = 'jan2022' needs 'model.sashimi.ssm' = 's4'"):
        load_config(SASHIMI, ["model.ssm=s4d"])


def test_weight_norm_dense_starts_as_the_plain_layer_and_trains_its_gain():
    from tf_diffwave.models.sashimi.network import WeightNormDense

    layer = WeightNormDense(3)
    x = tf.random.normal([5, 4], seed=2)
    y = layer(x).numpy()
    v, b = layer._kernel.numpy().astype(np.float64), layer.bias.numpy()
    np.testing.assert_allclose(y, x.numpy() @ v + b, rtol=1e-5, atol=1e-6)
    layer.gain.assign(2.0 * layer.gain)  # the gain scales each unit's weights
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ (2 * v) + b, rtol=1e-5, atol=1e-6)
    assert {w.name for w in layer.trainable_weights} == {"kernel", "bias", "gain"}


@pytest.mark.slow
def test_sampling_computes_each_s4_kernel_once_per_call_and_gives_the_same_audio(monkeypatch):
    backbone = build_backbone(load_config(SC09_DEMO_CONFIG, TINY))
    for variable in backbone.model.weights:  # make the zero-initialised output layer give a non-zero noise estimate
        if not np.any(variable.numpy()):
            variable.assign(tf.random.normal(variable.shape, stddev=0.1, seed=1))
    computed = tf.Variable(0)
    plain_kernel = S4Layer.kernel

    def counted_kernel(self, length=None):
        with tf.control_dependencies([computed.assign_add(1)]):  # runs each time the kernel is computed
            return tf.identity(plain_kernel(self, length))

    monkeypatch.setattr(S4Layer, "kernel", counted_kernel)
    betas, steps, seeds = tf.constant([1e-4, 1e-2, 0.1]), tf.constant([0.0, 20.0, 100.0]), tf.constant([3], tf.int64)
    synthesizer = Synthesizer(backbone)
    audio = synthesizer.generate(seeds, 2048, betas, steps).numpy()
    assert computed.numpy() == len(list(s4_layers(backbone.model)))  # not once per layer and step
    every_step = tf.function(lambda: reverse_process(lambda x, t: backbone.denoiser([x, t]), betas, steps, seeds,
                                                      2048))().numpy()
    assert computed.numpy() == 4 * len(list(s4_layers(backbone.model)))
    np.testing.assert_allclose(audio, every_step, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_tiny_sashimi_diffwave_overfits_one_clip(tmp_path):
    corpus = make_sc09_corpus(str(tmp_path / "c"), digits=("seven",), speakers=SC09_SPEAKERS[:1])
    cfg = load_config(SC09_DEMO_CONFIG, tiny_sc09_overrides(corpus, str(tmp_path / "run")) + TINY + [
        "train.learning_rate=0.003", "diffusion.loss=l2", "model.d_model=16", "train.batch_size=4",
        "model.audio_length=8192",  # the word of this clip lies between samples 2401 and 8685
        "diffusion.num_steps=50", "diffusion.beta_end=0.05",
        "diffusion.fast_schedule=[1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]"])
    first, last = overfit_losses(cfg, steps=100)
    assert first > 0.8
    assert last < 0.5 * first


CLEAN_GENERATE = """
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
audio = fn(seed=tf.constant([3, 4], tf.int64))["audio"].numpy()
assert audio.shape == (2, 2048) and np.all(np.isfinite(audio)), audio.shape
assert not any(m.startswith("tf_diffwave") for m in sys.modules)
np.save(sys.argv[2], audio)
"""


@pytest.mark.slow
@pytest.mark.parametrize("form", [[], ["model.s4_variant=jan2022", "model.weight_norm=true"]])
def test_sashimi_run_trains_generates_and_exports_for_a_clean_process(tmp_path, form):
    corpus = make_sc09_corpus(str(tmp_path / "c"))
    run = str(tmp_path / "run")
    train_main(["--config", SC09_DEMO_CONFIG, *tiny_sc09_overrides(corpus, run), *TINY, *form, "train.max_steps=2",
                "train.export=true"])
    export = os.path.join(run, "export", "2")
    run_script(CLEAN_GENERATE, export, tmp_path / "a.npy")
    api = tf_diffwave.load(run).generate(2, seed=3)
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), api, atol=1e-5)


@pytest.mark.slow
def test_ssm_parameters_train_in_their_own_optimizer_group(tmp_path):
    """With the main learning rate at 0 only the S4 state-space parameters move; frozen, nothing of theirs is
    trained."""
    from tf_diffwave.models.s4 import s4_layers

    corpus = make_sc09_corpus(str(tmp_path / "c"))
    overrides = tiny_sc09_overrides(corpus, str(tmp_path / "run")) + TINY + ["train.learning_rate=0"]
    trainer = seeded_trainer(load_config(SC09_DEMO_CONFIG, overrides))
    model = trainer.backbone.model
    ssm = {id(v) for layer in s4_layers(model) for v in layer.ssm_variables}
    output = model.get_layer("output")  # zero-initialised, it would stop every gradient below it
    output.kernel.assign(np.random.default_rng(0).normal(0, 0.5, output.kernel.shape))
    before = {id(v): v.numpy().copy() for v in model.trainable_variables}
    tf.function(trainer.train_step)(iter(trainer.dataset(0)))
    moved = {id(v) for v in model.trainable_variables if not np.array_equal(v.numpy(), before[id(v)])}
    assert moved == ssm and len(ssm) == 5 * 5  # 5 S4 layers with dt, Lambda (2), B, P

    frozen = seeded_trainer(load_config(SC09_DEMO_CONFIG, overrides + ["model.ssm_trainable=false",
                                                                f"train.model_dir={tmp_path / 'run2'}"]))
    assert frozen.own_optimizer is None
    assert not any(layer.ssm_variables for layer in s4_layers(frozen.backbone.model))


@pytest.mark.slow
def test_sashimi_vocoder_trains_vocodes_long_mels_in_windows_and_exports(tmp_path, tiny_corpus):
    """The mel conditions every tier; mels longer than the network's window (8 frames here) are vocoded in
    overlapping windows; the export runs in a TensorFlow-only process."""
    from tests.helpers import CLEAN_LOAD, DEMO_CONFIG, random_log_mel, tiny_overrides

    run = str(tmp_path / "run")
    train_main(["--config", DEMO_CONFIG, *tiny_overrides(tiny_corpus, run), "model.backbone=sashimi",
                "model.d_model=8", "model.n_layers=1", "model.state_size=8", "model.audio_length=2048",
                "model.embed_dim=16", "train.max_steps=2", "train.export=true"])
    model = tf_diffwave.load(run)
    assert {layer.name for layer in model.backbone.denoiser.layers} >= {"cond_pool1", "cond_pool2", "center_0_cond"}
    output = model.backbone.denoiser.get_layer("output")
    output.kernel.assign(np.random.default_rng(0).normal(0, 0.5, output.kernel.shape))
    mel = random_log_mel(1, (20, 80))
    short, long = model.vocode(mel[:6]), model.vocode(mel)
    assert short.shape == (6 * 256,) and long.shape == (20 * 256,)
    assert np.all(np.isfinite(long)) and np.std(long) > 1e-3
    assert "OK" in run_script(CLEAN_LOAD, os.path.join(run, "export", "2"))
