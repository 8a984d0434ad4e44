"""FreGrad checkpoints converted without PyTorch compute what FreGrad's own code computed, and the FreGrad family's
parts (Haar bands, per-band prior, zero-terminal-SNR schedule, STFT loss) match FreGrad's arithmetic.

The references are tests/fixtures/fregrad/: a checkpoint saved by FreGrad's code (random weights), its params.py,
its training statistics, and that code's outputs (see the README there). Band arrays there are (.., 2, n / 2); the
family's signal interleaves them, sample pairs [low, high].
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import FIXTURES as FIXTURE_ROOT
from tests.helpers import relative_error
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.filters import biquad, filtered
from tf_diffwave.diffusion.objectives import for_backbone, stft_loss
from tf_diffwave.diffusion.prior import Prior, frame_energy
from tf_diffwave.diffusion.samplers import reverse_process_from_noise
from tf_diffwave.diffusion.schedules import zero_terminal_snr
from tf_diffwave.errors import UserError
from tf_diffwave.interop.fregrad import computed_schedule, fregrad_config, fregrad_weights, params_file_entries
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.layers import haar_inverse

FIXTURES = os.path.join(FIXTURE_ROOT, "fregrad")
CHECKPOINT = os.path.join(FIXTURES, "fregrad-small.pt")
PARAMS = os.path.join(FIXTURES, "fregrad-small-params_saved.py")
STATS = os.path.join(FIXTURES, "fregrad-small-stats")
RESOLUTIONS = [[512, 50, 300], [1024, 120, 600], [256, 30, 128]]


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "fregrad-small.npz")))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The fixture's model, converted through the command line (with its params.py given, as users hold it)."""
    out = str(tmp_path_factory.mktemp("fregrad") / "model")
    convert_main(["fregrad", CHECKPOINT, PARAMS, STATS, out, "--no-export"])
    return load(out)


def interleaved(bands):
    """FreGrad's bands (..., 2, n) as the family's signal (..., 2 n)."""
    return np.stack([bands[..., 0, :], bands[..., 1, :]], axis=-1).reshape(*bands.shape[:-2], -1)


def test_the_converted_model_has_fregrads_size_features_prior_and_schedule(model, reference):
    c = model.config
    assert model.backbone.model.count_params() == 376_732
    assert c["audio"]["features"] == "priorgrad" and c["model"]["fregrad"]["output_filter"] is True
    d = c["diffusion"]
    assert (d["prior"], d["std_min"], d["max_energy_override"], d["loss"], d["stft_loss_weight"]) == \
        ("fregrad", 0.1, 4.0, "l2", 0.1)
    assert (d["energy_min"], d["energy_max"]) == (float(reference["energy_min"]), float(reference["energy_max_train"]))
    np.testing.assert_array_equal(model.sampler.schedule.betas, reference["noise_schedule"])  # the stored list
    for name, steps in (("fast6", "fast"), ("full", "full")):
        betas, inputs = model.sampler.betas_and_steps(steps)
        np.testing.assert_allclose(betas, reference[f"{name}_betas"], rtol=1e-12)
        np.testing.assert_allclose(inputs, reference[f"{name}_steps"], atol=1e-6)


def test_the_zero_terminal_snr_schedule_is_fregrads_within_its_float32_rounding(reference):
    ours = zero_terminal_snr(reference["schedule_linspace"])
    np.testing.assert_allclose(ours, reference["noise_schedule"], atol=1e-6)
    assert 0 < np.sqrt(np.prod(1 - ours)) < 3e-4  # almost, not exactly, zero terminal SNR


def test_features_and_haar_bands(model, reference):
    mel = model.features(reference["audio"])
    np.testing.assert_allclose(mel, reference["mel"], atol=1e-4)
    signal = model.backbone.audio_to_signal(reference["audio"][None]).numpy()[0]
    np.testing.assert_allclose(signal[0::2], reference["dwt_low"], atol=1e-6)
    np.testing.assert_allclose(signal[1::2], reference["dwt_high"], atol=1e-6)
    low, high = (tf.constant(band[None, :, None]) for band in (reference["dwt_low"], reference["dwt_high"]))
    np.testing.assert_allclose(haar_inverse(low, high).numpy()[0, :, 0], reference["audio"], atol=1e-6)


def test_band_energies_and_the_prior_std(model, reference):
    prior, mel = Prior.from_config(model.config), tf.constant(reference["mel"][None])
    log_mel = LogMel.from_config(model.config["audio"])
    np.testing.assert_allclose(frame_energy(log_mel, mel[..., :40]).numpy()[0], reference["energy_low"], atol=1e-6)
    np.testing.assert_allclose(frame_energy(log_mel, mel[..., 40:]).numpy()[0], reference["energy_high"], atol=1e-6)
    low, high = prior.band_frame_std(mel, filters=False)
    np.testing.assert_allclose(low.numpy()[0], reference["std_low_unfiltered"], atol=1e-6)
    np.testing.assert_allclose(high.numpy()[0], reference["std_high_unfiltered"], atol=1e-6)
    # the biquads, torchaudio's float32 order kept, give FreGrad's filtered std from FreGrad's unfiltered one exactly
    rate = 11025
    for band in ("low", "high"):
        std = filtered(filtered(reference[f"std_{band}_unfiltered"][None], *biquad("highpass", rate, 15.0)),
                       *biquad("lowpass", rate, 5500.0))
        np.testing.assert_array_equal(np.maximum(std.numpy()[0], 0.1), reference[f"std_{band}_frames"])
    # from the mel: TensorFlow's float32 exp and sums round the energies' last bit differently from PyTorch's, and
    # the lowpass, its poles near Nyquist, amplifies that up to 5e-5
    np.testing.assert_allclose(prior.std(mel).numpy()[0], interleaved(reference["std"][None])[0], atol=1e-4)


def test_the_network_output_equals_fregrads(model, reference):
    x = interleaved(reference["x"].astype(np.float32))
    for t, eps in ((reference["t_float"], reference["eps_float"]), (reference["t_int"], reference["eps_int"])):
        ours = model.denoise(x, t.astype(np.float32), reference["mel"][None])
        assert relative_error(ours, interleaved(eps)) < 1e-5


def test_every_training_loss_term_equals_fregrads(model, reference):
    std = interleaved(reference["train_std"])
    noise, predicted = interleaved(reference["train_noise"].astype(np.float32)) * std, \
        interleaved(reference["train_predicted"])
    for k, band in enumerate(("l", "h")):
        e, p, s = noise[:, k::2], predicted[:, k::2], std[:, k::2]
        assert np.mean(((p - e) / s) ** 2) == pytest.approx(float(reference[f"loss_{band}"]), rel=1e-5)
        for r, resolution in enumerate(RESOLUTIONS):
            sc, mag = stft_loss(tf.constant(e), tf.constant(p), [resolution])
            assert float(sc) == pytest.approx(float(reference["loss_per_resolution"][k, r, 0]), rel=1e-5)
            assert float(np.mean(mag)) == pytest.approx(float(reference["loss_per_resolution"][k, r, 1]), rel=1e-5)
        sc, mag = stft_loss(tf.constant(e), tf.constant(p), RESOLUTIONS)
        assert float(np.mean(mag)) == pytest.approx(float(reference[f"loss_mag_{band}"]), rel=1e-5)
        assert float(sc) == pytest.approx(float(reference[f"loss_sc_{band}"]), rel=1e-5)
    # the network's prediction for FreGrad's noisy input, and the objective's total: half FreGrad's (a mean over both
    # bands where FreGrad sums them), so the same minimum
    noisy, t = interleaved(reference["train_noisy"]), reference["train_t"].astype(np.float32)
    assert relative_error(model.backbone.model([noisy, t, reference["train_mel"]]).numpy(), predicted) < 1e-5
    objective = for_backbone(model.backbone, model.config)
    batch = {"audio": tf.constant(reference["train_audio"]), "mel": tf.constant(reference["train_mel"]),
             "noise": tf.constant(interleaved(reference["train_noise"].astype(np.float32))),
             "u": tf.constant((t + 0.5) / 50), "v": tf.zeros(2)}
    ours, steps, _ = objective.model_inputs(batch)
    np.testing.assert_array_equal(steps.numpy(), t)
    np.testing.assert_allclose(ours.numpy(), noisy, atol=1e-4)  # through our std (see the prior's test)
    loss = 2 * float(np.mean(objective.per_example_loss(batch, tf.constant(predicted)).numpy()))
    assert loss == pytest.approx(float(reference["loss"]), rel=1e-3)


@pytest.mark.parametrize("name, steps, tolerance", [("fast6", "fast", 1e-4),
                                                     pytest.param("full", "full", 1e-3, marks=pytest.mark.slow)])
def test_the_reverse_process_gives_fregrads_bands_and_audio(model, reference, name, steps, tolerance):
    """With FreGrad's prior std, the bands within the fixture's bounds (the full schedule's first step multiplies by
    141); its output filter then gives FreGrad's released audio from FreGrad's bands exactly, and from ours within
    2e-3: the lowpass near Nyquist amplifies their last-bit differences (the fixture's bound for float64 filters)."""
    mel = reference["mel" if name == "fast6" else "full_mel"][None]
    noise = interleaved(reference[f"{name}_noise"].astype(np.float32))
    betas, inputs = model.sampler.betas_and_steps(steps)
    backbone = model.backbone
    cond = backbone.conditioner(mel)
    std = interleaved(reference["std" if name == "fast6" else "full_std"][None])
    bands = reverse_process_from_noise(lambda x, t: backbone.denoiser([x, t, cond]), betas, inputs, noise,
                                       model.synthesizer.options, std=std).numpy()
    np.testing.assert_allclose(bands, interleaved(reference[f"{name}_bands"]), atol=tolerance)
    released = backbone.signal_to_audio(interleaved(reference[f"{name}_bands"])).numpy()
    np.testing.assert_array_equal(released, reference[f"{name}_audio"])
    np.testing.assert_allclose(model.reverse_process(noise, mel, steps), reference[f"{name}_audio"], atol=2e-3)


def test_params_py_is_read_as_text_and_never_run(tmp_path):
    entries = params_file_entries(PARAMS)
    assert entries["residual_channels"] == 12 and entries["enable_remove_cutoff_alias"] is True
    assert "noise_schedule" not in entries  # computed by the file: not a literal
    marker = tmp_path / "ran"
    evil = tmp_path / "params.py"
    evil.write_text(f"import os\nos.system('touch {marker}')\nparams = AttrDict(residual_channels=__import__('os'))\n")
    assert params_file_entries(str(evil)) == {} and not marker.exists()


def test_a_checkpoint_without_params_takes_its_schedule_from_params_py():
    np.testing.assert_allclose(computed_schedule(PARAMS, "bare.pt"),
                               read_torch_checkpoint(CHECKPOINT)["params"]["noise_schedule"], atol=1e-6)
    with pytest.raises(UserError, match="^bare.pt: records no params.noise_schedule, and no params.py"):
        computed_schedule(None, "bare.pt")


def test_layers_whose_haar_buffers_are_not_haar_are_refused(model):
    state = dict(read_torch_checkpoint(CHECKPOINT)["model"])
    state["residual_layers.1.dilated_conv.idwt.g1"] = np.array([[[0.7071068, 0.7071068]]], np.float32)
    with pytest.raises(UserError, match="^x.pt: residual_layers.1.dilated_conv.idwt.g1 = .* not the Haar filter"):
        fregrad_weights(state, model.config, "x.pt")


def test_the_broken_condition_prior_variants_are_refused_in_one_line():
    params = read_torch_checkpoint(CHECKPOINT)["params"]
    for flag in ("condition_prior", "condition_prior_global"):
        with pytest.raises(UserError, match=f"^x.pt: params.{flag} = True is not supported: FreGrad's training code"):
            fregrad_config({**params, flag: True}, {"energy_min": 0.1, "energy_max": 4.0}, "x.pt")


def test_other_converters_name_the_fregrad_command(tmp_path):
    for command in (["priorgrad", CHECKPOINT, STATS], ["lmnt", CHECKPOINT]):
        with pytest.raises(UserError, match="a FreGrad \\(kaistmm/fregrad\\) checkpoint, not .*; convert it with "
                                            "'tf-diffwave convert fregrad ...'"):
            convert_main([*command, str(tmp_path / command[0])])
