"""The pipelines: which kind each family's models are, one clean refusal for what a kind does not do, and the
sampling options a kind offers on the command line."""

import numpy as np
import pytest

from tests.helpers import AR_DEMO_CONFIG, DEMO_CONFIG, SC09_DEMO_CONFIG, WAVEGRAD_DEMO_CONFIG
from tf_diffwave.config import load_config
from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import build_backbone
from tf_diffwave.pipelines import KINDS, OFFERS, kind_of, pipeline_for

TINY = ["model.residual_channels=4", "model.residual_layers=2", "model.dilation_cycle=2", "model.embed_dim=8"]


@pytest.mark.parametrize("config, overrides, kind", [
    (DEMO_CONFIG, [], "diffusion vocoder"),
    (SC09_DEMO_CONFIG, [], "diffusion generator"),
    (DEMO_CONFIG, ["model.backbone=sashimi", "model.unconditional=true", "diffusion.prior=standard"],
     "diffusion generator"),
    (WAVEGRAD_DEMO_CONFIG, [], "diffusion vocoder"),
    (AR_DEMO_CONFIG, [], "autoregressive generator"),
])
def test_each_family_names_the_kind_of_its_models(config, overrides, kind):
    assert kind_of(load_config(config, overrides)).name == kind


def test_every_kind_answers_or_refuses_every_offer_and_takes_a_known_input():
    for kind in KINDS.values():
        assert set(kind.refusals) <= set(OFFERS) and kind.input in ("mel", "seed")
        assert kind.examples in ("crops", "clips")
    # what no kind refuses would need no offer; what every kind refuses, no pipeline answers
    assert all(any(offer not in kind.refusals for kind in KINDS.values()) for offer in OFFERS)


def tiny_pipeline(config, overrides=TINY):
    config = load_config(config, list(overrides))
    return pipeline_for(build_backbone(config), config, "runs/x")


@pytest.mark.parametrize("config, offer, call, words", [
    (DEMO_CONFIG, "generate", lambda p: p.generate(1), "this model is a vocoder; it needs a mel"),
    (DEMO_CONFIG, "nll", lambda p: p.nll(np.zeros((1, 16))), "a diffusion model has no exact likelihood"),
    (SC09_DEMO_CONFIG, "vocode", lambda p: p.vocode(np.zeros((4, 80))), "this model is unconditional"),
    (SC09_DEMO_CONFIG, "stream", lambda p: list(p.stream([])), "this model is unconditional"),
    (SC09_DEMO_CONFIG, "prior_std", lambda p: p.prior_std(np.zeros((4, 80))), "its prior is the standard normal"),
])
def test_a_diffusion_model_refuses_what_its_kind_does_not_do_in_one_line(config, offer, call, words):
    pipeline = tiny_pipeline(config, TINY + (["diffusion.energy_min=0.5", "diffusion.energy_max=3"]
                                             if config == DEMO_CONFIG else []))
    with pytest.raises(UserError) as err:
        call(pipeline)
    assert str(err.value).startswith("runs/x: ") and words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("call, words", [
    (lambda p: p.litert_function(), "autoregressive SaShiMi models sample with a loop of their own; only diffusion "
                                    "models export to LiteRT"),
    (lambda p: p.denoise(np.zeros((1, 64)), 3), "autoregressive SaShiMi samples with a loop of its own"),
    (lambda p: p.vocode(np.zeros((4, 64))), "this model is unconditional"),
])
def test_an_autoregressive_model_refuses_what_it_does_not_do_in_one_line(call, words):
    pipeline = tiny_pipeline(AR_DEMO_CONFIG, ["model.audio_length=256", "model.ar_sashimi.d_model=4",
                                              "model.ar_sashimi.n_layers=1", "model.ar_sashimi.state_size=4"])
    with pytest.raises(UserError, match=f"^runs/x: {words}"):
        call(pipeline)


def test_a_loaded_model_answers_with_its_pipeline(tiny_run):
    import tf_diffwave

    model = tf_diffwave.load(tiny_run)
    assert model.pipeline.kind.name == "diffusion vocoder"
    assert model.vocode == model.pipeline.vocode and {"vocode", "stream", "generate"} <= set(dir(model))
    with pytest.raises(UserError, match="this model is a vocoder; it needs a mel"):
        model.generate(2)
    with pytest.raises(AttributeError):
        model.no_such_call  # noqa: B018


@pytest.mark.parametrize("config, listed, absent", [
    (WAVEGRAD_DEMO_CONFIG, "this model's: fast, full, 6, 12, 25, 50, 100, 1000", "priorgrad6"),
    (DEMO_CONFIG, "this model's: fast, full, priorgrad6, priorgrad12", "1000"),
])
def test_infer_help_lists_the_schedules_of_the_model_it_names(config, listed, absent, tmp_path, capsys):
    import json

    from tf_diffwave.cli.infer import main as infer_main

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(load_config(config)))
    with pytest.raises(SystemExit):
        infer_main(["--help", "--model-dir", str(folder)])
    text = " ".join(capsys.readouterr().out.split())
    assert listed in text and absent not in text.split("--seed")[0].split("--steps")[1]


@pytest.mark.slow
def test_a_batch_past_the_memory_bound_runs_in_groups_and_gives_the_same_audio(monkeypatch):
    import tf_diffwave.pipelines.base as base

    vocoder = tiny_pipeline(DEMO_CONFIG, TINY + ["diffusion.prior=standard"])
    mel = np.random.default_rng(0).uniform(-8.0, 0.0, (5, 6, 80)).astype(np.float32)
    one_by_one = np.stack([vocoder.vocode(m, steps="fast", seed=3 + i) for i, m in enumerate(mel)])
    calls = []
    original = vocoder.synthesizer.vocode
    monkeypatch.setattr(vocoder.synthesizer, "vocode", lambda m, *a: calls.append(len(m)) or original(m, *a))
    monkeypatch.setattr(base, "MAX_BATCH_SAMPLES", 2 * 6 * 256)  # two of these mels' audio
    np.testing.assert_allclose(vocoder.vocode(mel, steps="fast", seed=3), one_by_one, atol=1e-5)
    assert calls == [2, 2, 1]

    generator = tiny_pipeline(SC09_DEMO_CONFIG)
    alone = np.stack([generator.generate(1, seed=7 + i, steps="fast")[0] for i in range(3)])
    monkeypatch.setattr(base, "MAX_BATCH_SAMPLES", generator.length)  # one clip at a time, whatever is asked
    np.testing.assert_allclose(generator.generate(3, seed=7, steps="fast", batch_size=1000), alone, atol=1e-5)
