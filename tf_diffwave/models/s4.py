"""The S4 layer (Gu et al., "Efficiently Modeling Long Sequences with Structured State Spaces", ICLR 2022) and its
diagonal variant S4D, as a Keras layer.

Each of the H channels is a linear state-space model x' = A x + B u, y = C x + D u with state size N, A in
diagonal-plus-low-rank (DPLR) form A = Lambda - P P^* from the HiPPO-LegS matrix. Discretised with the bilinear
rule, its convolution kernel K_l = C Abar^l Bbar (l < L) is computed from the truncated generating function at
the L-th roots of unity: a Cauchy sum over the poles, a rank-1 Woodbury correction, and an inverse real FFT
(S4 paper, algorithm 1). Only one pole of each conjugate pair is stored; the Cauchy sum adds the conjugate term.

All variables are real float32 (real and imaginary parts apart): Adam on complex variables is wrong.
"""

import contextlib
import math
import threading

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tf_diffwave.models.layers import rowwise_dense

CAUCHY_CHUNK = 256  # frequencies per chunk: the Cauchy matrix of one chunk is H x N x 256 complex64
VARIANTS = ("glu", "jan2022")
STEP_MODES = ("dense", "diagonal")
NODES = ("exact", "stored")


def hippo_legs_dplr(state_size):
    """HiPPO-LegS in DPLR form, float64: (Lambda, P, B), each (N/2,) complex, with A ~ diag(Lambda) - P P^*.

    A[n,k] = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k); B[n] = sqrt(2n+1); P[n] = sqrt(n + 1/2). A + P P^T is
    -1/2 I plus a skew-symmetric S, diagonalised by the Hermitian eigensolver of -iS; of each conjugate pair of
    eigenvalues the one with negative imaginary part is kept.
    """
    n = np.arange(state_size, dtype=np.float64)
    root = np.sqrt(2 * n + 1)
    a = -np.tril(np.outer(root, root), -1) - np.diag(n + 1)
    b, p = root, np.sqrt(n + 0.5)
    skew = a + np.outer(p, p) + 0.5 * np.eye(state_size)
    eigenvalues, vectors = np.linalg.eigh(-1j * skew)
    keep = np.argsort(eigenvalues)[: state_size // 2]
    lam = -0.5 + 1j * eigenvalues[keep]
    v = vectors[:, keep]
    return lam, v.conj().T @ p, v.conj().T @ b


def _complex(pair):
    """A (..., 2) float tensor of real and imaginary parts as a complex tensor (...)."""
    return tf.complex(pair[..., 0], pair[..., 1])


def cauchy(v, w, omega):
    """The Cauchy sums s[h, m, k] = sum_n v[h, m, n] G[h, n, k] at the frequencies omega (K,), complex64, with
    G[h, n, k] = 2 / (2 (1 - omega_k) - (1 + omega_k) w[h, n]).

    G is (1 + omega) / 2 times 1 / (z - w) with z = 2 (1 - omega) / (1 + omega) the bilinear node, written so that
    nothing is divided by 1 + omega, which vanishes at the Nyquist frequency."""
    g_matrix = 2.0 / (2.0 * (1.0 - omega)[None, None, :] - (1.0 + omega)[None, None, :] * w[:, :, None])
    return tf.matmul(v, g_matrix)


def woodbury_spectrum(v, w, omega, cauchy_sums=cauchy):
    """The kernel's spectrum (H, channels, K) at the frequencies omega from v (H, 2 (channels + 1), n), w (H, n).

    v holds the products of (B, P) with (C~_0, [C~_1], conj(P)); the rank-1 Woodbury correction (S4 eq. 5) is
    s_BC - h s_BQ s_PC / (1 + h s_PQ), h = (1 + omega) / 2 (the bilinear factor 2 / (1 + omega) folded in).
    `cauchy_sums` computes the sums (the benchmark swaps in a broadcast form)."""
    s = cauchy_sums(v, w, omega)
    s = tf.reshape(s, [tf.shape(s)[0], 2, -1, tf.shape(s)[-1]])
    half = ((1.0 + omega) / 2.0)[None, None, :]
    return s[:, 0, :-1] - half * s[:, 0, -1:] * s[:, 1, :-1] / (1.0 + half * s[:, 1, -1:])


def _chunked_spectrum(differentiate_w):
    """woodbury_spectrum(v, w, omega_chunks) at omega_chunks (chunks, c), one chunk at a time, as a function with
    its own gradient: (chunks, H, channels, c).

    Only one chunk's Cauchy matrix (H x 2N2 x c) and its Woodbury terms exist at once: the loops run their
    iterations one after the other, and the backward pass recomputes each chunk (differentiating it there)
    instead of keeping anything from the forward pass. Without `differentiate_w` the poles get no gradient (a
    frozen SSM): a training step of the small SaShiMi config in the paper's form then takes 40% less time."""

    @tf.custom_gradient
    def spectrum(v, w, omega_chunks):
        chunks = tf.shape(omega_chunks)[0]

        def forward(i, pieces):
            return i + 1, pieces.write(i, woodbury_spectrum(v, w, omega_chunks[i]))

        pieces = tf.TensorArray(tf.complex64, size=chunks)
        _, pieces = tf.while_loop(lambda i, _: i < chunks, forward, [0, pieces], parallel_iterations=1)

        def grad(upstream):
            sources = [v, w] if differentiate_w else [v]

            def backward(i, sums):
                with tf.GradientTape() as tape:
                    tape.watch(sources)
                    piece = woodbury_spectrum(v, w, omega_chunks[i])
                chunk = tape.gradient(piece, sources, output_gradients=upstream[i])
                return i + 1, [total + part for total, part in zip(sums, chunk)]

            _, sums = tf.while_loop(lambda i, _: i < chunks, backward,
                                    [0, [tf.zeros_like(s) for s in sources]], parallel_iterations=1)
            return sums[0], sums[1] if differentiate_w else None, None

        return pieces.stack(), grad

    return spectrum


@tf.function
def kernel_spectrum(v, w, omega_chunks, differentiate_w=True):
    """The Cauchy routine of the S4 kernel: woodbury_spectrum at omega_chunks (chunks, c), computed chunk by chunk
    and recomputed in the backward pass, as (chunks, H, channels, c) complex64. With `differentiate_w=False` no
    gradient flows to the poles w."""
    return _chunked_spectrum(differentiate_w)(v, w, omega_chunks)


def in_chunks(omega, chunk):
    """Frequencies omega (K,) zero-padded and shaped (chunks, chunk) (omega = 0 is a harmless extra frequency)."""
    padded = tf.pad(omega, [[0, -omega.shape[0] % chunk]])
    return tf.reshape(padded, [-1, chunk])


def roots_of_unity(length, chunk=None):
    """omega_k = exp(-2 pi i k / L) for k = 0 .. L // 2, computed in float64, as complex64 (K,); with `chunk`,
    in chunks (see in_chunks)."""
    omega = tf.constant(np.exp(-2j * np.pi * np.arange(length // 2 + 1) / length), tf.complex64)
    return omega if chunk is None else in_chunks(omega, chunk)


@keras.saving.register_keras_serializable(package="tf_diffwave")
class S4Layer(layers.Layer):
    """S4 (or S4D) over channels-last sequences (B, L, H) -> (B, L, H), L <= `max_length`.

    FFT convolution with the SSM kernel (zero-padded to 2L: no wrap-around), + D u, GELU, then a position-wise
    linear layer to 2H with a GLU. Causal by default; bidirectional adds a second kernel (its own C) that runs
    backwards over the strictly-future samples. With `ssm="s4d"` A is diagonal (Lambda only) and the kernel a
    Vandermonde product. `trainable_ssm=False` freezes Lambda, P, B and dt, as the DiffWave+SaShiMi checkpoints did.
    The trained C is C~ = C (I - Abar^L) for L = `max_length` (S4's length-corrected C).
    `nodes="stored"` evaluates the kernel's generating function at frequencies held in a non-trainable weight
    `omega` (K, 2) instead of the exact roots of unity: S4 v1 checkpoints store the complex64 nodes their models
    were built with, off the exact ones by up to 1e-4, and the kernels they learned are those of these nodes.
    `tied_state=True` trains one Lambda, B and P for all channels (S4 v1's tie_state), each channel its own dt
    and C.
    """

    def __init__(self, d_model, max_length, state_size=64, bidirectional=False, ssm="s4", trainable_ssm=True,
                 dt_min=1e-3, dt_max=1e-1, variant="glu", nodes="exact", tied_state=False, **kwargs):
        super().__init__(**{**kwargs, "dtype": "float32"})  # float32 under mixed precision too
        if ssm not in ("s4", "s4d"):
            raise ValueError(f"ssm must be 's4' or 's4d', got {ssm!r}")
        if variant not in VARIANTS or (variant == "jan2022" and ssm != "s4"):
            raise ValueError(f"variant must be one of {VARIANTS} ('jan2022' with ssm 's4'), got {variant!r}")
        self.d_model, self.max_length, self.state_size = d_model, max_length, state_size
        self.bidirectional, self.ssm, self.trainable_ssm = bidirectional, ssm, trainable_ssm
        self.dt_min, self.dt_max, self.variant, self.nodes = dt_min, dt_max, variant, nodes
        self.tied_state = tied_state
        if nodes not in NODES or (nodes == "stored" and ssm != "s4"):
            raise ValueError(f"nodes must be one of {NODES} ('stored' with ssm 's4'), got {nodes!r}")
        self.kernel_channels = 2 if bidirectional else 1
        self.own_q = variant == "jan2022"
        # what sampling sets for its own duration (kernels_computed_once, use_step_system), held per thread: one
        # loaded model may sample in several threads at once, each entering and leaving these on its own
        self._sampling_state = threading.local()
        width = d_model if self.own_q else 2 * d_model  # jan2022 mixes the channels linearly; glu gates
        self.output_linear = layers.Dense(width, dtype="float32", name="output_linear")

    def _per_thread(name):  # noqa: N805 (a property factory used in the class body)
        return property(lambda self: getattr(self._sampling_state, name, None),
                        lambda self, value: setattr(self._sampling_state, name, value))

    fixed_kernel = _per_thread("fixed_kernel")  # the kernel every call convolves with (kernels_computed_once)
    portable_spectrum = _per_thread("portable_spectrum")  # its spectrum, convolved in real arithmetic
    _step_system = _per_thread("step_system")  # the recurrence `step` runs (use_step_system)
    del _per_thread

    def build(self, input_shape):
        h, half = self.d_model, self.state_size // 2
        lam, p, b = hippo_legs_dplr(self.state_size)
        trainable = self.trainable_ssm

        def constant(name, value):
            value = np.asarray(value, np.float32)
            return self.add_weight(name=name, shape=value.shape, trainable=trainable,
                                   initializer=keras.initializers.Constant(value))

        def pair(z, copies):
            return np.tile(np.stack([np.real(z), np.imag(z)], axis=-1), (copies, 1, 1))

        shared = 1 if self.tied_state else h  # copies of Lambda, B and P
        self.log_dt = self.add_weight(name="log_dt", shape=(h,), trainable=trainable, initializer=(
            keras.initializers.RandomUniform(math.log(self.dt_min), math.log(self.dt_max))))
        self.lambda_log_re = constant("lambda_log_re", np.tile(np.log(-lam.real), (shared, 1)))
        self.lambda_im = constant("lambda_im", np.tile(lam.imag, (shared, 1)))
        self.b = constant("b", pair(b, shared))
        if self.ssm == "s4":
            self.p = constant("p", pair(p, shared))
        if self.own_q:  # A = Lambda - P Q^* per channel; Q starts at P and always trains (as in that release)
            q = np.stack([pair(p, h)] * self.kernel_channels)
            self.q = self.add_weight(name="q", shape=(self.kernel_channels, h, half, 2),
                                     initializer=keras.initializers.Constant(q))
        self.c = self.add_weight(name="c", shape=(self.kernel_channels, h, half, 2),
                                 initializer=keras.initializers.RandomNormal(stddev=math.sqrt(0.5)))
        self.d = self.add_weight(name="d", shape=(h,), initializer=keras.initializers.RandomNormal(stddev=1.0))
        if self.nodes == "stored":
            omega = roots_of_unity(self.max_length).numpy()
            self.omega = self.add_weight(name="omega", shape=(len(omega), 2), trainable=False, initializer=(
                keras.initializers.Constant(np.stack([omega.real, omega.imag], axis=-1))))
        self.output_linear.build((None, None, h * (self.kernel_channels if self.own_q else 1)))

    @property
    def ssm_variables(self):
        """The trainable state-space parameters (Lambda, P, B, dt, and Q in the jan2022 variant), which train in their
        own optimizer group."""
        names = ("log_dt", "lambda_log_re", "lambda_im", "b", "p", "q")
        return [v for v in self.trainable_weights if v.name in names]

    # ---- the kernel ------------------------------------------------------------------------------------------------

    def _ssm(self):
        """dt (H,), Lambda (H, N2), B (H, N2), P (H, N2) or None, C~ (channels, H, N2): complex64 tensors."""
        dt = tf.exp(tf.cast(self.log_dt, tf.float32))
        def per_channel(x):  # a tied state's one copy, for every channel
            return tf.broadcast_to(x, [self.d_model, x.shape[-1]]) if self.tied_state else x

        lam = per_channel(tf.complex(-tf.exp(self.lambda_log_re), self.lambda_im))
        p = per_channel(_complex(self.p)) if self.ssm == "s4" else None
        return dt, lam, per_channel(_complex(self.b)), p, _complex(self.c)

    def kernel(self, length=None, spectrum=None):
        """The convolution kernel (channels, H, length) as a float32 tensor (channels = 2 when bidirectional; the
        second runs backwards). `length` defaults to `max_length`; C~ is always that of `max_length`. `spectrum`
        replaces `kernel_spectrum` (a routine of the same signature, for comparing formulations)."""
        length = self.max_length if length is None else int(length)
        dt, lam, b, p, c = self._ssm()
        dt_c = tf.complex(dt, tf.zeros_like(dt))[:, None]  # a cast would warn in the backward pass
        w = dt_c * lam                                              # (H, N2) poles dt * Lambda
        if self.ssm == "s4d":
            wide = [tf.cast(t, tf.complex128) for t in (dt_c, lam, b, c)]
            return self._vandermonde_kernel(wide[0] * wide[1], wide[0] * wide[2], wide[3], length)
        omega = roots_of_unity(self.max_length, CAUCHY_CHUNK) if self.nodes == "exact" else \
            in_chunks(_complex(self.omega), CAUCHY_CHUNK)           # (chunks, CAUCHY_CHUNK)
        # v[h, (i, j), n] = Bs[i] Cs[j] dt with Bs = (B, P), Cs = (C~_0, [C~_1], conj(Q)) (S4 eq. 4 and 5), Q = P
        bs = tf.stack([b, p], axis=1)                               # (H, 2, N2)
        if self.own_q:  # each channel its own system: the channels become rows of the batch, Cs = (C~_c, conj(Q_c))
            cs = tf.stack([c, tf.math.conj(_complex(self.q))], axis=2)            # (channels, H, 2, N2)
            cs = tf.reshape(cs, [-1, 2, self.state_size // 2])     # (channels H, 2, N2)
            bs, dt_c, w = (tf.tile(x, [self.kernel_channels] + [1] * (x.shape.rank - 1)) for x in (bs, dt_c, w))
        else:
            cs = tf.concat([tf.transpose(c, [1, 0, 2]), tf.math.conj(p)[:, None]], axis=1)  # (H, channels + 1, N2)
        v = bs[:, :, None, :] * cs[:, None, :, :] * dt_c[:, :, None, None]
        v = tf.reshape(v, [tf.shape(v)[0], -1, self.state_size // 2])
        v_full = tf.concat([v, tf.math.conj(v)], axis=-1)          # the conjugate poles
        w_full = tf.concat([w, tf.math.conj(w)], axis=-1)
        # (chunks, rows, channels or 1, CAUCHY_CHUNK)
        k_f = (spectrum or kernel_spectrum)(v_full, w_full, omega, self.trainable_ssm)
        k_f = tf.reshape(tf.transpose(k_f, [2, 1, 0, 3]), [self.kernel_channels, self.d_model, -1])
        k = tf.signal.irfft(k_f[..., : self.max_length // 2 + 1], fft_length=[self.max_length])
        return k[..., :length]

    def _vandermonde_kernel(self, w, b_dt, c, length):  # complex128 arguments
        """S4D with bilinear discretisation: K_l = 2 Re sum_n C_n Bbar_n Abar_n^l, Abar^l = Abar^(j c) Abar^i for
        l = j c + i, as one batched matmul over c-sample blocks (memory H N (L/c + c), not H N L)."""
        abar = (1.0 + w / 2.0) / (1.0 - w / 2.0)                    # (H, N2)
        coef = c * (b_dt / (1.0 - w / 2.0))[None]                    # (channels, H, N2)
        block = 64
        blocks = -(-length // block)
        # the powers amplify any rounding of the poles and reach phases of thousands of radians, and the sum over the
        # poles cancels: complex128 throughout (H N (L/c + c) values), back to float32 at the end
        log_abar = tf.math.log(abar)
        inner = tf.exp(log_abar[:, :, None] * tf.cast(tf.range(block), tf.complex128)[None, None, :])  # (H, N2, c)
        outer = tf.exp(log_abar[:, None, :] * tf.cast(tf.range(blocks) * block, tf.complex128)[None, :, None])
        weighted = outer[None] * coef[:, :, None, :]                # (channels, H, blocks, N2)
        k = 2.0 * tf.math.real(tf.matmul(weighted, inner[None]))    # (channels, H, blocks, c)
        return tf.cast(tf.reshape(k, [self.kernel_channels, self.d_model, -1])[..., :length], tf.float32)

    # ---- the layer -------------------------------------------------------------------------------------------------

    def convolve(self, x):
        """The SSM part: y = K * x + D x for x (B, H, L), float32, by FFT over 2L samples (linear, not circular).
        The backward kernel k1 runs over the strictly-future samples: y[t] += sum_(i >= 1) k1[i-1] x[t+i]. The
        directions are summed, or in the jan2022 variant kept apart, (B, 2H, L), each with its own D x."""
        length = tf.shape(x)[-1]
        if self.portable_spectrum is not None:
            y = real_arithmetic_convolution(x[:, None], *self.portable_spectrum)[..., :length]
        else:
            frame = 2 * length
            k = self._frames((self.kernel() if self.fixed_kernel is None else self.fixed_kernel)[..., :length], frame)
            spectrum = tf.signal.rfft(x, fft_length=[frame])[:, None] * tf.signal.rfft(k, fft_length=[frame])[None]
            y = tf.signal.irfft(spectrum, fft_length=[frame])[..., :length]
        y = y + (x * self.d[None, :, None])[:, None]
        return tf.reshape(y, [tf.shape(x)[0], -1, length])

    def _frames(self, k, frame):
        """The kernels k (channels, H, L) placed in frames of `frame` >= 2L samples for a linear convolution by
        FFT: the forward one first, the backward one reversed into the end; (1 or channels, H, frame), the
        directions summed unless each keeps its own output (jan2022)."""
        frames = [tf.pad(k[0], [[0, 0], [0, frame - tf.shape(k)[-1]]])]
        if self.bidirectional:
            frames.append(tf.pad(tf.reverse(k[1], [-1]), [[0, 0], [frame - tf.shape(k)[-1], 0]]))
        k = tf.stack(frames)
        return k if self.own_q else tf.reduce_sum(k, axis=0, keepdims=True)

    def portable_spectrum_of(self, k):
        """(real, imaginary) parts of the FFT of the kernels k (channels, H, `max_length`), framed, over the
        smallest power of two >= 2 `max_length` samples: what `real_arithmetic_convolution` convolves any input of
        up to `max_length` samples with."""
        frame = 1 << (2 * self.max_length - 1).bit_length()
        spectrum = tf.signal.rfft(self._frames(k, frame), fft_length=[frame])
        return tf.math.real(spectrum), tf.math.imag(spectrum)

    def call(self, u):
        y = self.convolve(tf.transpose(tf.cast(u, tf.float32), [0, 2, 1]))
        return self._output(tf.transpose(y, [0, 2, 1]))

    def _output(self, y, linear=lambda layer, y: layer(y)):
        """GELU, then the position-wise linear layer (with a GLU, or the jan2022 variant's H outputs), on (..., H);
        `linear(layer, y)` applies that layer."""
        y = linear(self.output_linear, tf.nn.gelu(y, approximate=False))
        if self.own_q:
            return y
        gate, value = tf.split(y, 2, axis=-1)
        return gate * tf.sigmoid(value)

    # ---- the recurrent (step) mode -----------------------------------------------------------------------------------

    def setup_step(self, mode="dense"):
        """Precompute the recurrence that `step` runs (`step_system`), from the current weights (call again after
        they change)."""
        self.use_step_system(self.step_system(mode))

    def use_step_system(self, system):
        """Make `step` run `system`, a result of `step_system` (its tensors may be a traced graph's inputs), or
        nothing (None)."""
        self._step_system = system

    def step_system(self, mode="dense"):
        """The recurrence of the current weights, (mode, Abar - I, Bbar, C), computed eagerly in float64 numpy.

        The bilinear discretisation Abar, Bbar of the full-size system, with the trained C~ corrected for the
        kernel's length L = `max_length` (C = C~ (I - Abar^L)^-1, S4 section 3.3), computed in float64:
        - "dense": x <- Abar x + Bbar u, y = C x, in the real basis of the conjugate-symmetric state (r = T^-1 s,
          T = [[I, iI], [I, -iI]]), as float32 (H, N, N) matrices;
        - "diagonal": the same in the eigenbasis of Abar, complex64 (H, N): cheaper per step, but only as accurate
          as that basis is well conditioned (HiPPO-LegS's is not).
        Abar is stored as Abar - I and the step computes x + (Abar - I) x: Abar is within dt |A| of I, and float32
        rounding of Abar itself, compounded over thousands of steps, would cost 1e-5 relative (S4D)."""
        if self.bidirectional:
            raise ValueError(f"{self.name}: only causal S4 layers have a recurrent mode (this one sees the future)")
        if mode not in STEP_MODES:
            raise ValueError(f"mode must be one of {STEP_MODES}, got {mode!r}")
        ssm = self.dense_ssm()
        a, b, c, dt = (ssm["A"][0] if self.own_q else ssm["A"]), ssm["B"], ssm["C"][0], ssm["dt"]
        eye = np.eye(a.shape[-1])
        left = eye - dt[:, None, None] / 2 * a
        abar = np.linalg.solve(left, eye + dt[:, None, None] / 2 * a)
        bbar = np.linalg.solve(left, (dt[:, None] * b)[..., None])[..., 0]
        if mode == "dense":
            half = np.eye(a.shape[-1] // 2)
            basis = np.block([[half, 1j * half], [half, -1j * half]])
            inverse = np.linalg.inv(basis)
            system = ((inverse @ abar @ basis).real - eye, (bbar @ inverse.T).real, (c @ basis).real)
            return ("dense", *(tf.constant(m, tf.float32) for m in system))
        eigenvalues, vectors = np.linalg.eig(abar)
        system = (eigenvalues - 1.0, np.linalg.solve(vectors, bbar[..., None])[..., 0],
                  np.einsum("hn,hnm->hm", c, vectors))
        return ("diagonal", *(tf.constant(m, tf.complex64) for m in system))

    def initial_state(self, batch, mode=None):
        """The zero state of `batch` sequences (B, H, N) for `step`, in the step mode set up (or `mode`, which is
        then set up; "dense" when nothing is)."""
        if mode is not None or self._step_system is None:
            self.setup_step(mode or "dense")
        dtype = tf.float32 if self._step_system[0] == "dense" else tf.complex64
        return tf.zeros([batch, self.d_model, self.state_size], dtype)

    def step(self, u, state):
        """One time step of the causal layer: input u (B, H) and state (from `initial_state` or the previous step)
        -> (output (B, H), new state); stepping through a sequence gives what `call` gives for it."""
        mode, abar_minus_eye, bbar, c = self._step_system
        u = tf.cast(u, tf.float32)
        # a clip's samples must not depend on the clips generated beside it: the output sums each example's terms
        # alone, and the state update is a matrix-vector product per example and channel (see layers.rowwise_dense)
        if mode == "dense":
            update = tf.matmul(state[:, :, None, :], abar_minus_eye[None], transpose_b=True)[:, :, 0]
            state = state + update + bbar[None] * u[:, :, None]
            y = tf.reduce_sum(c[None] * state, axis=-1)
        else:
            state = state + abar_minus_eye[None] * state + bbar[None] * tf.complex(u, tf.zeros_like(u))[:, :, None]
            y = tf.math.real(tf.reduce_sum(c[None] * state, axis=-1))
        return self._output(y + self.d[None] * u, rowwise_dense), state

    def compute_output_shape(self, input_shape):
        return input_shape

    def dense_ssm(self):
        """The continuous-time system in full state size N, float64/complex128 numpy, with the length correction
        undone (for L = `max_length`): A (H, N, N) (in the jan2022 variant (channels, H, N, N): each channel has its
        own Q), B (H, N), C (channels, H, N), dt (H,), such that
        kernel(L)[c, h, l] = Re(C[c, h] Abar[h]^l Bbar[h]) with Abar, Bbar the bilinear discretisation."""
        dt, lam, b, p, c = (None if t is None else t.numpy().astype(np.complex128) for t in self._ssm())
        dt = dt.real.astype(np.float64)
        full = lambda z: np.concatenate([z, z.conj()], axis=-1)  # noqa: E731  (the conjugate half of the state)
        b_f, c_f = full(b), full(c)
        a = np.stack([np.diag(row) for row in full(lam)])
        if p is None:  # S4D trains C itself: no length correction
            return {"A": a, "B": b_f, "C": c_f, "dt": dt}
        q = full(_complex(self.q).numpy().astype(np.complex128)) if self.own_q else full(p)[None]
        a = a[None] - full(p)[None, :, :, None] * q[:, :, None, :].conj()   # (channels or 1, H, N, N)
        eye = np.eye(a.shape[-1])
        c_true = np.empty_like(c_f)
        for channel in range(self.kernel_channels):
            a_c = a[channel if self.own_q else 0]
            for h in range(self.d_model):
                abar = np.linalg.solve(eye - dt[h] / 2 * a_c[h], eye + dt[h] / 2 * a_c[h])
                correction = eye - np.linalg.matrix_power(abar, self.max_length)
                c_true[channel, h] = np.linalg.solve(correction.T, c_f[channel, h])  # C = C~ (I - Abar^L)^-1
        return {"A": a if self.own_q else a[0], "B": b_f, "C": c_true, "dt": dt}

    def get_config(self):
        return {**super().get_config(), "d_model": self.d_model, "max_length": self.max_length,
                "state_size": self.state_size, "bidirectional": self.bidirectional, "ssm": self.ssm,
                "trainable_ssm": self.trainable_ssm, "dt_min": self.dt_min, "dt_max": self.dt_max,
                "variant": self.variant, "nodes": self.nodes, "tied_state": self.tied_state}


def real_arithmetic_convolution(x, real, imag):
    """x (..., L) convolved with the kernels whose FFT over n samples (a power of two, n >= L + kernel length) has
    these real and imaginary parts (..., n/2 + 1), in real arithmetic with forward real FFTs alone: the operators
    that LiteRT has (no inverse FFT, no complex product). Samples [0, L) of the n it returns are the linear
    convolution's. The inverse of the product Y is y[t] = (1/n) (sum_k Re Y_k cos(2 pi k t/n) - sum_k Im Y_k
    sin(2 pi k t/n)) over the whole Hermitian spectrum, i.e. (Re rfft(Re Y) + Im rfft(Im Y)) / n, where
    rfft(a)_t = sum_k a_k cos(2 pi k t/n) - i sum_k a_k sin(2 pi k t/n); t < L <= n/2 is in rfft's half."""
    n = 2 * (real.shape[-1] - 1)
    spectrum = tf.signal.rfft(x, fft_length=[n])
    x_re, x_im = tf.math.real(spectrum), tf.math.imag(spectrum)
    y_re, y_im = x_re * real - x_im * imag, x_re * imag + x_im * real
    whole_re = tf.concat([y_re, tf.reverse(y_re[..., 1:-1], [-1])], axis=-1)   # even
    whole_im = tf.concat([y_im, -tf.reverse(y_im[..., 1:-1], [-1])], axis=-1)  # odd
    return (tf.math.real(tf.signal.rfft(whole_re, fft_length=[n])) +
            tf.math.imag(tf.signal.rfft(whole_im, fft_length=[n]))) / n


@contextlib.contextmanager
def kernels_computed_once(model, portable=False):
    """Within the block, every S4 layer of `model` convolves with the kernel computed on entry instead of computing
    it at each call: for sampling, where the weights do not change from one denoising step to the next. Entered
    inside a tf.function, the kernels are computed once per call of that function, before its loops. `portable`
    (entered eagerly) convolves in real arithmetic with forward FFTs alone (`real_arithmetic_convolution`), with
    the kernels' spectra computed on entry."""
    found = list(s4_layers(model))
    for layer in found:
        layer.fixed_kernel = layer.kernel()
        layer.portable_spectrum = layer.portable_spectrum_of(layer.fixed_kernel) if portable else None
    try:
        yield
    finally:
        for layer in found:
            layer.fixed_kernel = layer.portable_spectrum = None


def s4_layers(model):
    """Every S4Layer in a Keras model, nested models included."""
    for layer in model.layers:
        if isinstance(layer, S4Layer):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from s4_layers(layer)


def ssm_training_group(model, learning_rate):
    """(the S4 state-space parameters (Lambda, P, B, dt) of every S4 layer in `model`, `learning_rate`): the group
    that trains with an Adam of its own (S4 paper), as Backbone.own_learning_rate_variables returns it; None when
    they are frozen."""
    ssm = [v for layer in s4_layers(model) for v in layer.ssm_variables]
    return (ssm, learning_rate) if ssm else None
