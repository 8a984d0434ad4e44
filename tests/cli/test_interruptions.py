"""Commands stopped by Ctrl-C or SIGTERM: one line, exit 130 or 143, and no output left half-written under a name
a later command would take for finished."""

import os
import signal
import time

import numpy as np
import pytest
import soundfile

from tests.helpers import FIXTURES
from tf_diffwave.cli.common import run
from tf_diffwave.data.audio import WavWriter

RF5 = os.path.join(FIXTURES, "rf5-diffwave")


def interrupted(capsys, main, name="tf-diffwave test"):
    """The exit code and stderr of `main` run as a command."""
    with pytest.raises(SystemExit) as stop:
        run(main, name)
    return stop.value.code, capsys.readouterr().err


def test_ctrl_c_and_sigterm_are_one_line_and_exit_130_and_143(capsys):
    def ctrl_c():
        raise KeyboardInterrupt

    def sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises here

    before = signal.getsignal(signal.SIGTERM)
    for main, code, what in ((ctrl_c, 130, "Ctrl-C"), (sigterm, 143, "SIGTERM")):
        exit_code, err = interrupted(capsys, main)
        assert exit_code == code
        assert err.strip() == (f"interrupted ({what}): tf-diffwave test stopped; what it had finished is kept, "
                               f"nothing half-written is left")
    assert signal.getsignal(signal.SIGTERM) is before  # the command's handler is gone with it


def test_a_wav_grows_under_a_temporary_name_and_an_interruption_removes_it(tmp_path, capsys):
    path = tmp_path / "out.wav"

    def stream():
        with WavWriter(str(path), 16000) as wav:
            wav.write(np.zeros(800, np.float32))
            assert os.listdir(tmp_path) == ["out.partial.wav"]  # playable while it grows, under another name
            assert soundfile.info(str(tmp_path / "out.partial.wav")).frames == 800
            raise KeyboardInterrupt

    assert interrupted(capsys, stream)[0] == 130
    assert os.listdir(tmp_path) == []
    with WavWriter(str(path), 16000) as wav:
        wav.write(np.zeros(800, np.float32))
    assert os.listdir(tmp_path) == ["out.wav"] and soundfile.info(str(path)).frames == 800


@pytest.mark.parametrize("point", ["save_config", "save_ema"])
def test_an_interrupted_conversion_leaves_no_model_folder_and_the_same_command_then_works(tmp_path, capsys,
                                                                                         monkeypatch, point):
    from tf_diffwave.cli.convert import main as convert_main
    from tf_diffwave.interop import model_folder

    out = tmp_path / "model"
    command = ["rf5-diffwave", os.path.join(RF5, "rf5-wavenet-small.pt"), os.path.join(RF5, "rf5-wavenet-small.json"),
               str(out), "--no-export"]
    original = getattr(model_folder, point)

    def stopped(*args, **kwargs):
        original(*args, **kwargs)  # what it writes is written, then the interruption comes
        raise KeyboardInterrupt

    monkeypatch.setattr(model_folder, point, stopped)
    code, err = interrupted(capsys, lambda: convert_main(command), "tf-diffwave convert")
    assert code == 130 and "tf-diffwave convert stopped" in err and "Traceback" not in err
    assert set(os.listdir(tmp_path)) <= {"model"} and (not out.exists() or os.listdir(out) == [])
    monkeypatch.setattr(model_folder, point, original)
    convert_main(command)
    assert {"config.json", "checkpoint"} <= set(os.listdir(out)) and os.listdir(tmp_path) == ["model"]


def test_a_failed_command_leaves_no_empty_folder_it_made(tmp_path, capsys):
    from tf_diffwave.cli.infer import main as infer_main

    (tmp_path / "kept").mkdir()
    for out_dir in (tmp_path / "new" / "deeper", tmp_path / "kept"):
        code, err = interrupted(capsys, lambda: infer_main(["--mel", "no-such-utterance", "--out-dir", str(out_dir)]))
        assert code == 2 and "no-such-utterance" in err
    assert os.listdir(tmp_path) == ["kept"]  # the folder that was there before stays
