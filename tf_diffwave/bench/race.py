"""The race: vocoding the same 1 s mel (batch 1, 6-step schedules, random weights) with this project's exports and,
when installed, with lmnt-com/diffwave's and lmnt-com/wavegrad's own PyTorch code, each contestant in a process of
its own that loads once and then vocodes when told, in rounds that take the contestants in turn.

PyTorch is never a dependency: `pip install torch==2.13.0` and `pip install --no-deps diffwave wavegrad` add the
peers (their inference modules import torchaudio only for their command lines: when it is missing, the peer's
process finds an empty stand-in package on its PYTHONPATH).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from tf_diffwave.shipped import PACKAGE_PARENT

SECONDS = 1.0
SAMPLE_RATE = 22050
SEED = 0
# how a careful user runs PyTorch on a CPU: glibc keeps large blocks instead of mapping and unmapping them per call
TUNED_MALLOC = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"}


def mel_for(n_mels, hop):
    """The race's mel: the same random log-mel values for every contestant, (1, frames, n_mels)."""
    frames = int(SECONDS * SAMPLE_RATE) // hop
    return np.random.default_rng(SEED).normal(-5.0, 2.0, (1, frames, n_mels)).astype(np.float32)


def tensorflow_contestant(export_dir, n_mels, hop, inter_op):
    """A vocoding function of a SavedModel export, in this process."""
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    mel = tf.constant(mel_for(n_mels, hop))
    return lambda: serve(mel=mel)["audio"].numpy()


def litert_contestant(path, n_mels, hop, steps):
    """A vocoding function of a LiteRT model (XNNPACK, as many threads as CPUs), in this process."""
    from tf_diffwave.serving.litert_runtime import LiteRTModel

    model = LiteRTModel(path, num_threads=os.cpu_count())
    mel = mel_for(n_mels, hop)
    rng = np.random.default_rng(SEED)
    return lambda: model(rng.standard_normal((steps, 1, mel.shape[1] * hop), np.float32), mel)


def torch_contestant(package, threads):
    """A vocoding function of lmnt's own `predict` (diffwave with its fast schedule, or wavegrad with the 6-iteration
    schedule), random weights, `threads` PyTorch threads, in this process."""
    import importlib

    torch = importlib.import_module("torch")  # optional, like the peers: never a dependency of this package

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    if package == "diffwave":
        from diffwave.inference import predict
        from diffwave.model import DiffWave
        from diffwave.params import AttrDict, params
        model, n_mels, extra = DiffWave(AttrDict(params)), params.n_mels, {"fast_sampling": True}
    else:
        from wavegrad.inference import predict
        from wavegrad.model import WaveGrad
        from wavegrad.params import AttrDict, params

        from tf_diffwave.models.wavegrad import SCHEDULES
        six = SCHEDULES["6"]
        model, n_mels, extra = WaveGrad(AttrDict(params)), 128, {"params": {"noise_schedule": six}}
    folder = tempfile.mkdtemp()
    torch.save({"model": model.state_dict()}, os.path.join(folder, "weights.pt"))
    mel = torch.from_numpy(mel_for(n_mels, params.hop_samples)[0].T.copy())
    return lambda: predict(mel, folder, device=torch.device("cpu"), **extra)


def serve(kind, *args):
    """A contestant's process: build it, vocode once (warm-up), print 'ready', then vocode once per line read and
    print the seconds it took."""
    contestant = {"tensorflow": tensorflow_contestant, "litert": litert_contestant,
                  "torch": torch_contestant}[kind](*args)
    contestant()
    print("ready", flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        contestant()
        print(time.perf_counter() - start, flush=True)


def torchaudio_stand_in(folder):
    """A folder holding an empty `torchaudio` package, for the PYTHONPATH of a PyTorch peer without torchaudio."""
    path = os.path.join(folder, "stand-ins")
    os.makedirs(os.path.join(path, "torchaudio"), exist_ok=True)
    open(os.path.join(path, "torchaudio", "__init__.py"), "w").close()
    return path


class Contestant:
    """A contestant's process, started and warmed up. What it writes to stderr (TensorFlow's start-up notices)
    goes to a file, shown only if it fails to start."""

    def __init__(self, name, env, kind, *args):
        self.name, self.times = name, []
        code = f"from tf_diffwave.bench.race import serve; serve({kind!r}, *{args!r})"
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.log, text=True, cwd=PACKAGE_PARENT,
                                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.log.seek(0)
            raise RuntimeError(f"contestant {name} did not start:\n{self.log.read()[-3000:]}")

    def run(self):
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.times.append(float(self.process.stdout.readline()) / SECONDS)

    def close(self):
        self.process.stdin.close()
        self.process.wait()
        self.log.close()


def installed(module):
    """Whether `module` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def random_weights_model(config_path, out, overrides=()):
    """A TrainedModel of `config_path`'s config (with dotted `overrides`) and random weights, written to the model
    folder `out`: for measures that do not depend on the weights (speed, the operators of an export)."""
    from tf_diffwave.bench.harness import speed_config
    from tf_diffwave.interop.model_folder import write_model_folder

    return write_model_folder(speed_config(config_path, overrides), None, 0, out, config_path, export=False)


def race(config_path, wavegrad_config_path, peers, rounds, folder, fregrad_config_path=None):
    """The race's Table: RTF min and median over `rounds` per contestant, the spread (max / min) of its
    rounds, and per round the ratio of each contestant's time to this project's float32 export's."""
    entries = vocoder_entries(config_path, "", folder, 0)
    if fregrad_config_path:
        entries += vocoder_entries(fregrad_config_path, "FreGrad", folder, 0, ("float32", "bfloat16"))
    peer_ready = {name: peers and installed("torch") and installed(name) for name in ("diffwave", "wavegrad")}
    if peer_ready["diffwave"]:
        entries += peer_entries("diffwave", "lmnt-com/diffwave", entries[0][2][0], folder)
    if wavegrad_config_path:
        entries += vocoder_entries(wavegrad_config_path, "WaveGrad", folder, 6)
        if peer_ready["wavegrad"]:
            entries += peer_entries("wavegrad", "lmnt-com/wavegrad, 6 iterations", entries[-1][2][0], folder)
    contestants, work = [], {}
    for name, env, operations, kind, *args in entries:  # started one at a time: each warms up alone
        contestants.append(Contestant(name, env, kind, *args))
        work[name] = operations
    try:
        peaks = run_rounds(contestants, rounds)
    finally:
        for contestant in contestants:
            contestant.close()
    return race_table(contestants, work, peaks, rounds)


def vocoder_entries(config_path, title, folder, iterations, precisions=None):
    """The race entries (name, environment, (operations, precision), kind, arguments) of a vocoder of the config
    with random weights: its SavedModels in `precisions` (default: float32 and bfloat16 for the main model, float32
    for the others; the main model's with and without oneDNN) and LiteRT models. `title` names a second model (""
    for the main one); `iterations`, its schedule's length (0: the config's fast schedule)."""
    from tf_diffwave.bench.arithmetic import vocoding_flops
    from tf_diffwave.serving.litert import LITERT_PRECISIONS, export_litert

    name = title.lower() or "base"
    model = random_weights_model(config_path, os.path.join(folder, name))
    n_mels, hop = model.n_mels, model.config["audio"]["hop_length"]
    steps = iterations or len(model.sampler.betas_and_steps("fast")[0])
    work = vocoding_flops(model.backbone, mel_for(n_mels, hop).shape[1], steps)
    label, suffix = f"tf-diffwave {title} ".replace("  ", " "), f", {iterations} iterations" if iterations else ""
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX; elsewhere the variable does
    onednn = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    entries = []
    for precision in precisions or (("float32",) if title else ("float32", "bfloat16")):
        path = model.export(os.path.join(folder, f"{name}-{precision}"), 1, precision)
        entries.append((f"{label}SavedModel, {precision}{suffix}", {}, (work, precision), "tensorflow", path,
                        n_mels, hop, 0))
        if not title:  # one process more per row: the second models' rows are the default's alone, so that the
            # race's processes fit in 24 GiB
            entries.append((f"{label}SavedModel, {precision}{suffix}, TF_ENABLE_ONEDNN_OPTS=1", onednn,
                            (work, precision), "tensorflow", path, n_mels, hop, 0))
    if not title:
        entries.append((f"{label}SavedModel, float32, TF_ENABLE_ONEDNN_OPTS=1, inter-op threads 1", onednn,
                        (work, "float32"), "tensorflow", entries[0][4], n_mels, hop, 1))
    for precision in LITERT_PRECISIONS:  # int8's share is of the float32 rate: its dot products are int8, the rest not
        path = export_litert(model, os.path.join(folder, f"{name}-{precision}.tflite"), precision)[0]
        entries.append((f"{label}LiteRT (XNNPACK), {precision}{suffix}", {}, (work, "float32"), "litert", path,
                        n_mels, hop, steps))
    return entries


def peer_entries(package, name, work, folder):
    """The PyTorch peer as shipped, and with glibc's malloc tuned as a careful user runs it."""
    threads = os.cpu_count()
    env = {} if installed("torchaudio") else \
        {"PYTHONPATH": os.pathsep.join(filter(None, [torchaudio_stand_in(folder), os.environ.get("PYTHONPATH")]))}
    return [(label, e, (work, "float32"), "torch", package, threads)
            for label, e in ((f"{name} (PyTorch {threads} threads)", env),
                             (f"{name} (PyTorch {threads} threads, tuned malloc)", {**env, **TUNED_MALLOC}))]


def run_rounds(contestants, rounds):
    """Run every contestant once a round, each round starting one further along; the CPU's matmul rate in float32
    and bfloat16 (GFLOP/s, best of the rounds), measured in the same rounds."""
    from tf_diffwave.bench.arithmetic import matmul_rate

    peaks = {"float32": 0.0, "bfloat16": 0.0}
    for r in range(rounds):
        for contestant in contestants[r % len(contestants):] + contestants[: r % len(contestants)]:
            contestant.run()
        for precision in peaks:
            peaks[precision] = max(peaks[precision], matmul_rate(precision, rounds=1))
    return peaks


def race_table(contestants, work, peaks, rounds):
    """The Table of the contestants' times."""
    from tf_diffwave.bench.arithmetic import PEAK_SIZE, rate_cell
    from tf_diffwave.bench.tables import Table

    threads, reference = os.cpu_count(), contestants[0].times
    table = Table(f"The race: {SECONDS:g} s of audio, batch 1, 6-step schedules, {rounds} rounds taking the "
                  f"contestants in turn (RTF: compute seconds per second of audio; lower is faster); {threads} CPUs, "
                  f"{threads} threads each. GFLOP/s: the network's work (conditioner once) per second at the best "
                  f"round, and its share of this CPU's rate in the contestant's precision ({peaks['float32']:.0f} "
                  f"float32, {peaks['bfloat16']:.0f} bfloat16 GFLOP/s by a {PEAK_SIZE}-square matmul, best of the "
                  f"rounds; int8 LiteRT models against the float32 rate, as only their dot products are int8)",
                  ["contestant", "RTF min", "RTF median", "GFLOP/s (share of peak)", "spread of rounds (max / min)",
                   "time / float32 export's, per round"])
    for c in contestants:
        operations, precision = work[c.name]
        table.add(c.name, f"{min(c.times):.2f}", f"{statistics.median(c.times):.2f}",
                  rate_cell(operations, min(c.times) * SECONDS, peaks[precision]),
                  f"{max(c.times) / min(c.times):.2f}", " ".join(f"{t / r:.2f}" for t, r in zip(c.times, reference)))
    return table
