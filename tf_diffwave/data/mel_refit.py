"""Refitting a mel made at another sample rate, hop or filterbank to a model's: its frame axis resampled and its
bands refiltered through the linear spectrum they imply. An approximation (the bands keep less than the spectrum),
measured in docs/vocoding.md."""

import librosa
import numpy as np


def implied_spectrum(mel, filters, power):
    """The non-negative linear STFT magnitude (bins, frames) whose `power` the mel `filters` (n_mels, bins) turn
    into `mel` (n_mels, frames): librosa's least-squares solver. For power mels each frame is scaled to a peak of 1
    first, which conditions the solver (at a power mel's range it takes 26 s per second of audio unscaled, 3 s
    scaled, to 0.03 in ln)."""
    if power == 1:
        return librosa.util.nnls(filters, mel)
    peaks = np.maximum(mel.max(axis=0, keepdims=True), 1e-30)
    return (librosa.util.nnls(filters, mel / peaks, pgtol=1e-12) * peaks) ** (1.0 / power)


def _frame_times(frames, hop_length, sample_rate, centre_offset):
    """Seconds at the centre of each of `frames` frames."""
    return (np.arange(frames) * hop_length + centre_offset) / sample_rate


def refit(features, settings, log_mel):
    """`features` (frames, n_mels) in the model's scale, made with `settings` (data.front_ends.mel_settings) ->
    float32 features (frames', n_mels) with the model's rate, hop and filterbank (`log_mel`)."""
    s = settings
    if s["slaney"] is None:  # the model's own filters and window
        htk, norm, unit_window = log_mel.htk, log_mel.norm, log_mel.window_norm != 1.0
    else:  # Slaney-normalised filters, or lmnt's: HTK filters, unnormalised, and a unit-norm window
        htk, norm, unit_window = not s["slaney"], "slaney" if s["slaney"] else None, not s["slaney"]
    window_norm = np.sqrt(np.sum(librosa.filters.get_window("hann", s["win_length"]) ** 2)) if unit_window else 1.0
    # librosa's filter outputs of the STFT magnitude to the model's power
    mel = log_mel.decompressed(np.asarray(features, np.float64)).numpy() * window_norm
    # frame axis: interpolate each band's log magnitude at the model's frame centres (the source's are centred)
    samples = round((len(mel) - 1) * s["hop_length"] / s["sample_rate"] * log_mel.sample_rate)  # centred frames
    source = _frame_times(len(mel), s["hop_length"], s["sample_rate"], 0.0)
    target = _frame_times(log_mel.frame_count(samples), log_mel.hop_length, log_mel.sample_rate,
                          log_mel.n_fft / 2 - log_mel.margin)
    log_magnitude = np.log(np.maximum(mel, 1e-10))
    mel = np.exp(np.stack([np.interp(target, source, band) for band in log_magnitude.T]))  # (n_mels, frames')
    # bands: the linear spectrum the source filters imply, read at the model's FFT bins and scaled by the ratio of
    # the windows' sums (a harmonic's peak height), then the model's filters
    source_filters = librosa.filters.mel(sr=s["sample_rate"], n_fft=s["n_fft"], n_mels=len(mel), fmin=s["fmin"],
                                         fmax=s["fmax"], htk=htk, norm=norm, dtype=np.float64)
    linear = implied_spectrum(mel, source_filters, log_mel.power)
    source_bins = np.fft.rfftfreq(s["n_fft"], 1.0 / s["sample_rate"])
    model_bins = np.fft.rfftfreq(log_mel.n_fft, 1.0 / log_mel.sample_rate)
    linear = np.stack([np.interp(model_bins, source_bins, frame, right=0.0) for frame in linear.T], axis=1)
    linear *= log_mel.win_length / s["win_length"]
    filters = librosa.filters.mel(sr=log_mel.sample_rate, n_fft=log_mel.n_fft, n_mels=log_mel.n_mels,
                                  fmin=log_mel.fmin, fmax=log_mel.fmax, htk=log_mel.htk, norm=log_mel.norm,
                                  dtype=np.float64)
    output = (filters @ linear ** log_mel.power).T / log_mel.window_norm
    return log_mel.compress(output).numpy().astype(np.float32)
