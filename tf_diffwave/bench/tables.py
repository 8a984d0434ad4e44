"""The benchmark tables, each measured and returned as a `Table` (the bench command prints them): real-time factors
(compute seconds per second of audio; lower is faster) of vocoding 1 s and 5 s with the fast and full schedules and
training steps/s at batch 16, beside the figures measured for lmnt-com/diffwave (PyTorch, CPU, 2 threads) on the
same kind of 2-core machine; the time and peak memory of vocoding a long input; the unconditional SC09 model's
generation speed; one S4 layer's kernel with the chunked Cauchy routine and the naive broadcast; SaShiMi and
WaveGrad training and vocoding; a BASE model converted from lmnt-com/diffwave beside the native one; the cost of
PriorGrad's prior; the autoregressive SaShiMi's generation. Nothing about threads or allocators is changed in this
process.
"""

import os

import tensorflow as tf

from tf_diffwave.bench.arithmetic import PEAK_SIZE, matmul_rate, rate_cell, vocoding_flops
from tf_diffwave.bench.harness import (
    bench_vocoder,
    in_fresh_process,
    recurrent_generation_run,
    seconds_per_denoising_step,
    speed_config,
    time_call,
    vocoder_training_overrides,
)
from tf_diffwave.config import load_config
from tf_diffwave.diffusion.samplers import Sampler
from tf_diffwave.interop.lmnt import LMNT_DEFAULTS, lmnt_config
from tf_diffwave.models.registry import build_backbone
from tf_diffwave.shipped import shipped_path

# lmnt-com/diffwave on a 2-core machine: as shipped / glibc malloc tuned / tuned + torch.compile (docs/benchmarks.md)
REFERENCE = {("vocode", 1, "fast"): "5.8 / 4.3 / 3.6", ("vocode", 1, "full"): "46.7 / 35.9",
             ("vocode", 5, "fast"): "9.8 / 4.05", ("train", 16, ""): "1/63 to 1/39 steps/s"}


class Table:
    """A table of results: a title, column names and rows of cells (strings)."""

    def __init__(self, title, columns):
        self.title, self.columns, self.rows = title, list(columns), []

    def add(self, *cells):
        self.rows.append([str(cell) for cell in cells])

    def markdown(self):
        """The table in Markdown, its title first."""
        lines = [self.title, "", "| " + " | ".join(self.columns) + " |", "|" + " --- |" * len(self.columns)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in self.rows])


def long_input_table(config_path, seconds):
    """RTF (first call, tracing included) and peak memory of vocoding `seconds` of audio, each way in a new
    process."""
    table = Table(f"Vocoding {seconds:g} s of audio, batch 1, fast schedule, chunks of 512 frames, each row in a new "
                  f"process (RTF of the first call, tracing included; peak resident memory, VmHWM)",
                  ["chunk networks", "precision", "RTF", "peak memory"])
    for whole, precision in ((True, "float32"), (False, "float32"), (False, "bfloat16")):
        rtf, peak = in_fresh_process("long_input_run", config_path, seconds, precision, whole)
        networks = "conditioner output held per chunk" if whole else "the backbone's chunk networks"
        table.add(networks, precision, f"{rtf:.2f}", f"{peak:.2f} GiB")
    return table


def s4_table(length=16000, widths=(64, 128, 256), broadcast_limit_mib=3100):
    """One S4 layer's kernel, forward and backward (independent of the batch), with this layer's chunked Cauchy
    routine and with the naive broadcast, each run in a new process. The broadcast runs only where its tensor of
    terms is at most `broadcast_limit_mib` (its peak is about 4 times that)."""
    table = Table(f"S4 kernel of one layer, N = 64, L = {length}, forward + backward: seconds and peak memory growth",
                  ["H", "kernel", "chunked (this layer)", "broadcast Cauchy sum", "broadcast tensor of terms"])
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
            table.add(d_model, "bidirectional" if bidirectional else "causal", *cells, f"{tensor:,.0f} MiB")
    return table


def sashimi_training_table(config_path, repeats):
    """One training step of a SaShiMi config at batch 1 and 4, each in a new process."""
    table = Table(f"Training {config_path}, one step (best of {repeats} after a warm-up), each batch size in a new "
                  f"process", ["batch", "seconds per step", "peak memory (RSS)"])
    for batch in (1, 4):
        seconds, gib = in_fresh_process("training_step_run", config_path, [
            f"data.path={shipped_path('data/sc09-demo')}", f"train.batch_size={batch}"], repeats)
        table.add(batch, f"{seconds:.2f}", f"{gib:.2f} GiB")
    return table


def vocoder_table(config_path, repeats, micro_batches, training=True):
    """RTFs of a vocoder config and, with `training`, its training steps/s, beside lmnt-com/diffwave's."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    peak = matmul_rate("float32")
    table = Table(f"config {config_path}: {backbone.model.count_params():,} parameters, {os.cpu_count()} CPUs, "
                  f"TensorFlow {tf.__version__}; GFLOP/s of the work the network needs (conditioner once) and its "
                  f"share of this CPU's float32 rate, {peak:.0f} GFLOP/s by a {PEAK_SIZE}-square matmul in this run",
                  ["measure", "tf-diffwave", "GFLOP/s (share of peak)",
                   "lmnt-com/diffwave (shipped / tuned / compiled)"])
    for seconds, schedule in ((1, "fast"), (5, "fast"), (1, "full")):
        table.add(f"RTF, {seconds} s audio, {schedule} schedule",
                  *timed_vocoding(backbone, sampler, config, seconds, schedule, repeats, peak),
                  REFERENCE["vocode", seconds, schedule])
    if training:
        samples = config["data"]["crop_frames"] * config["audio"]["hop_length"]
        seconds = in_fresh_process("training_step_run", config_path, vocoder_training_overrides(micro_batches), 1)[0]
        table.add(f"training steps/s, batch 16 x {samples} ({micro_batches} micro-batches)", f"{1.0 / seconds:.4f}",
                  "", REFERENCE["train", 16, ""])
    return table


def timed_vocoding(backbone, sampler, config, seconds, schedule, repeats, peak):
    """(RTF, GFLOP/s cell) of vocoding `seconds` of audio with a schedule, against `peak` GFLOP/s."""
    rtf = bench_vocoder(backbone, sampler, config, seconds, schedule, repeats)
    frames = int(seconds * config["audio"]["sample_rate"]) // backbone.hop_length
    flops = vocoding_flops(backbone, frames, len(sampler.betas_and_steps(schedule)[0]))
    return f"{rtf:.2f}", rate_cell(flops, rtf * seconds, peak)


def training_options_table(config_path, micro_batches):
    """Training steps/s with and without mixed precision and XLA, each in a new process (best of 1 after a
    warm-up; the XLA warm-up includes compiling)."""
    table = Table(f"Training options, {config_path}, batch 16 ({micro_batches} micro-batches), each in a new process",
                  ["train. options", "steps/s"])
    for options in ([], ["train.mixed_precision=true"], ["train.jit_compile=true"]):
        seconds = in_fresh_process("training_step_run", config_path,
                                   vocoder_training_overrides(micro_batches, options), 1)[0]
        table.add(" ".join(o.split(".", 1)[1] for o in options) or "float32, no XLA", f"{1.0 / seconds:.4f}")
    return table


def interleaved_rtfs(configs, measures, rounds, repeats):
    """{(name, (seconds, schedule)): best RTF} of the models {name: config} measured in turns (every model for one
    measure, then the next measure, the order reversed every other round so that none always runs first), best of
    `rounds`, so that the machine's drift touches them alike; and {name: parameter count}."""
    built = {}
    for name, config in configs.items():
        backbone = build_backbone(config)
        built[name] = (backbone, Sampler.from_config(config["diffusion"], backbone.family), config)
    best = {(name, m): float("inf") for name in configs for m in measures}
    for r in range(rounds):
        for m in measures:
            for name, (backbone, sampler, config) in list(built.items())[::1 if r % 2 == 0 else -1]:
                best[name, m] = min(best[name, m], bench_vocoder(backbone, sampler, config, *m, repeats))
    return best, {name: backbone.model.count_params() for name, (backbone, _, _) in built.items()}


def converted_table(rounds, repeats):
    """RTFs of the BASE model converted from lmnt-com/diffwave (lmnt's params as the converter turns them into a
    config: lmnt's float32 step table, clipping after every step) beside the native BASE model, measured in turns,
    best of `rounds`."""
    measures = ((1, "fast"), (5, "fast"), (1, "full"))
    best, counts = interleaved_rtfs({"native": load_config(shipped_path("configs/ljspeech.json")),
                                     "converted": lmnt_config(LMNT_DEFAULTS, "lmnt-com/diffwave BASE")},
                                    measures, rounds, repeats)
    table = Table(f"BASE converted from an lmnt-com/diffwave checkpoint against native BASE ({counts['converted']:,} "
                  f"and {counts['native']:,} parameters), RTF, best of {rounds} rounds taken in turns",
                  ["measure", "native BASE", "converted from lmnt"])
    for m in measures:
        table.add(f"RTF, {m[0]} s audio, {m[1]} schedule", f"{best['native', m]:.3f}", f"{best['converted', m]:.3f}")
    return table


def prior_table(config_path, rounds, repeats):
    """RTFs of a vocoder config sampling from the standard prior and from PriorGrad's (its std computed from the mel
    in the graph, clamping after every step), measured in turns, best of `rounds`, and the prior's cost."""
    config = load_config(config_path)
    measures = ((1, "fast"), (5, "fast"))
    priorgrad = load_config(config_path, ["diffusion.prior=priorgrad", "diffusion.energy_min=0.03",
                                          "diffusion.energy_max=4.5"])
    best, _ = interleaved_rtfs({"standard": load_config(config_path, ["diffusion.prior=standard"]),
                                "priorgrad": priorgrad}, measures, rounds, repeats)
    table = Table(f"The prior's cost, config {config_path} ({config['model']['backbone']}), RTF, best of {rounds} "
                  f"rounds taken in turns", ["measure", "standard prior", "PriorGrad prior", "cost"])
    for m in measures:
        standard, prior = best["standard", m], best["priorgrad", m]
        table.add(f"RTF, {m[0]} s audio, {m[1]} schedule", f"{standard:.3f}", f"{prior:.3f}",
                  f"{100 * (prior / standard - 1):+.1f}%")
    return table


def wavegrad_table(config_path, repeats, micro_batches):
    """RTF of vocoding 1 s with WaveGrad's 6- and 50-iteration schedules (batch 1), and training steps/s at batch 16
    on the demo corpus."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    peak = matmul_rate("float32")
    table = Table(f"WaveGrad, config {config_path}: {backbone.model.count_params():,} parameters; GFLOP/s of the "
                  f"network's work and its share of this CPU's float32 rate, {peak:.0f} GFLOP/s in this run",
                  ["measure", "tf-diffwave", "GFLOP/s (share of peak)"])
    for schedule in ("6", "50"):
        table.add(f"RTF, 1 s audio, {schedule} iterations",
                  *timed_vocoding(backbone, sampler, config, 1, schedule, repeats, peak))
    samples = config["data"]["crop_frames"] * config["audio"]["hop_length"]
    seconds = in_fresh_process("training_step_run", config_path, vocoder_training_overrides(micro_batches), 1)[0]
    table.add(f"training steps/s, batch 16 x {samples} ({micro_batches} micro-batches)", f"{1.0 / seconds:.4f}", "")
    return table


def autoregressive_table(config_path, repeats, rounds=3, length=16000, block=1024):
    """Recurrent generation (dense and diagonal S4 steps, best of `rounds`) in samples per second, and its cost per
    sample in the second and in the last whole `block` of samples of a clip (timed within one generation); against
    re-running the convolutional model on the growing prefix (the naive way); and one training step."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    last = length // block - 1
    table = Table(f"Autoregressive SaShiMi, config {config_path}: {backbone.model.count_params():,} parameters; best "
                  f"of {rounds} rounds", ["generation", "samples/s", f"ms per step, samples {block}-{2 * block}",
                                          f"ms per step, samples {last * block}-{(last + 1) * block}"])
    for mode in ("dense", "diagonal"):
        for batch, samples in ((1, length), (16, 4 * block)):
            whole, blocks = recurrent_generation_run(config_path, mode, batch, samples, rounds, block)
            table.add(f"recurrent, {mode} S4 step, batch {batch}", f"{batch * samples / whole:,.0f}",
                      f"{1e3 * blocks[1] / block:.3f}", f"{1e3 * blocks[-1] / block:.3f}" if batch == 1 else "")
    for prefix in (block, last * block):  # the naive way: the whole prefix through the convolutional model
        tokens = tf.zeros([1, prefix], tf.int32)
        seconds = time_call(lambda: backbone.model(tokens).numpy(), repeats)
        table.add(f"convolutional model on the prefix, at sample {prefix}, batch 1", f"{1 / seconds:.2f}",
                  f"{1e3 * seconds:.1f}", "")
    seconds, gib = in_fresh_process("training_step_run", config_path, [
        f"data.path={shipped_path('data/sc09-demo')}", "train.batch_size=1"], repeats)
    table.add(f"training step, batch 1 x {config['model']['audio_length']} samples", f"{seconds:.2f} s per step",
              f"peak memory {gib:.2f} GiB", "")
    return table


def sc09_table(config_path, repeats):
    """Seconds of audio an unconditional model generates per compute second, fast and full schedules, batch 1 and
    16."""
    config = load_config(config_path)
    backbone = build_backbone(config)
    sampler = Sampler.from_config(config["diffusion"], backbone.family)
    length, rate = config["model"]["audio_length"], config["audio"]["sample_rate"]
    table = Table(f"config {config_path}: {backbone.model.count_params():,} parameters, {length / rate:g} s clips",
                  ["batch", "seconds per denoising step", "generated audio s / compute s, fast schedule",
                   "same, full schedule"])
    for batch in (1, 16):
        step = seconds_per_denoising_step(backbone, batch, length, repeats if batch == 1 else 1)
        audio = batch * length / rate
        fast, full = (len(sampler.betas_and_steps(which)[0]) for which in ("fast", "full"))
        table.add(batch, f"{step:.2f}", f"{audio / (fast * step):.4f} ({fast} steps)",
                  f"{audio / (full * step):.5f} ({full} steps)")
    return table


def precision_quality_table(folder, limit=0):
    """The quality cost of each reduced-precision path on the bundled model: its held-out utterances vocoded with
    seed 0 in float32, bfloat16 and through LiteRT in float32 and int8 (the same noise draws), log-mel L1 and PESQ
    (wideband) against the recordings, and each path's difference from float32's (the bound: L1 +0.02, PESQ
    -0.05). `folder` receives the .tflite files."""
    import numpy as np

    from tf_diffwave.data.audio import read_audio
    from tf_diffwave.evaluation.reports import held_out_utterances
    from tf_diffwave.evaluation.vocoder_measures import quality_metrics
    from tf_diffwave.inference.model import load
    from tf_diffwave.serving.litert import LITERT_PRECISIONS, export_litert, seeded_noise
    from tf_diffwave.serving.litert_runtime import LiteRTModel

    models = {p: load(precision=p) for p in ("float32", "bfloat16")}
    model = models["float32"]
    corpus, ids = held_out_utterances(model, None, limit)
    steps = len(model.sampler.betas_and_steps("fast")[0])
    paths = {p: export_litert(model, os.path.join(folder, f"demo-{p}.tflite"), p)[0] for p in LITERT_PRECISIONS}
    paths = {p: LiteRTModel(path, os.cpu_count()) for p, path in paths.items()}
    scores = {}
    for utterance in ids:
        recording = read_audio(corpus.wav_paths[utterance], model.sample_rate)
        mel = model.features(recording)
        noise = seeded_noise([0], steps, len(mel) * model.config["audio"]["hop_length"]).numpy()
        audio = {f"TensorFlow, {p}": m.vocode(mel, seed=0) for p, m in models.items()}
        audio.update({f"LiteRT, {p}": m(noise, mel[None])[0] for p, m in paths.items()})
        for name, samples in audio.items():
            measured = quality_metrics(recording, samples[: len(recording)], model.sample_rate, model.log_mel)
            scores.setdefault(name, []).append((measured["log_mel_l1"], measured["pesq_wb"]))
    table = Table(f"Quality of the reduced-precision paths: the bundled model's {len(ids)} held-out utterances, seed "
                  f"0, fast schedule, against the recordings (bound: log-mel L1 within +0.02 and PESQ within -0.05 "
                  f"of float32's)", ["path", "log-mel L1", "PESQ wb", "L1 - float32's", "PESQ - float32's"])
    reference = np.mean(scores["TensorFlow, float32"], axis=0)
    for name, values in scores.items():
        l1, pesq = np.mean(values, axis=0)
        table.add(name, f"{l1:.4f}", f"{pesq:.3f}", f"{l1 - reference[0]:+.4f}", f"{pesq - reference[1]:+.3f}")
    return table


def streaming_table(config_paths, seconds, rounds, chunk_sizes=(16, 64)):
    """Streaming a `seconds` utterance in mel chunks of each of `chunk_sizes` frames, all there at once (so what is
    timed is the compute; a live front end adds the time its frames take to come), against vocoding it whole, fast
    schedule, random weights: the time to the first audio, to all of it, and streaming's total cost, measured in
    turns, best of `rounds`."""
    import time

    import numpy as np

    from tf_diffwave.diffusion.streaming import StreamingVocoder, exact_lookaheads
    from tf_diffwave.diffusion.synthesizer import Synthesizer

    table = Table(f"Streaming {seconds:g} s of audio in mel chunks against vocoding it whole (batch 1, fast schedule, "
                  f"exact lookahead; seconds, best of {rounds} rounds taken in turns)",
                  ["config", "lookahead", "chunk", "whole: all audio after", "streamed: first audio after",
                   "streamed: all audio after", "streaming's total cost"])
    for path in config_paths:
        config = speed_config(path)
        backbone = build_backbone(config)
        sampler = Sampler.from_config(config["diffusion"], backbone.family)
        synthesizer = Synthesizer.from_config(backbone, config)
        betas, inputs = sampler.betas_and_steps("fast")
        hop, rate = backbone.hop_length, config["audio"]["sample_rate"]
        mel = np.random.default_rng(0).normal(-5.0, 2.0, (int(seconds * rate) // hop, backbone.n_mels))
        mel = mel.astype(np.float32)

        def whole():
            synthesizer.vocode(mel[None], betas, inputs, np.zeros(1, np.int64)).numpy()

        def streamed(size):
            vocoder = StreamingVocoder(synthesizer, betas, inputs, 0)
            start, first = time.perf_counter(), None
            for i in range(0, len(mel), size):
                if vocoder.push(mel[i: i + size]).size and first is None:
                    first = time.perf_counter() - start
            vocoder.finish()
            return first, time.perf_counter() - start

        whole(), [streamed(size) for size in chunk_sizes]  # traces
        best_whole, best = np.inf, {size: (np.inf, np.inf) for size in chunk_sizes}
        for _ in range(rounds):
            best_whole = min(best_whole, time_call(whole, 0))
            for size in chunk_sizes:
                best[size] = tuple(np.minimum(best[size], streamed(size)))
        lookahead = sum(exact_lookaheads(backbone, len(betas)))
        for size, (first, total) in best.items():
            table.add(os.path.basename(path), f"{lookahead} frames ({1000 * lookahead * hop / rate:.0f} ms)",
                      f"{size} frames", f"{best_whole:.2f}", f"{first:.2f}", f"{total:.2f}",
                      f"{total / best_whole:.2f}x")
    return table


def lookahead_table(lookaheads=(None, 18, 12, 6, 3, 0), limit=0, chunk_frames=8,
                    model_dir=shipped_path("checkpoints/demo")):
    """The held-out utterances of the model in `model_dir` (the espeak demo model, whose corpus ships) streamed with
    smaller lookaheads than exactness needs, seed 0: how far the audio moves from whole vocoding's (largest sample
    difference, log-mel L1 between the two) and its log-mel L1 against the recordings beside whole vocoding's."""
    import numpy as np

    from tf_diffwave.data.audio import read_audio
    from tf_diffwave.evaluation.reports import held_out_utterances
    from tf_diffwave.inference.model import load

    model = load(model_dir)
    corpus, ids = held_out_utterances(model, None, limit)
    hop, rate = model.config["audio"]["hop_length"], model.sample_rate
    rows = {la: [] for la in lookaheads}
    for utterance in ids:
        mel = model.features(read_audio(corpus.wav_paths[utterance], rate))
        whole = model.vocode(mel, seed=0)
        for lookahead in lookaheads:
            chunks = (mel[i: i + chunk_frames] for i in range(0, len(mel), chunk_frames))
            audio = np.concatenate(list(model.stream(chunks, seed=0, lookahead=lookahead)))
            frames = len(mel)
            rows[lookahead].append((np.abs(audio - whole).max(),
                                    np.abs(model.features(audio)[:frames] - model.features(whole)[:frames]).mean(),
                                    np.abs(model.features(audio)[:frames] - mel).mean()))
    exact = model.exact_lookahead()
    table = Table(f"Lower latency: {os.path.basename(model_dir)}'s {len(ids)} held-out utterances streamed with less "
                  f"lookahead than the {exact} frames exactness needs, seed 0, means over the utterances",
                  ["lookahead", "largest difference from whole", "log-mel L1 from whole", "log-mel L1 to recording"])
    for lookahead, values in rows.items():
        frames = exact if lookahead is None else lookahead
        largest, from_whole, to_recording = np.mean(values, axis=0)
        table.add(f"{frames} frames ({1000 * frames * hop / rate:.0f} ms){', exact' if lookahead is None else ''}",
                  f"{largest:.2e}", f"{from_whole:.4f}", f"{to_recording:.4f}")
    return table
