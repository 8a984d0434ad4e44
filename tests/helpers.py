"""What tests share: the repository's paths, tiny corpora and tiny-model overrides, and small utilities."""

import glob
import os
import shutil
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")  # checkpoints saved by the original implementations


DEMO = os.path.join(REPO, "data", "ljspeech-demo")
DEMO_CONFIG = os.path.join(REPO, "configs", "demo.json")
BASE_CONFIG = os.path.join(REPO, "configs", "ljspeech.json")
SC09_DEMO = os.path.join(REPO, "data", "sc09-demo")
SC09_DEMO_CONFIG = os.path.join(REPO, "configs", "sc09_demo.json")
SC09_CLASSIFIER = os.path.join(REPO, "checkpoints", "sc09-classifier")
SC09_SPEAKERS = ("espeak_engb_m1", "espeak_enus_f2", "flite_slt", "espeak_enus_m1", "espeak_en029_f1",
                 "espeak_engb_m3")


def run_script(code, *args, cwd="/", env=None, timeout=300):
    """Run `python -c code args...` in a new process (by default from "/", so that only what the script imports is
    in it) and return its stdout; fail with the end of its stderr if it fails."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


SERVE_SEEDS = """
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
audio = fn(seed=tf.constant([int(s) for s in sys.argv[3].split(",")], tf.int64))["audio"].numpy()
assert not any(m.startswith("tf_diffwave") for m in sys.modules), "not a clean process"
np.save(sys.argv[2], audio)
"""


def served_clips(export_dir, seeds, folder):
    """What an unconditional model's export serves for `seeds`, in a process that imports only TensorFlow."""
    path = os.path.join(folder, "served.npy")
    run_script(SERVE_SEEDS, export_dir, path, ",".join(map(str, seeds)))
    import numpy as np

    return np.load(path)


def stepped_logits(backbone, tokens):
    """Logits (B, L, 256) of an autoregressive SaShiMi run one sample at a time (its recurrent mode) on given input
    tokens (B, L)."""
    import numpy as np

    for layer in backbone.own_sampler({"model": {"ar_sashimi": backbone.config}}).layers:
        layer.setup_step(backbone.step_mode)
    state, out = backbone.initial_state(tokens.shape[0]), []
    for n in range(tokens.shape[1] // backbone.period):
        buffers = [[] for _ in backbone.pool]
        for i in range(backbone.period):
            out.append(backbone.step(tokens[:, n * backbone.period + i], i, state, buffers).numpy())
    return np.stack(out, axis=1)


def relative_error(ours, reference):
    """The largest difference from a reference, relative to the reference's largest magnitude."""
    import numpy as np

    return np.max(np.abs(ours - reference)) / np.max(np.abs(reference))


def parity_bound(reference):
    """1e-5 x max(1, max |reference|): the fixtures' tolerance for SaShiMi outputs, whose float32 error scales with
    their size."""
    import numpy as np

    return 1e-5 * max(1.0, float(np.max(np.abs(reference))))


def pooling_gains(section):
    """The weight-norm gains (one per output channel) of a SaShiMi's down- and up-pooling layers, which the RF5
    originals store beside their normed weights and the converters fold into the weights."""
    gains, width = 0, section["d_model"]
    for factor in section["pool"]:
        gains += section["expand"] * width + factor * width
        width *= section["expand"]
    return gains


def trainable_count(model):
    """The number of trainable parameters of a Keras model."""
    import numpy as np

    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def make_corpus(folder, ids=("LJ001-0001", "LJ001-0002", "LJ001-0003")):
    """An LJSpeech-layout corpus holding a few of the bundled utterances."""
    os.makedirs(os.path.join(folder, "wavs"), exist_ok=True)
    with open(os.path.join(folder, "metadata.csv"), "w") as f:
        for i in ids:
            shutil.copy(os.path.join(DEMO, "wavs", f"{i}.wav"), os.path.join(folder, "wavs", f"{i}.wav"))
            f.write(f"{i}|text|text\n")
    return folder


def tiny_overrides(corpus, model_dir):
    """Overrides that make configs/demo.json a model that trains in seconds."""
    return [f"data.path={corpus}", "data.valid_count=1", "data.crop_frames=8",
            "model.residual_channels=8", "model.residual_layers=2", "model.dilation_cycle=2",
            "model.embed_dim=16", f"train.model_dir={model_dir}", "train.batch_size=2",
            "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]


WAVEGRAD_DEMO_CONFIG = os.path.join(REPO, "configs", "wavegrad_demo.json")
AR_DEMO_CONFIG = os.path.join(REPO, "configs", "sc09_ar_sashimi_demo.json")


def tiny_wavegrad_overrides(corpus, model_dir):
    """Overrides that make configs/wavegrad_demo.json a WaveGrad that trains in seconds."""
    return [f"data.path={corpus}", "data.valid_count=1", "data.crop_frames=4",
            "model.wavegrad.upsampling_preconv_out_channels=16", "model.wavegrad.upsampling_out_channels=[8,8,8,8,8]",
            "model.wavegrad.downsampling_preconv_out_channels=8", "model.wavegrad.downsampling_out_channels=[8,8,8,8]",
            f"train.model_dir={model_dir}", "train.batch_size=2", "train.save_every=2", "train.sample_every=1000",
            "train.log_every=1", "train.export=false"]


def make_sc09_corpus(folder, digits=("zero", "one"), speakers=SC09_SPEAKERS[:3]):
    """An SC09-layout corpus holding some of the bundled clips (no list files: splits come from the hash)."""
    for digit in digits:
        os.makedirs(os.path.join(folder, digit), exist_ok=True)
        for speaker in speakers:
            source = glob.glob(os.path.join(SC09_DEMO, digit, f"{speaker}_nohash_0.*"))[0]
            shutil.copy(source, os.path.join(folder, digit, os.path.basename(source)))
    return folder


def tiny_sc09_overrides(corpus, model_dir):
    """Overrides that make configs/sc09_demo.json an unconditional model that trains in seconds."""
    return [f"data.path={corpus}", "data.valid_percent=0", "data.test_percent=0", "model.audio_length=2000",
            "model.residual_channels=8", "model.residual_layers=2", "model.dilation_cycle=2",
            "model.embed_dim=16", f"train.model_dir={model_dir}", "train.batch_size=2",
            "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]


def seeded_trainer(config):
    """A Trainer whose initial weights come from `train.seed`, as the train command makes them (it seeds Keras'
    random state first; the library leaves process-wide state alone)."""
    import keras

    from tf_diffwave.training.trainer import Trainer

    keras.utils.set_random_seed(config["train"]["seed"])
    return Trainer(config)


def overfit_losses(config, steps=150):
    """Train a fresh model for `steps` steps; return the mean loss of the first and of the last tenth."""
    import numpy as np
    import tensorflow as tf

    trainer = seeded_trainer(config)
    iterator = iter(trainer.dataset(0))
    step = tf.function(trainer.train_step)
    losses = [float(step(iterator)[0]) for _ in range(steps)]
    return np.mean(losses[: steps // 10]), np.mean(losses[-(steps // 10):])


def read_summaries(log_dir):
    """TensorBoard events under `log_dir` as {tag: {step: value}}; the value is a float for scalars, else None."""
    import tensorflow as tf

    found = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, {})[event.step] = float(array) if array.ndim == 0 else None
    return found


def lmnt_features(y, sr):
    """lmnt-com/diffwave's preprocessing (torchaudio MelSpectrogram, power 1, normalized, HTK, fmin 20), computed
    with librosa in float64: reflect-padded centred frames, magnitudes over the window's L2 norm, dB - 20 mapped
    from [-100, 0] to [0, 1]."""
    import librosa
    import numpy as np
    import scipy.signal

    mel = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=sr, n_fft=1024, hop_length=256, win_length=1024,
                                         window="hann", center=True, pad_mode="reflect", power=1.0, n_mels=80,
                                         fmin=20.0, fmax=sr / 2, htk=True, norm=None)
    mel /= np.sqrt(np.sum(scipy.signal.get_window("hann", 1024) ** 2))
    db = 20 * np.log10(np.maximum(mel, 1e-5)) - 20
    return np.clip((db + 100) / 100, 0, 1).T


def random_log_mel(seed, shape):
    """Random natural-log mel values around speech's (float32), none below the silence floor ln(1e-5) of the
    configs' features: a mel vocoders accept."""
    import numpy as np

    return np.maximum(np.random.default_rng(seed).normal(-5, 2, shape), np.log(1e-5)).astype(np.float32)


CLEAN_LOAD = """
import sys, numpy as np, tensorflow as tf
assert not any(m.startswith("tf_diffwave") for m in sys.modules), "not a clean process"
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
mel = tf.constant(np.random.default_rng(0).normal(-5, 2, (2, 9, 80)), tf.float32)
audio = fn(mel=mel)["audio"].numpy()
assert audio.shape == (2, 9 * 256) and audio.dtype == np.float32 and np.all(np.isfinite(audio)), audio.shape
assert sorted(m for m in sys.modules if m.startswith("tf_diffwave")) == []
print("OK", audio.shape)
"""


def fine_tuning_config(model_dir, tmp_path):
    """The SC09 demo config fine-tuning the model folder `model_dir` (`train.init_from`, its model section) for
    two steps of batch 2 on a few bundled clips, the run in tmp_path/run."""
    from tf_diffwave.config import load_config, with_model_of

    corpus = make_sc09_corpus(str(tmp_path / "corpus"))
    overrides = [f"train.init_from={model_dir}", f"train.model_dir={tmp_path / 'run'}", f"data.path={corpus}",
                 "data.valid_percent=0", "data.test_percent=0", "train.batch_size=2", "train.max_steps=2",
                 "train.save_every=2", "train.sample_every=1000", "train.log_every=1", "train.export=false"]
    return with_model_of(load_config(SC09_DEMO_CONFIG, overrides), overrides)


# float32 throughout; XNNPACK sums the convolutions in another order than TensorFlow's kernels: a few float32
# rounding steps per network pass, over the 6 steps of the fast schedule
LITERT_TOLERANCE = 1e-5

RUN_WITHOUT_TENSORFLOW = """
import sys, numpy as np
from tf_diffwave.serving.litert_runtime import LiteRTModel
inputs = np.load(sys.argv[2])
model = LiteRTModel(sys.argv[1], num_threads=1)
audio = model(inputs["noise"], inputs["mel"] if "mel" in inputs else None)
audio = model(inputs["noise"], inputs["mel"] if "mel" in inputs else None)  # a second call reuses the tensors
assert not any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules), "TensorFlow was imported"
np.save(sys.argv[3], audio)
"""


def run_litert(model_path, tmp_path, **inputs):
    """The model's audio, computed in a process that has no TensorFlow."""
    import numpy as np

    inputs_path, audio_path = os.path.join(tmp_path, "inputs.npz"), os.path.join(tmp_path, "audio.npy")
    np.savez(inputs_path, **inputs)
    run_script(RUN_WITHOUT_TENSORFLOW, model_path, inputs_path, audio_path)
    return np.load(audio_path)


def write_checkpoint(path, data_pkl, storages=None):
    """A zip laid out as torch.save lays it out."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return str(path)


class RunsAShellCommand:
    """Unpickled, it would run a shell command that touches `marker`: what a malicious checkpoint holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def tiny_ar_backbone(length=256, seed=0):
    """A small AR SaShiMi with every weight moved off its initialisation."""
    import numpy as np

    from tf_diffwave.config import load_config
    from tf_diffwave.models.registry import build_backbone

    backbone = build_backbone(load_config(AR_DEMO_CONFIG, [f"model.audio_length={length}"]))
    rng = np.random.default_rng(seed)
    for v in backbone.model.weights:
        name = v.path.rsplit("/", 1)[-1]
        if name == "log_dt":
            v.assign(rng.uniform(np.log(1e-3), np.log(1e-1), v.shape).astype(np.float32))
        elif name in ("bias", "beta", "d"):
            v.assign(rng.normal(0, 0.1, v.shape).astype(np.float32))
    return backbone
