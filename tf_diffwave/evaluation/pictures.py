"""Pictures of vocoded speech: the log-mel spectrograms of several versions of one utterance stacked on one time
axis with one colour scale, as PNG bytes (matplotlib, from the `eval` extra)."""

import io

import numpy as np

from tf_diffwave.errors import UserError


def matplotlib_classes():
    """(FigureCanvasAgg, Figure), or a UserError saying how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("spectrogram pictures need matplotlib: pip install 'tf-diffwave[eval]'") from None
    return FigureCanvasAgg, Figure


def spectrogram_png(mels, hop_length, sample_rate, title=""):
    """PNG bytes of the log-mels {label: (frames, n_mels)} one above the other in the dict's order, sharing the time
    axis (seconds) and the colour scale (the min and max over all of them)."""
    FigureCanvasAgg, Figure = matplotlib_classes()
    low = min(float(np.min(m)) for m in mels.values())
    high = max(float(np.max(m)) for m in mels.values())
    frames = max(len(m) for m in mels.values())
    figure = Figure(figsize=(max(6.0, min(frames / 40.0, 16.0)), 1.9 * len(mels) + 0.6), dpi=100)
    FigureCanvasAgg(figure)  # a figure of its own: no pyplot, no process-wide state
    axes = figure.subplots(len(mels), 1, sharex=True, squeeze=False)[:, 0]
    extent = (0.0, frames * hop_length / sample_rate)
    for ax, (label, mel) in zip(axes, mels.items()):
        mel = np.asarray(mel, np.float64)
        image = ax.imshow(mel.T, origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma",
                          extent=(0.0, len(mel) * hop_length / sample_rate, 0, mel.shape[1]), interpolation="nearest")
        ax.set_xlim(*extent)
        ax.set_ylabel(f"{label}\nmel bin")
    axes[-1].set_xlabel("time (s)")
    if title:
        axes[0].set_title(title)
    figure.colorbar(image, ax=list(axes), label="log-mel")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
