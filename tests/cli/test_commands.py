"""The tf-diffwave command and the rough edges a newcomer meets: start-up noise, outputs, inputs, progress, resume."""

import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest
import soundfile

from tests.helpers import DEMO, DEMO_CONFIG, REPO, make_corpus, seeded_trainer, tiny_overrides
from tf_diffwave.cli.infer import main as infer_main
from tf_diffwave.cli.preprocess import main as preprocess_main
from tf_diffwave.cli.train import main as train_main
from tf_diffwave.errors import UserError


def truncated_copy(source, target, keep_bytes):
    """A copy of a WAV file cut after `keep_bytes` bytes, its header unchanged (an interrupted download)."""
    with open(source, "rb") as f:
        data = f.read()
    with open(target, "wb") as f:
        f.write(data[:keep_bytes])
    return str(target)


def run(args, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.slow
def test_commands_start_without_tensorflows_notices(tmp_path):
    quiet = run([os.path.join(REPO, "infer.py"), "--help"], cwd=tmp_path)
    assert quiet.returncode == 0 and "usage: tf-diffwave infer" in quiet.stdout
    assert quiet.stderr == ""  # no absl, oneDNN, cudart or cuInit lines
    listing = run(["-m", "tf_diffwave.cli.main", "--help"], cwd=tmp_path)
    for name in ("train", "infer", "preprocess", "evaluate", "export", "bench", "classifier", "bundle", "convert"):
        assert f"\n  {name} " in listing.stdout
    assert "formats: lmnt, wavegrad-ivanvovk" in listing.stdout
    unknown = run(["-m", "tf_diffwave.cli.main", "vocode"], cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "unknown command 'vocode'" in unknown.stderr


def test_the_command_turns_onednn_on_unless_the_environment_says_otherwise(monkeypatch, capsys):
    from tf_diffwave.cli import main as command

    for preset, expected in ((None, "1"), ("0", "0")):
        if preset is None:
            monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
        else:
            monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", preset)
        with pytest.raises(SystemExit):
            command.main(["bundle", "--help"])
        assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == expected
    assert "usage: tf-diffwave bundle" in capsys.readouterr().out


def test_argument_errors_come_before_tensorflow_is_imported(tmp_path):
    code = ("import sys\nfrom tf_diffwave.cli.main import main\nfor argv in sys.argv[1:]:\n    try:\n"
            "        main(argv.split())\n    except SystemExit:\n        pass\n"
            "print('tensorflow' in sys.modules)")
    commands = [f"infer --model-dir {tmp_path}/absent --mel LJ001-0001", "train --config absent.json",
                f"export litert --model-dir {tmp_path}/absent --out m.tflite", "convert lmnt absent.pt out",
                "evaluate nll --model-dir absent",
                f"convert priorgrad {REPO}/tests/fixtures/priorgrad/priorgrad-small.pt {tmp_path}/no-stats out",
                f"infer --steps 6 --mel LJ001-0001 --out-dir {tmp_path}"]
    out = run(["-c", code, *commands], cwd=tmp_path)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == len(commands) and all(line.startswith("error: ") for line in lines)
    assert "numbered schedules are WaveGrad's" in lines[-1]
    assert lines[-2].endswith("no-stats: statistics folder not found (give the folder holding stats_priorgrad/, or "
                              "energy_min= and energy_max=)")


@pytest.mark.parametrize("command", [
    ["infer", "--mel", "LJ001-0001", "--out-dir", "{blocked}/wavs"],
    ["train", "--config", DEMO_CONFIG, "train.model_dir={blocked}/run"],
    ["preprocess", "--config", DEMO_CONFIG, "--out-dir", "{blocked}/mels"],
    ["export", "savedmodel", "--out-dir", "{blocked}/exports"],
    ["export", "litert", "--out", "{blocked}/m.tflite"],
    ["convert", "lmnt", os.path.join(REPO, "tests", "fixtures", "lmnt-diffwave", "lmnt-small.pt"), "{blocked}/out"],
    ["bundle", "--model-dir", os.path.join(REPO, "checkpoints", "demo"), "--out-dir", "{blocked}/bundle"],
    ["evaluate", "vocoder", "--out", "{blocked}/report.json"]])
def test_an_unwritable_output_is_one_line_before_any_work(command, tmp_path, capsys):
    """A folder that cannot be made or written (here: inside a file) is reported at once, not after the work."""
    from tf_diffwave.cli.main import main

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(SystemExit) as stop:
        main([word.replace("{blocked}", str(blocked)) for word in command])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith(f"error: {blocked}/")
    assert "is not writable" in err


@pytest.mark.slow
def test_importing_and_loading_in_python_prints_no_tensorflow_notices(tmp_path):
    out = run(["-c", "import tf_diffwave; tf_diffwave.load(); print('loaded')"], cwd=tmp_path,
              env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert out.returncode == 0 and out.stdout.strip() == "loaded"
    assert "cuInit" not in out.stderr and "oneDNN" not in out.stderr and "cpu_feature_guard" not in out.stderr


@pytest.mark.slow
def test_the_package_works_from_another_folder(tmp_path):
    code = ("import numpy, tf_diffwave; m = tf_diffwave.load(); "
            "print(m.sample_rate, m.vocode(numpy.full((4, 80), m.log_mel.silence)).shape)")
    out = run(["-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["16000", "(1024,)"]


def test_a_truncated_wav_is_an_error_for_infer(tmp_path):
    source = os.path.join(DEMO, "wavs", "LJ001-0002.wav")
    path = truncated_copy(source, tmp_path / "cut.wav", 20044)  # a 44-byte header and 10,000 16-bit samples
    with wave.open(source) as w:
        announced = w.getnframes()
    with pytest.raises(UserError, match=f"cut.wav: truncated: the header announces {announced} samples, the file "
                                        f"holds 10000"):
        infer_main(["--mel", path, "--out-dir", str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["cut.wav"]


@pytest.mark.slow
def test_training_warns_once_per_truncated_wav_and_skips_fragments_shorter_than_a_frame(tmp_path, capsys):
    corpus = make_corpus(str(tmp_path / "corpus"), ids=("LJ001-0001", "LJ001-0002", "LJ001-0003", "LJ001-0004"))
    wavs = os.path.join(corpus, "wavs")
    for name, keep in (("LJ001-0002", 20044), ("LJ001-0003", 1044)):  # 10,000 and 500 samples left
        source = os.path.join(DEMO, "wavs", f"{name}.wav")
        truncated_copy(source, os.path.join(wavs, f"{name}.wav"), keep)
    train_main(["--config", DEMO_CONFIG, *tiny_overrides(corpus, str(tmp_path / "run")), "train.max_steps=6"])
    err = capsys.readouterr().err
    used = [line for line in err.splitlines() if "LJ001-0002.wav: truncated" in line]
    assert len(used) == 1 and used[0].startswith("warning: ") and used[0].endswith("using those 10000")
    skipped = [line for line in err.splitlines() if "LJ001-0003.wav: truncated" in line]
    assert len(skipped) == 1 and "skipping" in skipped[0] and "holds 500, less than 1024" in skipped[0]


def test_outputs_are_checked_before_anything_is_computed(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    cases = [(["--out-dir", str(tmp_path / "notes.txt")], "notes.txt: --out-dir names a file, not a folder"),
             (["--out", str(tmp_path / "x.mp3")], "x.mp3: --out takes a .wav file name"),
             (["--out", str(tmp_path)], "--out names a folder; it takes a file")]
    for args, message in cases:  # the model folder does not exist: the output check comes first
        with pytest.raises(UserError, match=message):
            infer_main(["--mel", "LJ001-0001", "--model-dir", str(tmp_path / "absent"), *args])


def test_mel_inputs_that_are_not_mels_are_named(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "list.csv").write_text("LJ001-0001\n")
    soundfile.write(tmp_path / "short.wav", np.zeros(100, np.float32), 16000)  # the bundled vocoder's rate
    for name, message in (("objects.npy", "not a mel array \\(it holds Python objects"),
                          ("list.csv", "list.csv: --mel takes utterance ids, .npy mel arrays or audio files"),
                          ("short.wav", "short.wav: 100 samples, shorter than one mel frame \\(256 samples\\)")):
        with pytest.raises(UserError, match=message):
            infer_main(["--mel", str(tmp_path / name), "--out-dir", str(tmp_path)])


@pytest.mark.slow
def test_outputs_are_named_after_the_model_so_models_do_not_overwrite_each_other(tmp_path, capsys):
    espeak_demo = os.path.join(REPO, "checkpoints", "demo")  # the earlier bundled model, still there by name
    infer_main(["--mel", "LJ001-0001", os.path.join(DEMO, "wavs", "LJ001-0002.wav"), "--model-dir", espeak_demo,
                "--out-dir", str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["LJ001-0001_demo-10000.wav", "LJ001-0002_demo-10000.wav"]
    assert soundfile.info(str(tmp_path / "LJ001-0001_demo-10000.wav")).frames % 256 == 0


def test_progress_off_a_terminal_is_plain_lines(tmp_path, tiny_corpus, capsys):
    preprocess_main(["--config", DEMO_CONFIG, f"data.path={tiny_corpus}", f"data.mel_dir={tmp_path / 'mels'}",
                     "data.valid_count=1"])
    out = capsys.readouterr().out  # captured: not a terminal
    assert "file 3/3 - " in out and "\b" not in out and "\x1b" not in out and "\r" not in out


def test_cli_resume_continues_from_the_checkpoint(tiny_run, tiny_corpus, tmp_path, capsys):
    import tf_diffwave
    from tf_diffwave.config import load_config

    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run, run_dir)
    overrides = [*tiny_overrides(tiny_corpus, run_dir), "train.max_steps=4"]
    train_main(["--config", DEMO_CONFIG, *overrides])
    out = capsys.readouterr().out
    assert f"resumed from {os.path.join(run_dir, 'ckpt-2')} at step 2" in out
    assert "building the training graph" in out and "first step done" in out
    trainer = seeded_trainer(load_config(DEMO_CONFIG, overrides))
    initial = [w.numpy() for w in trainer.ema_backbone.model.weights]
    assert trainer.restore().endswith("ckpt-4") and int(trainer.step.numpy()) == 4
    assert int(trainer.optimizer.iterations.numpy()) == 4  # 2 restored, 2 taken after the resume
    restored = [w.numpy() for w in trainer.ema_backbone.model.weights]
    loaded = [w.numpy() for w in tf_diffwave.load(run_dir).backbone.model.weights]  # read by another path
    assert all(np.array_equal(a, b) for a, b in zip(restored, loaded))
    assert any(not np.array_equal(a, b) for a, b in zip(restored, initial))


def test_the_top_level_help_names_every_convert_format(capsys):
    from tf_diffwave.cli.convert import FORMATS
    from tf_diffwave.cli.main import main

    main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f" {name}," in text or text.endswith(f" {name}") or f" {name} " in text for name in FORMATS)


def test_library_warnings_go_through_the_package_logger_and_the_commands_print_them(capsys):
    import logging

    import tf_diffwave.cli.common  # noqa: F401  (the commands' printing of the package's messages)
    from tf_diffwave.data.pipelines import UnreadableFiles

    logger = logging.getLogger("tf_diffwave")
    UnreadableFiles(["a"]).warn("a.wav: truncated")
    assert capsys.readouterr().err == "warning: a.wav: truncated\n"
    level = logger.level
    logger.setLevel(logging.ERROR)  # what a library user does to silence them
    try:
        UnreadableFiles(["a"]).warn("a.wav: truncated")
    finally:
        logger.setLevel(level)
    assert capsys.readouterr().err == ""


def test_a_conversion_given_too_few_paths_names_those_its_format_takes(tmp_path, monkeypatch):
    from tf_diffwave.cli.convert import main as convert_main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="convert wavegrad-ivanvovk takes CHECKPOINT CONFIG OUT_DIR \\(.*CONFIG: its "
                                        "JSON config.*\\); 2 given: x.pt out"):
        convert_main(["wavegrad-ivanvovk", "x.pt", "out"])
    assert os.listdir(tmp_path) == []  # no folder made for "out"


@pytest.mark.slow
def test_shipped_configs_and_corpora_are_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the clone: "configs/demo.json" and its "data/ljspeech-demo" are shipped files
    preprocess_main(["--config", "configs/demo.json", "--out-dir", "mels"])
    assert len(os.listdir(tmp_path / "mels")) == len(os.listdir(os.path.join(DEMO, "wavs")))
