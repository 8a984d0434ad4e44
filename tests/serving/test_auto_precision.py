"""precision="auto" and the reduced-precision paths: the choice follows the CPU's instructions, the speed and the
quality bound; the bundled model's bfloat16 and int8 audio stay within the bound of its float32 audio."""

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

import tf_diffwave
from tests.helpers import CLEAN_LOAD, DEMO, run_script
from tf_diffwave.cli.export import main as export_main
from tf_diffwave.serving.auto_precision import LOG_MEL_BOUND, choose, cpu_flags

AMX = {"avx512f", "amx_bf16", "amx_int8", "avx512_vnni"}


def runner(audio, seconds):
    def run():
        time.sleep(seconds)
        return audio
    return run


def identity(audio):
    return np.asarray(audio, np.float64)


def test_auto_is_float32_without_the_instructions_and_tries_nothing():
    def untouchable():
        raise AssertionError("a path this CPU has no instructions for was run")

    precision, line = choose({"float32": untouchable, "bfloat16": untouchable}, identity, {"avx2", "fma"})
    assert precision == "float32"
    assert line == "precision auto: float32 (this CPU has none of amx_bf16, avx512_bf16)"


def test_auto_takes_a_faster_path_within_the_bound():
    audio = np.zeros(100)
    precision, line = choose({"float32": runner(audio, 0.02), "bfloat16": runner(audio + 0.5 * LOG_MEL_BOUND,
                                                                                   0.002)}, identity, AMX)
    assert precision == "bfloat16"
    assert line.startswith("precision auto: bfloat16 (this CPU has amx_bf16; bfloat16: ")
    assert "log-mel L1 0.0100 from its audio" in line


@pytest.mark.parametrize("offset, seconds", [(2 * LOG_MEL_BOUND, 0.002), (0.0, 0.03)], ids=["off bound", "slower"])
def test_auto_keeps_float32_when_the_reduced_path_is_off_bound_or_slower(offset, seconds):
    audio = np.zeros(100)
    precision, line = choose({"float32": runner(audio, 0.01), "int8": runner(audio + offset, seconds)}, identity,
                             AMX)
    assert precision == "float32" and "a path must be faster and within 0.02" in line


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu avx512_vnni amx_bf16\nbugs\t: none\n")
    assert cpu_flags(str(tmp_path / "cpuinfo")) == {"fpu", "avx512_vnni", "amx_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == set()


def speech_clip(model):
    """A held-out sentence of the demo corpus (another voice than the bundled model's), at the model's rate."""
    from tf_diffwave.data.audio import read_audio

    return read_audio(os.path.join(DEMO, "wavs", "LJ001-0046.wav"), model.sample_rate)


def quality(model, recording, audio):
    from tf_diffwave.evaluation.vocoder_measures import quality_metrics

    return quality_metrics(recording, audio[: len(recording)], model.sample_rate, model.log_mel)


def reduced_audio(path, model, mel, tmp_path):
    """The bundled model's audio of `mel` (seed 0) through a reduced path: "bfloat16" or "int8" (LiteRT)."""
    from tests.helpers import run_litert
    from tf_diffwave.serving.litert import seeded_noise

    if path == "bfloat16":
        return tf_diffwave.load(precision="bfloat16").vocode(mel, seed=0)
    tflite = str(tmp_path / "int8.tflite")
    export_main(["litert", "--out", tflite, "--precision", "int8"])
    noise = seeded_noise([0], len(model.sampler.betas_and_steps("fast")[0]), len(mel) * 256).numpy()
    return run_litert(tflite, tmp_path, noise=noise, mel=mel[None])[0]


@pytest.mark.slow
@pytest.mark.parametrize("path", ["bfloat16", pytest.param("int8", marks=pytest.mark.xfail(
    strict=True, reason="the bundled FreGrad as int8 LiteRT loses 0.054 log-mel L1 on its held-out prompts, above "
                        "the 0.02 bound (docs/evaluation.md); it holds for bfloat16"))])
def test_the_bundled_models_reduced_paths_keep_the_quality_bound(tmp_path, path):
    """bfloat16 (TensorFlow) and int8 (LiteRT, run without TensorFlow) against float32 on a sentence the model
    never heard, the same seed: log-mel L1 to the recording within +0.02, PESQ within -0.05."""
    pytest.importorskip("ai_edge_litert")
    model = tf_diffwave.load()
    recording = speech_clip(model)
    mel = model.features(recording)
    reference = quality(model, recording, model.vocode(mel, seed=0))
    audio = reduced_audio(path, model, mel, tmp_path)
    assert np.abs(audio - model.vocode(mel, seed=0)).max() > 0, f"{path} computed in float32"
    measured = quality(model, recording, audio)
    assert measured["log_mel_l1"] <= reference["log_mel_l1"] + 0.02
    assert measured["pesq_wb"] >= reference["pesq_wb"] - 0.05


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_a_reduced_precision_export_loads_in_a_clean_tensorflow_process_with_standard_ops(tiny_run, tmp_path,
                                                                                         precision):
    path = tf_diffwave.load(tiny_run).export(str(tmp_path / "export"), 1, precision)
    assert "OK (2, 2304)" in run_script(CLEAN_LOAD, path)
    cli = shutil.which("saved_model_cli") or pytest.fail("saved_model_cli not installed with tensorflow")
    scan = subprocess.run([cli, "scan", "--dir", path, "--tag_set", "serve"], capture_output=True, text=True,
                          timeout=300)
    assert scan.returncode == 0 and "does not contain" in scan.stdout, scan.stderr[-2000:]


@pytest.mark.slow
def test_export_prints_what_auto_chose(tiny_run, tmp_path, capsys):
    export_main(["savedmodel", "--model-dir", tiny_run, "--out-dir", str(tmp_path / "e"), "--precision", "auto"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("precision auto: ") and out[1].startswith("wrote ")
    assert len(out) == 2
