"""Measurements for the benchmark tables: timing, peak memory, runs in fresh processes, and the pieces they time
(vocoding, denoising steps, training steps, S4 kernels with either Cauchy routine, autoregressive generation).
The weights are random: speed does not depend on them."""

import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from tf_diffwave.config import load_config
from tf_diffwave.diffusion.samplers import Sampler
from tf_diffwave.diffusion.synthesizer import Synthesizer
from tf_diffwave.models.registry import PRECISION_POLICIES, build_backbone
from tf_diffwave.models.s4 import S4Layer, woodbury_spectrum
from tf_diffwave.shipped import PACKAGE_PARENT, shipped_path
from tf_diffwave.training.trainer import Trainer


def speed_config(config_path, overrides=()):
    """The config of `config_path` (with dotted `overrides`) for measures that do not depend on the weights or the
    data: a data-dependent prior's energy statistics, computed from a corpus in training, are LJSpeech's
    (PriorGrad's) when the config has none."""
    config = load_config(config_path, list(overrides))
    if config["diffusion"]["prior"] != "standard" and config["diffusion"]["energy_min"] is None:
        config["diffusion"].update(energy_min=0.028, energy_max=4.88)
    return config


def time_call(fn, repeats):
    """Best wall time of `repeats` calls after one warm-up call (which also traces the graph); with no repeats, the
    time of that first call."""
    start = time.perf_counter()
    fn()
    best = time.perf_counter() - start if repeats == 0 else float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_vocoder(backbone, sampler, config, seconds, schedule, repeats, chunk_networks=None):
    """Real-time factor of vocoding `seconds` of audio (batch 1), sampling as the config says (its options and
    prior), long inputs with the networks `chunk_networks()` gives if given (see Synthesizer)."""
    hop, sample_rate = backbone.hop_length, config["audio"]["sample_rate"]
    mel = tf.random.normal([1, int(seconds * sample_rate) // hop, backbone.n_mels], -5.0, 2.0)
    betas, steps = sampler.betas_and_steps(schedule)
    synth = Synthesizer.from_config(backbone, config, chunk_networks=chunk_networks)
    seeds = tf.zeros([1], tf.int64)
    elapsed = time_call(lambda: synth.vocode(mel, betas, steps, seeds).numpy(), repeats)
    return elapsed / (mel.shape[1] * hop / sample_rate)


def seconds_per_denoising_step(backbone, batch, length, repeats):
    """Compute seconds of one denoising step of an unconditional model on a batch of clips.

    Every step of the reverse process runs the same network on the same shapes, so a 1-step process (noise
    draws included) times one step of any schedule."""
    synth = Synthesizer(backbone)
    seeds = tf.range(batch, dtype=tf.int64)
    betas, steps = tf.constant([1e-4]), tf.constant([0.0])
    return time_call(lambda: synth.generate(seeds, length, betas, steps).numpy(), repeats)


def peak_memory():
    """This process's peak resident memory in bytes (VmHWM: unlike getrusage's ru_maxrss, it does not carry over
    the parent's peak into a process started from a large one)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def broadcast_cauchy(v, w, omega):
    """The naive Cauchy sums for comparison: the whole (H, rows, N, K) tensor of terms at once, then a sum."""
    g = 2.0 / (2.0 * (1.0 - omega)[None, None, :] - (1.0 + omega)[None, None, :] * w[:, :, None])
    return tf.reduce_sum(v[:, :, :, None] * g[:, None], axis=2)


def broadcast_spectrum(v, w, omega_chunks, differentiate_w=True):
    """kernel_spectrum's result, all frequencies at once with broadcast sums and plain autodiff (which
    differentiates only what is asked for, so `differentiate_w` needs no handling)."""
    chunks, size = omega_chunks.shape
    spectrum = woodbury_spectrum(v, w, tf.reshape(omega_chunks, [-1]), cauchy_sums=broadcast_cauchy)
    return tf.transpose(tf.reshape(spectrum, [spectrum.shape[0], spectrum.shape[1], chunks, size]), [2, 0, 1, 3])


def s4_kernel_run(d_model, length, bidirectional, routine):
    """Seconds of one forward + backward pass of an S4 layer's kernel (after a warm-up) and the growth of peak
    resident memory (MiB) over the process before the first pass, in this process. `routine` is "chunked" (the
    layer's own) or "broadcast" (the naive form)."""
    spectrum = broadcast_spectrum if routine == "broadcast" else None
    layer = S4Layer(d_model, length, state_size=64, bidirectional=bidirectional)
    layer.build((None, None, d_model))

    @tf.function
    def kernel_and_gradients():
        with tf.GradientTape() as tape:
            k = layer.kernel(spectrum=spectrum)
            loss = tf.reduce_sum(k * k)
        return tape.gradient(loss, [layer.c, *layer.ssm_variables])

    before = peak_memory()
    seconds = time_call(lambda: [g.numpy() for g in kernel_and_gradients()], 1)
    return seconds, (peak_memory() - before) / 2 ** 20


def in_fresh_process(function, *args):
    """Run a function of this module in a new Python process (so that its peak memory is its own); its results."""
    code = f"from tf_diffwave.bench.harness import {function}; print(*{function}(*{args!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_PARENT, capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()[-2:]]


def long_input_run(config_path, seconds, precision="float32", whole_conditioner=False):
    """RTF and peak resident memory (GiB) of vocoding `seconds` of audio with the fast schedule, in this process,
    with the networks in `precision`; `whole_conditioner` runs the chunks with the conditioner and denoiser
    themselves (the conditioner's whole output held per chunk) instead of the backbone's chunk networks."""
    config = load_config(config_path)
    backbone = build_backbone(config, PRECISION_POLICIES[precision])
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    whole = (lambda: (backbone.conditioner, backbone.denoiser)) if whole_conditioner else None
    rtf = bench_vocoder(backbone, sampler, config, seconds, "fast", repeats=0, chunk_networks=whole)
    return rtf, peak_memory() / 2 ** 30


def training_step_run(config_path, overrides, repeats):
    """Seconds of one step of the real trainer (input pipeline, forward, backward, clipping, Adam, EMA) for a config
    with overrides, outside any run folder, and this process's peak resident memory (GiB)."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(load_config(config_path, [*overrides, f"train.model_dir={run_dir}"]))
        iterator = iter(trainer.dataset(0))
        step = tf.function(trainer.train_step)
        return time_call(lambda: step(iterator)[0].numpy(), repeats), peak_memory() / 2 ** 30


def vocoder_training_overrides(micro_batches, extra=()):
    """Batch 16 on the bundled demo corpus (mels computed on the fly) in `micro_batches` parts, then `extra`."""
    return [f"data.path={shipped_path('data/ljspeech-demo')}", "data.mel_dir=", "data.valid_count=1",
            "train.batch_size=16", f"train.micro_batches={micro_batches}", *extra]



def recurrent_generation_run(config_path, mode, batch, length, rounds, block=1024):
    """(seconds of generating `length` samples, seconds of each `block` of samples within that generation) with an
    AR model in step mode `mode`, at `batch` clips, in this process: best of `rounds` (after a short warm-up call
    that traces the graph), the blocks timed by the sampler's progress reports."""
    config = load_config(config_path, [f"model.ar_sashimi.step_mode={mode}"])
    sampler = build_backbone(config).own_sampler(config)
    seeds, systems = np.arange(batch, dtype=np.int64), sampler.step_systems()
    marks = []

    def record(done):  # one callback for every call: a new one would trace the graph again
        marks.append(time.perf_counter())

    sampler.generate(seeds, 16, systems=systems, on_sample=record).numpy()
    whole, blocks = float("inf"), None
    for _ in range(rounds):
        marks[:] = [time.perf_counter()]
        sampler.generate(seeds, length, systems=systems, on_sample=record)
        whole = min(whole, time.perf_counter() - marks[0])
        durations = np.diff(marks)[: length // block]
        blocks = durations if blocks is None else np.minimum(blocks, durations)
    return whole, blocks
