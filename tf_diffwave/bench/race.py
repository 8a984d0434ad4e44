"""The race: vocoding the same 1 s mel (batch 1, 6-step schedules, random weights) with this project's exports and,
when installed, with lmnt-com/diffwave's and lmnt-com/wavegrad's own PyTorch code, each contestant in a process of
its own that loads once and then vocodes when told, in rounds that take the contestants in turn.

PyTorch is never a dependency: `pip install torch==2.13.0` and `pip install --no-deps diffwave wavegrad` add the
peers (their inference modules import torchaudio only for their command lines: when it is missing, the peer's
process finds an empty stand-in package on its PYTHONPATH).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

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
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.log, text=True, cwd=package_parent,
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
    from tf_diffwave.config import load_config
    from tf_diffwave.inference.checkpoints import save_ema
    from tf_diffwave.inference.model import TrainedModel
    from tf_diffwave.models.registry import build_backbone

    config = load_config(config_path, list(overrides))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    save_ema(build_backbone(config).model, 0, out)
    return TrainedModel(out)


def race(config_path, wavegrad_config_path, peers, rounds, folder):
    """The race's Table: RTF min and median over `rounds` per contestant, the spread (max / min) of its
    rounds, and per round the ratio of each contestant's time to this project's float32 export's."""
    from tf_diffwave.bench.arithmetic import PEAK_SIZE, matmul_rate, rate_cell, vocoding_flops
    from tf_diffwave.bench.tables import Table
    from tf_diffwave.serving.litert import LITERT_PRECISIONS, export_litert

    threads = os.cpu_count()

    base = random_weights_model(config_path, os.path.join(folder, "base"))
    n_mels, hop = base.n_mels, base.config["audio"]["hop_length"]
    steps = len(base.sampler.betas_and_steps("fast")[0])
    work = vocoding_flops(base.backbone, mel_for(n_mels, hop).shape[1], steps)
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX; elsewhere the variable does
    onednn = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    entries = []  # (name, environment, (operations, precision), kind, arguments)
    for precision in ("float32", "bfloat16"):
        path = base.export(os.path.join(folder, precision), 1, precision)
        entries.append((f"tf-diffwave SavedModel, {precision}", {}, (work, precision), "tensorflow", path, n_mels,
                        hop, 0))
        entries.append((f"tf-diffwave SavedModel, {precision}, TF_ENABLE_ONEDNN_OPTS=1", onednn, (work, precision),
                        "tensorflow", path, n_mels, hop, 0))
    entries.append(("tf-diffwave SavedModel, float32, TF_ENABLE_ONEDNN_OPTS=1, inter-op threads 1", onednn,
                    (work, "float32"), "tensorflow", os.path.join(folder, "float32", "1"), n_mels, hop, 1))
    for precision in LITERT_PRECISIONS:  # int8's share is of the float32 rate: its dot products are int8, the rest not
        entries.append((f"tf-diffwave LiteRT (XNNPACK), {precision}", {}, (work, "float32"), "litert",
                        export_litert(base, os.path.join(folder, f"base-{precision}.tflite"), precision)[0], n_mels,
                        hop, steps))
    torch_env = {} if installed("torchaudio") else \
        {"PYTHONPATH": os.pathsep.join(filter(None, [torchaudio_stand_in(folder), os.environ.get("PYTHONPATH")]))}
    peer_ready = {"diffwave": peers and installed("torch") and installed("diffwave"),
                  "wavegrad": peers and installed("torch") and installed("wavegrad")}

    def peer_entries(package, name, peer_work):
        """The PyTorch peer as shipped, and with glibc's malloc tuned as a careful user runs it."""
        for label, env in ((f"{name} (PyTorch {threads} threads)", torch_env),
                           (f"{name} (PyTorch {threads} threads, tuned malloc)", {**torch_env, **TUNED_MALLOC})):
            entries.append((label, env, (peer_work, "float32"), "torch", package, threads))

    if peer_ready["diffwave"]:
        peer_entries("diffwave", "lmnt-com/diffwave", work)
    if wavegrad_config_path:
        wavegrad = random_weights_model(wavegrad_config_path, os.path.join(folder, "wavegrad"))
        path = wavegrad.export(os.path.join(folder, "wavegrad"), 1)
        w_mels, w_hop = wavegrad.n_mels, wavegrad.config["audio"]["hop_length"]
        w_work = vocoding_flops(wavegrad.backbone, mel_for(w_mels, w_hop).shape[1], 6)
        entries.append(("tf-diffwave WaveGrad SavedModel, float32, 6 iterations", {}, (w_work, "float32"),
                        "tensorflow", path, w_mels, w_hop, 0))
        entries.append(("the same, TF_ENABLE_ONEDNN_OPTS=1", onednn, (w_work, "float32"), "tensorflow", path, w_mels,
                        w_hop, 0))
        for precision in LITERT_PRECISIONS:
            entries.append((f"tf-diffwave WaveGrad LiteRT (XNNPACK), {precision}, 6 iterations", {},
                            (w_work, "float32"), "litert",
                            export_litert(wavegrad, os.path.join(folder, f"wavegrad-{precision}.tflite"), precision)[0],
                            w_mels, w_hop, 6))
        if peer_ready["wavegrad"]:
            peer_entries("wavegrad", "lmnt-com/wavegrad, 6 iterations", w_work)
    contestants, work = [], {}
    for name, env, operations, kind, *args in entries:  # started one at a time: each warms up alone
        contestants.append(Contestant(name, env, kind, *args))
        work[name] = operations
    peaks = {"float32": 0.0, "bfloat16": 0.0}
    try:
        for r in range(rounds):
            order = contestants[r % len(contestants):] + contestants[: r % len(contestants)]
            for contestant in order:
                contestant.run()
            for precision in peaks:  # the CPU's rate, in the same rounds as the contestants
                peaks[precision] = max(peaks[precision], matmul_rate(precision, rounds=1))
    finally:
        for contestant in contestants:
            contestant.close()
    reference = contestants[0].times
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
