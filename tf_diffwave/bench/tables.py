"""Speed benchmark on this machine: python -m tf_diffwave.bench.tables [--peers] [--config CFG] [--repeats N]

Prints first the race (bench_peers: this project's float32 and bfloat16 SavedModels and its LiteRT model, and with
--peers lmnt-com/diffwave and lmnt-com/wavegrad if installed, in interleaved rounds); then a Markdown table of
real-time factors (compute seconds per second of audio; lower is faster) for vocoding 1 s and 5 s of audio with
the fast and full schedules, the time and peak memory of vocoding a long input (60 s, chunked), and training
steps/s at batch 16 x 15872 samples, beside the figures measured for lmnt-com/diffwave (PyTorch, CPU, 2 threads)
on the same kind of 2-core machine; then, for the unconditional SC09 model, seconds
of audio generated per compute second at batch 1 and 16 with the fast and full schedules; the time and memory
of one S4 layer's kernel, forward and backward, at H = 64, 128, 256 and L = 16000, with this project's chunked
Cauchy routine and with the naive broadcast; one training step of the small SaShiMi config at batch 1 and 4; and
the vocoding RTFs of a BASE model converted from lmnt-com/diffwave beside the native BASE model.
The weights are random: speed does not depend on them. Nothing about threads or allocators is changed in this
process (the race's contestants set their own, in theirs).
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from tf_diffwave.config import load_config
from tf_diffwave.diffusion.samplers import Sampler, SamplingOptions
from tf_diffwave.diffusion.synthesizer import Synthesizer
from tf_diffwave.inference.model import PRECISION_POLICIES
from tf_diffwave.interop.lmnt import LMNT_DEFAULTS, lmnt_config
from tf_diffwave.models.registry import build_backbone
from tf_diffwave.models.s4 import S4Layer, woodbury_spectrum
from tf_diffwave.shipped import shipped_path
from tf_diffwave.training.trainer import Trainer

# lmnt-com/diffwave on this 2-core machine: as shipped / glibc malloc tuned / tuned + torch.compile (issue 2)
REFERENCE = {("vocode", 1, "fast"): "5.8 / 4.3 / 3.6", ("vocode", 1, "full"): "46.7 / 35.9",
             ("vocode", 5, "fast"): "9.8 / 4.05", ("train", 16, ""): "1/63 to 1/39 steps/s"}
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # imports tf_diffwave in a clone too


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


def bench_vocoder(backbone, sampler, sample_rate, seconds, schedule, repeats, options=SamplingOptions()):
    """Real-time factor of vocoding `seconds` of audio (batch 1)."""
    hop = backbone.hop_length
    mel = tf.random.normal([1, int(seconds * sample_rate) // hop, backbone.n_mels], -5.0, 2.0)
    betas, steps = sampler.betas_and_steps(schedule)
    synth = Synthesizer(backbone, options=options)
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
    code = f"from tf_diffwave.bench.tables import {function}; print(*{function}(*{args!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_PARENT, capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()[-2:]]


def long_input_run(config_path, seconds, precision="float32", whole_conditioner=False):
    """RTF and peak resident memory (GiB) of vocoding `seconds` of audio with the fast schedule, in this process,
    with the networks in `precision`; `whole_conditioner` runs the chunks with the conditioner and denoiser
    themselves (the conditioner's whole output held per chunk) instead of the backbone's chunk networks."""
    config = load_config(config_path)
    backbone = build_backbone(config, PRECISION_POLICIES[precision])
    if whole_conditioner:
        backbone.chunk_networks = lambda: (backbone.conditioner, backbone.denoiser)
    rtf = bench_vocoder(backbone, Sampler.from_config(config["diffusion"], backbone.family), config["audio"]["sample_rate"],
                        seconds, "fast", repeats=0)
    return rtf, peak_memory() / 2 ** 30


def bench_long_input(config_path, seconds):
    """The long-input table: RTF (first call, tracing included) and peak memory of vocoding `seconds` of audio,
    each way in a new process."""
    print(f"\nVocoding {seconds:g} s of audio, batch 1, fast schedule, chunks of 512 frames, each row in a new "
          f"process (RTF of the first call, tracing included; peak resident memory, VmHWM)\n")
    print("| chunk networks | precision | RTF | peak memory |")
    print("| --- | --- | --- | --- |")
    for whole, precision in ((True, "float32"), (False, "float32"), (False, "bfloat16")):
        rtf, peak = in_fresh_process("long_input_run", config_path, seconds, precision, whole)
        networks = "conditioner output held per chunk" if whole else "the backbone's chunk networks"
        print(f"| {networks} | {precision} | {rtf:.2f} | {peak:.2f} GiB |")


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



def bench_s4(length=16000, widths=(64, 128, 256), broadcast_limit_mib=3100):
    """The S4 table: one layer's kernel, forward and backward (independent of the batch), with this layer's chunked
    Cauchy routine and with the naive broadcast, each run in a new process. The broadcast runs only where its
    tensor of terms is at most `broadcast_limit_mib` (its peak is about 4 times that)."""
    print(f"\nS4 kernel of one layer, N = 64, L = {length}, forward + backward: seconds and peak memory growth\n")
    print("| H | kernel | chunked (this layer) | broadcast Cauchy sum | broadcast tensor of terms |")
    print("| --- | --- | --- | --- | --- |")
    for d_model in widths:
        for bidirectional in (False, True):
            tensor = (6 if bidirectional else 4) * d_model * 64 * (length // 2 + 1) * 8 / 2 ** 20
            cells = []
            for routine in ("chunked", "broadcast"):
                if routine == "broadcast" and tensor > broadcast_limit_mib:
                    cells.append("not run (machine memory)")
                    continue
                seconds, mib = in_fresh_process("s4_kernel_run", d_model, length, bidirectional, routine)
                cells.append(f"{seconds:.2f} s, {mib:,.0f} MiB")
            print(f"| {d_model} | {'bidirectional' if bidirectional else 'causal'} | {cells[0]} | {cells[1]} "
                  f"| {tensor:,.0f} MiB |")


def bench_sashimi_training(config_path, repeats):
    """The SaShiMi training table: one step at batch 1 and 4, each in a new process."""
    print(f"\nTraining {config_path}, one step (best of {repeats} after a warm-up), each batch size in a new "
          f"process\n")
    print("| batch | seconds per step | peak memory (RSS) |")
    print("| --- | --- | --- |")
    for batch in (1, 4):
        seconds, gib = in_fresh_process("training_step_run", config_path, [
            f"data.path={shipped_path('data/sc09-demo')}", f"train.batch_size={batch}"], repeats)
        print(f"| {batch} | {seconds:.2f} | {gib:.2f} GiB |")


def bench_vocoder_table(args):
    """The vocoder table: RTFs, the long input, training speed."""
    config = load_config(args.config)
    backbone = build_backbone(config)
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    rate = config["audio"]["sample_rate"]
    print(f"config {args.config}: {backbone.model.count_params():,} parameters, "
          f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}\n")
    print("| measure | tf-diffwave | lmnt-com/diffwave (shipped / tuned / compiled) |")
    print("| --- | --- | --- |")
    for seconds, schedule in ((1, "fast"), (5, "fast"), (1, "full")):
        rtf = bench_vocoder(backbone, sampler, rate, seconds, schedule, args.repeats)
        print(f"| RTF, {seconds} s audio, {schedule} schedule | {rtf:.2f} | {REFERENCE[('vocode', seconds, schedule)]} |")
    if not args.skip_training:
        samples = config["data"]["crop_frames"] * config["audio"]["hop_length"]
        rate_steps = 1.0 / training_step_run(args.config, vocoder_training_overrides(args.micro_batches), 1)[0]
        print(f"| training steps/s, batch 16 x {samples} ({args.micro_batches} micro-batches) | {rate_steps:.4f} "
              f"| {REFERENCE[('train', 16, '')]} |")
        bench_training_options(args.config, args.micro_batches)


def bench_converted(rounds, repeats):
    """RTFs of the BASE model converted from lmnt-com/diffwave (lmnt's params as the converter turns them into a
    config: lmnt's float32 step table, clipping after every step) beside the native BASE model, measured in turns,
    best of `rounds`."""
    models = {"native": load_config(shipped_path("configs/ljspeech.json")),
              "converted": lmnt_config(LMNT_DEFAULTS, "lmnt-com/diffwave BASE")}
    backbones = {name: build_backbone(c) for name, c in models.items()}
    built = {name: (backbone, Sampler.from_config(models[name]["diffusion"], backbone.family), models[name])
             for name, backbone in backbones.items()}
    measures = ((1, "fast"), (5, "fast"), (1, "full"))
    best = {(name, m): float("inf") for name in models for m in measures}
    for _ in range(rounds):
        for m in measures:
            for name, (backbone, sampler, config) in built.items():
                rtf = bench_vocoder(backbone, sampler, config["audio"]["sample_rate"], *m, repeats,
                                    SamplingOptions.from_config(config["diffusion"]))
                best[name, m] = min(best[name, m], rtf)
    counts = {name: backbone.model.count_params() for name, (backbone, _, _) in built.items()}
    print(f"\nBASE converted from an lmnt-com/diffwave checkpoint against native BASE ({counts['converted']:,} and "
          f"{counts['native']:,} parameters), RTF, best of {rounds} rounds taken in turns\n")
    print("| measure | native BASE | converted from lmnt |")
    print("| --- | --- | --- |")
    for seconds, schedule in measures:
        print(f"| RTF, {seconds} s audio, {schedule} schedule | {best['native', (seconds, schedule)]:.3f} "
              f"| {best['converted', (seconds, schedule)]:.3f} |")


def bench_wavegrad(config_path, repeats, micro_batches):
    """The WaveGrad table: RTF of vocoding 1 s with its 6- and 50-iteration schedules (batch 1), and training
    steps/s at batch 16 on the demo corpus."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    options = SamplingOptions.from_config(config["diffusion"])
    print(f"\nWaveGrad, config {config_path}: {backbone.model.count_params():,} parameters\n")
    print("| measure | tf-diffwave |")
    print("| --- | --- |")
    for schedule in ("6", "50"):
        rtf = bench_vocoder(backbone, sampler, config["audio"]["sample_rate"], 1, schedule, repeats, options)
        print(f"| RTF, 1 s audio, {schedule} iterations | {rtf:.2f} |")
    samples = config["data"]["crop_frames"] * config["audio"]["hop_length"]
    seconds = in_fresh_process("training_step_run", config_path, vocoder_training_overrides(micro_batches), 1)[0]
    print(f"| training steps/s, batch 16 x {samples} ({micro_batches} micro-batches) | {1.0 / seconds:.4f} |")


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


def bench_autoregressive(config_path, repeats, rounds=3, length=16000, block=1024):
    """The autoregressive SaShiMi table: recurrent generation (dense and diagonal S4 steps, best of `rounds`) in
    samples per second, and its cost per sample in the second and in the last whole `block` of samples of a clip
    (timed within one generation); against re-running the convolutional model on the growing prefix (the naive
    way); and one training step."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    last = length // block - 1
    print(f"\nAutoregressive SaShiMi, config {config_path}: {backbone.model.count_params():,} parameters; "
          f"best of {rounds} rounds\n")
    print(f"| generation | samples/s | ms per step, samples {block}-{2 * block} "
          f"| ms per step, samples {last * block}-{(last + 1) * block} |")
    print("| --- | --- | --- | --- |")
    for mode in ("dense", "diagonal"):
        for batch, samples in ((1, length), (16, 4 * block)):
            whole, blocks = recurrent_generation_run(config_path, mode, batch, samples, rounds, block)
            late = f"{1e3 * blocks[-1] / block:.3f}" if batch == 1 else ""
            print(f"| recurrent, {mode} S4 step, batch {batch} | {batch * samples / whole:,.0f} "
                  f"| {1e3 * blocks[1] / block:.3f} | {late} |")
    model = backbone.model
    for prefix in (block, last * block):  # the naive way: the whole prefix through the convolutional model
        tokens = tf.zeros([1, prefix], tf.int32)
        seconds = time_call(lambda: model(tokens).numpy(), repeats)
        print(f"| convolutional model on the prefix, at sample {prefix}, batch 1 | {1 / seconds:.2f} "
              f"| {1e3 * seconds:.1f} | |")
    seconds, gib = in_fresh_process("training_step_run", config_path, [
        f"data.path={shipped_path('data/sc09-demo')}", "train.batch_size=1"], repeats)
    print(f"| training step, batch 1 x {config['model']['audio_length']} samples | {seconds:.2f} s per step "
          f"| peak memory {gib:.2f} GiB | |")


def bench_training_options(config_path, micro_batches):
    """Training steps/s with and without mixed precision and XLA, each in a new process (best of 1 after a
    warm-up; the XLA warm-up includes compiling)."""
    print(f"\nTraining options, {config_path}, batch 16 ({micro_batches} micro-batches), each in a new process\n")
    print("| train. options | steps/s |")
    print("| --- | --- |")
    for options in ([], ["train.mixed_precision=true"], ["train.jit_compile=true"]):
        rate = 1.0 / in_fresh_process("training_step_run", config_path,
                                      vocoder_training_overrides(micro_batches, options), 1)[0]
        print(f"| {' '.join(o.split('.', 1)[1] for o in options) or 'float32, no XLA'} | {rate:.4f} |")


def bench_sc09(config_path, repeats):
    """The SC09 table: seconds of audio generated per compute second, fast and full schedules, batch 1 and 16."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    length, rate = config["model"]["audio_length"], config["audio"]["sample_rate"]
    print(f"\nconfig {config_path}: {backbone.model.count_params():,} parameters, {length / rate:g} s clips\n")
    print("| batch | seconds per denoising step | generated audio s / compute s, fast schedule "
          "| same, full schedule |")
    print("| --- | --- | --- | --- |")
    for batch in (1, 16):
        step = seconds_per_denoising_step(backbone, batch, length, repeats if batch == 1 else 1)
        audio = batch * length / rate
        fast, full = (len(sampler.betas_and_steps(which)[0]) for which in ("fast", "full"))
        print(f"| {batch} | {step:.2f} | {audio / (fast * step):.4f} ({fast} steps) "
              f"| {audio / (full * step):.5f} ({full} steps) |")


