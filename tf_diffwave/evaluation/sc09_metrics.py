"""The SC09 sample-quality metrics of the DiffWave paper (section 5.2), from a classifier's outputs.

All take class probabilities p(y|x) of shape (N, K) (rows summing to 1) or penultimate features (N, F), as float64
numpy arrays. Probabilities are floored at 1e-12 inside the logarithms, so a confident 0 stays finite.
"""

import warnings

import numpy as np
import scipy.linalg

_FLOOR = 1e-12


def _log(p):
    return np.log(np.maximum(p, _FLOOR))


def _kl_rows(p, q):
    """KL(p_i || q_i) for each row (or against one distribution q)."""
    return np.sum(p * (_log(p) - _log(q)), axis=-1)


def inception_score(probs):
    """IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction (Salimans et al. 2016). 1 <= IS <= K."""
    return float(np.exp(np.mean(_kl_rows(probs, probs.mean(axis=0)))))


def modified_inception_score(probs):
    """mIS = exp(E_{x, x'} KL(p(y|x) || p(y|x'))) over pairs of different clips (Gurumurthy et al. 2017):
    it rewards confident predictions that also differ from clip to clip within a class."""
    n = len(probs)
    if n < 2:
        raise ValueError("the modified inception score needs at least two clips")
    cross = probs @ _log(probs).T                     # [i, j] = sum_k p_ik log p_jk
    kl = np.diag(cross)[:, None] - cross               # [i, j] = KL(p_i || p_j); 0 on the diagonal
    return float(np.exp(kl.sum() / (n * (n - 1))))


def am_score(probs, reference_marginal):
    """AM score = KL(p*(y) || p(y)) + E_x H(p(y|x)) (Zhou et al. 2018), p* the classifier's mean prediction on
    real training clips and p(y) on the generated ones. Lower is better; 0 for confident clips whose labels are
    spread as in the real data."""
    entropy = -np.sum(probs * _log(probs), axis=1)
    return float(_kl_rows(reference_marginal, probs.mean(axis=0)) + np.mean(entropy))


def frechet_distance(features_a, features_b):
    """FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two feature sets
    (Heusel et al. 2017), here on the digit classifier's penultimate features."""
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    with warnings.catch_warnings():  # fewer clips than features make the product singular; sqrtm still holds
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(root):
        root = root.real  # round-off gives tiny imaginary parts when the product is near singular
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def label_distribution(probs):
    """The share of clips given each label (the classifier's arg max), shape (K,)."""
    return np.bincount(np.argmax(probs, axis=1), minlength=probs.shape[1]) / len(probs)
