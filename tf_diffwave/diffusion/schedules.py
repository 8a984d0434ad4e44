"""Noise schedules: the training schedule and what derives from it, inference schedules and their alignment to
the training steps (Kong et al., "DiffWave", ICLR 2021; Chen et al., "WaveGrad", ICLR 2021)."""

import numpy as np

from tf_diffwave.errors import UserError


class Schedule:
    """A linear beta schedule and the quantities derived from it (float64 numpy)."""

    def __init__(self, betas):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = np.cumprod(self.alphas)

    @classmethod
    def from_config(cls, diffusion_config):
        """The config's `diffusion.training_betas`, or linear betas from its `beta_start`, `beta_end` and
        `num_steps`, rescaled toward zero terminal SNR with `diffusion.zero_terminal_snr`."""
        d = diffusion_config
        if d["training_betas"]:
            return cls(d["training_betas"])
        betas = np.linspace(d["beta_start"], d["beta_end"], d["num_steps"])
        return cls(zero_terminal_snr(betas) if d["zero_terminal_snr"] else betas)

    @property
    def num_steps(self):
        return len(self.betas)


def zero_terminal_snr(betas):
    """Betas rescaled so that the last step's signal level sqrt(alpha_bar_T) is almost zero (Lin et al., "Common
    Diffusion Noise Schedules and Sample Steps Are Flawed", 2024, algorithm 1; FreGrad eq. 8): the levels are shifted
    by the last one less 1e-4 and scaled to keep the first, in float32 as FreGrad computes them (the products
    accumulated in float64, as PyTorch's CPU cumprod does; FreGrad's checkpoints store the result, which this
    reproduces to 1e-6), so sqrt(alpha_bar_T) = 1e-4 x its scale, not 0: the first reverse step then divides by
    sqrt(alpha_T) rather than by zero."""
    f32 = np.float32
    alphas = f32(1) - np.asarray(betas, np.float32)
    levels = np.sqrt(np.cumprod(alphas.astype(np.float64)).astype(np.float32))
    first, last = levels[0], levels[-1] - f32(1e-4)
    levels = (levels - last) * (first / (first - last))
    alpha_bars = levels * levels
    alphas = np.concatenate([alpha_bars[:1], alpha_bars[1:] / alpha_bars[:-1]])
    return (f32(1) - alphas).astype(np.float64)


# PriorGrad's fast inference schedules for its 50-step training schedule (its params.py and inference.py)
PRIORGRAD_SCHEDULES = {
    "priorgrad6": [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5],
    "priorgrad12": [1e-4, 5e-4, 8e-4, 1e-3, 5e-3, 8e-3, 1e-2, 0.05, 0.08, 0.1, 0.2, 0.5],
}


def named_schedules(diffusion_config, family=None):
    """{name: betas} of the schedules a model takes by name besides 'fast' and 'full': its family's (a
    registry.Family), and for a network conditioned on the step with PriorGrad's prior, PriorGrad's."""
    step_input = family is None or family.noise_input == "step"
    named = dict(PRIORGRAD_SCHEDULES) if diffusion_config["prior"] == "priorgrad" and step_input else {}
    named.update({} if family is None else family.schedules)
    return named


def schedule_names(named):
    """The inference schedules a model takes by name: 'fast', 'full' and those its family ships (`named`)."""
    return ["fast", "full", *named]


def plain(betas):
    """A schedule as users write it: [0.0001, 0.001, 0.5] (numpy scalars print as np.float64(...))."""
    try:
        return "[" + ", ".join(f"{float(b):.6g}" for b in betas) + "]"
    except (TypeError, ValueError):
        return repr(betas)


def fitting_schedule(schedule, betas, steps=6):
    """`betas` if they align to the training `schedule`, else a `steps`-long schedule that does: the training
    noise levels at evenly spaced steps, first and last included (float list)."""
    try:
        align_steps(schedule, betas)
        return [float(b) for b in betas]
    except UserError:
        levels = schedule.alpha_bars[np.round(np.linspace(0, schedule.num_steps - 1, steps)).astype(int)]
        return [float(b) for b in 1.0 - levels / np.concatenate([[1.0], levels[:-1]])]


def checked_betas(betas):
    """`betas` as a float64 array (S,), or a UserError unless it is a non-empty list of betas in (0, 1)."""
    array = np.asarray(betas, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0 or np.any(array <= 0) or np.any(array >= 1):
        raise UserError(f"inference schedule {plain(betas)} must be a non-empty list of betas in (0, 1)")
    return array


def align_steps(schedule, inference_betas):
    """Fractional training steps (0-based) whose noise levels match a short inference schedule.

    DiffWave appendix B: with gamma_s the cumulative product of (1 - eta) over the inference schedule, pick t with
    sqrt(abar_{t+1}) <= sqrt(gamma_s) <= sqrt(abar_t) and interpolate linearly between t and t + 1.
    """
    eta = checked_betas(inference_betas)
    gammas = np.cumprod(1.0 - eta)
    root_ab = np.sqrt(schedule.alpha_bars)
    eps = 1e-12
    steps = []
    for s, gamma in enumerate(gammas):
        g = np.sqrt(gamma)
        if g < root_ab[-1] - eps:
            raise UserError(
                f"inference schedule {plain(inference_betas)} is noisier than the training schedule at position "
                f"{s} (noise level {1 - gamma:.6g} > training's {1 - schedule.alpha_bars[-1]:.6g})")
        if g > root_ab[0] + eps:
            raise UserError(
                f"inference schedule {plain(inference_betas)} is less noisy than the first training step at "
                f"position {s} (beta {eta[s]:.6g} < training's first beta {schedule.betas[0]:.6g})")
        t = int(np.clip(np.searchsorted(-root_ab, -g, side="right") - 1, 0, schedule.num_steps - 2))
        steps.append(t + (root_ab[t] - g) / (root_ab[t] - root_ab[t + 1]))
    return np.asarray(steps)


def noise_levels(betas, precision="float64"):
    """The noise levels sqrt(alpha_bar_n) of a schedule, float32, computed in `precision`."""
    dtype = np.float32 if precision == "float32" else np.float64
    alphas = dtype(1) - np.asarray(betas, dtype)
    return np.sqrt(np.cumprod(alphas, dtype=dtype)).astype(np.float32)
