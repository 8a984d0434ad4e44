"""RF5/simple-sashimi's autoregressive SaShiMi converted without PyTorch computes the system its parameters define
(the original's recurrent mode, and its convolution with exact FFT nodes), not the original's CPU fallback.

The references are tests/fixtures/simple-sashimi/: a checkpoint saved by the original's train.py (random weights,
moved off their initialisation) and that code's outputs in float64 (see the README there).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import FIXTURES as FIXTURE_ROOT
from tests.helpers import parity_bound, pooling_gains, served_clips, stepped_logits, trainable_count
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.simple_sashimi import read_training_config, simple_sashimi_config, simple_sashimi_weights
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.ar_sashimi.network import START, mu_law_decode, mu_law_encode
from tf_diffwave.models.registry import build_backbone

FIXTURES = os.path.join(FIXTURE_ROOT, "simple-sashimi")
CHECKPOINT = os.path.join(FIXTURES, "sashimi-ar-small.pt")
S4_MODULES = {"sashimi.c_layers.0.layer": "center_0_s4", "sashimi.c_layers.2.layer": "center_1_s4",
              "sashimi.u_layers.0.1.layer": "tier1_0_s4", "sashimi.u_layers.0.3.layer": "tier1_1_s4",
              "sashimi.u_layers.1.1.layer": "tier0_0_s4", "sashimi.u_layers.1.3.layer": "tier0_1_s4"}


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "sashimi-ar-small.npz")))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture's model folder, converted through the command line."""
    out = str(tmp_path_factory.mktemp("simple-sashimi") / "model")
    convert_main(["simple-sashimi", CHECKPOINT, out, "--no-export"])
    return out


@pytest.fixture(scope="module")
def recurrent_logits(converted, reference):
    """The converted model's logits in recurrent mode along the original's generated tokens (teacher forcing)."""
    tokens = reference["gen_tokens"]
    inputs = tf.constant(np.concatenate([np.full((len(tokens), 1), START), tokens[:, :-1]], 1), tf.int32)
    return stepped_logits(load(converted).backbone, inputs)


def cross_entropy(logits, targets):
    """Mean negative log-likelihood in nats, float64 (torch's CrossEntropyLoss over batch and time)."""
    logits = logits.astype(np.float64)
    log_probs = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) - \
        logits.max(-1, keepdims=True)
    return -np.mean(np.take_along_axis(log_probs, targets[..., None], -1))


def test_the_s4_kernels_are_the_exact_systems(converted, reference):
    model = load(converted).backbone.model
    for module, layer in S4_MODULES.items():
        ours = model.get_layer(layer).kernel(32).numpy()[0]
        assert np.max(np.abs(ours - reference[f"s4_kernel_exact_nodes:{module}"])) < 1e-6, layer


def test_convolutional_logits_equal_the_exact_node_reference_and_not_the_stored_nodes(converted, reference):
    logits = load(converted).logits(reference["x"])
    exact = reference["conv_logits_exact_nodes"]
    assert np.max(np.abs(logits - exact)) < parity_bound(exact)
    assert np.max(np.abs(logits - reference["conv_logits_stored_nodes"])) > 1e-4  # 7.3e-4: the stored nodes' error
    assert abs(cross_entropy(logits, reference["y"]) - float(reference["train_loss_exact_nodes"])) < 1e-6
    # the original on a CPU without its CUDA extension sums half of each conjugate pair: another function
    assert abs(cross_entropy(logits, reference["y"]) - float(reference["train_loss_cpu_fallback"])) > 1e-3


def test_recurrent_logits_along_the_generated_tokens_equal_the_originals(recurrent_logits, reference):
    assert np.max(np.abs(recurrent_logits - reference["gen_logits"])) < parity_bound(reference["gen_logits"])


def nucleus_inverse_cdf(logits, uniform, top_p):
    """The original's draw (the fixture's replay of torch.multinomial): the nucleus of the float64 softmax (the
    first class that crosses top_p stays), renormalised, then the first class in 0..255 whose cumulative
    probability exceeds the uniform draw."""
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    crossed = np.cumsum(probs[order]) > top_p
    removed = np.concatenate([[False], crossed[:-1]])
    kept = np.zeros_like(probs)
    kept[order[~removed]] = probs[order[~removed]]
    cdf = np.cumsum(kept / kept.sum())
    return min(int(np.argmax(cdf > uniform)), int(np.flatnonzero(kept)[-1]))


def test_the_recorded_draws_give_the_originals_tokens(recurrent_logits, reference):
    tokens = reference["gen_tokens"]
    logits = recurrent_logits.astype(np.float64)
    drawn = np.array([[nucleus_inverse_cdf(logits[b, t], reference["gen_uniform"][t, b],
                                           float(reference["gen_nucleus_p"])) for t in range(tokens.shape[1])]
                      for b in range(len(tokens))])
    np.testing.assert_array_equal(drawn, tokens)
    assert np.max(np.abs(mu_law_decode(drawn).numpy() - reference["gen_audio"])) < 1e-8


def test_nll_equals_the_originals_in_nats(converted, reference):
    bits = load(converted).nll(reference["nll_wave"])
    assert np.max(np.abs(bits * np.log(2.0) - reference["nll"])) < 1e-6


def test_mu_law_encodes_exactly_and_decodes_within_torchs_exp_rounding(reference):
    np.testing.assert_array_equal(mu_law_encode(reference["mulaw_x"]).numpy(), reference["mulaw_codes"])
    decoded = mu_law_decode(np.arange(256)).numpy()
    # torchaudio's float32 arithmetic; its exp is not correctly rounded for 5 of the 256 classes (one ulp)
    assert np.sum(decoded != reference["mulaw_table"]) <= 5
    assert np.max(np.abs(decoded - reference["mulaw_table"])) < 1e-8


def test_the_config_is_read_from_cfg_yaml_and_the_weights(converted):
    config = load(converted).config
    m = config["model"]["ar_sashimi"]
    assert (m["d_model"], m["n_layers"], m["pool"], m["expand"], m["ff"], m["s4_length"], m["tie_state"]) == \
        (16, 2, [4, 4], 2, 2, 4000, True)
    assert config["model"]["audio_length"] == 768 and config["train"]["learning_rate"] == 0.004


def test_the_published_model_builds_to_its_published_size(converted):
    assert trainable_count(load(converted).backbone.model) + pooling_gains(
        load(converted).config["model"]["ar_sashimi"]) == 112_000
    cfg = {"model_cfg": {"mu_levels": 256, "glu": True, "d_model": 64, "n_layers": 8, "pool": [4, 4], "expand": 2,
                         "ff": 2, "bidirectional": False, "unet": False, "diffwave": False, "l_max": 16000},
           "seq_len": 16000}
    config = simple_sashimi_config(cfg, True, "published")
    validate(config)
    assert trainable_count(build_backbone(config).model) + pooling_gains(config["model"]["ar_sashimi"]) == \
        4_765_312


def test_bad_checkpoints_are_one_line_errors_naming_the_file(tmp_path):
    lmnt = os.path.join(FIXTURE_ROOT, "lmnt-diffwave", "lmnt-small.pt")
    with pytest.raises(UserError, match=r"lmnt-small.pt: an lmnt-com/diffwave checkpoint, not an "
                                        r"RF5/simple-sashimi autoregressive SaShiMi one"):
        convert_main(["simple-sashimi", lmnt, str(tmp_path / "a")])
    checkpoint = read_torch_checkpoint(CHECKPOINT)
    with pytest.raises(UserError, match="x.pt: cfg_yaml is not plain YAML"):
        read_training_config({"cfg_yaml": "model_cfg: !!python/object/apply:os.system ['true']"}, "x.pt")
    config = simple_sashimi_config(read_training_config(checkpoint, "x.pt"), True, "x.pt")
    state = dict(checkpoint["model_state_dict"])
    del state["sashimi.u_layers.1.3.layer.D"]
    with pytest.raises(UserError, match="x.pt: the state dict has no key 'sashimi.u_layers.1.3.layer.D'"):
        simple_sashimi_weights(state, config, "x.pt")


@pytest.mark.slow
def test_the_export_serves_seeds_to_mu_law_audio_in_a_tensorflow_only_process(tmp_path):
    out = str(tmp_path / "model")
    convert_main(["simple-sashimi", CHECKPOINT, out])
    model = load(out)
    served = served_clips(os.path.join(out, "export", str(model.step)), [7], tmp_path)
    generated = model.generate(1, seed=7)
    np.testing.assert_array_equal(mu_law_encode(served).numpy(), mu_law_encode(generated).numpy())
    np.testing.assert_allclose(served, mu_law_decode(mu_law_encode(served)).numpy(), atol=1e-6)  # mu-law levels


@pytest.mark.slow
def test_an_imported_clip_of_16000_samples_depends_on_its_seed_alone(converted):
    model = load(converted)
    sampler = model.backbone.own_sampler(model.config)
    alone = sampler.generate(np.array([2]), 16000).numpy()[0]
    np.testing.assert_array_equal(sampler.generate(np.array([1, 2, 3]), 16000).numpy()[1], alone)


@pytest.mark.slow
def test_it_is_scored_and_fine_tunes_from_the_imported_weights(converted, reference, tmp_path, monkeypatch):
    import json

    from tests.helpers import SC09_DEMO_CONFIG, make_sc09_corpus, seeded_trainer
    from tf_diffwave.cli.evaluate import main as evaluate_main
    from tf_diffwave.config import load_config, with_model_of

    corpus = make_sc09_corpus(str(tmp_path / "sc09"))
    monkeypatch.chdir(tmp_path)
    evaluate_main(["nll", "--model-dir", converted, "--data", corpus, "--split", "train", "--limit", "2", "--out",
                   "nll.json"])
    with open(tmp_path / "nll.json") as f:
        assert 0 < json.load(f)["nll_bits_per_sample"] <= 8.5
    overrides = [f"train.init_from={converted}", f"train.model_dir={tmp_path / 'run'}", f"data.path={corpus}",
                 "data.valid_percent=0", "data.test_percent=0", "train.batch_size=2", "train.max_steps=2",
                 "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]
    trainer = seeded_trainer(with_model_of(load_config(SC09_DEMO_CONFIG, overrides), overrides))
    logits = trainer.ema_backbone.model(tf.constant(reference["x"], tf.int32)).numpy()
    exact = reference["conv_logits_exact_nodes"]
    assert np.max(np.abs(logits - exact)) < parity_bound(exact)
    trainer.train()
    tuned = load(str(tmp_path / "run"))
    assert tuned.step == 2 and tuned.config["model"]["ar_sashimi"]["tie_state"]
    assert np.max(np.abs(tuned.logits(reference["x"]) - reference["conv_logits_exact_nodes"])) > 1e-4
