"""Model folders from philsyn/DiffWave-Vocoder's conditional LJSpeech checkpoints
(`tf-diffwave convert philsyn-vocoder CKPT CONFIG.json OUT_DIR [key=value]`).

The checkpoint is what its `train.py` saves (`model_state_dict`, and `optimizer_state_dict`, ignored), zip or
legacy format; CONFIG.json is the repository's `config_64.json` or `config_128.json`. The network is philsyn's
unconditional WaveNet (see rf5_diffwave.py, whose options it shares: the Transformer's step frequencies, the step
projection kept on the residual path) with a mel upsampler and a 1x1 mel projection in every residual layer
(`mel_upsampler: per_layer`); its features are NVIDIA Tacotron 2's (`tacotron2`: reflect-padded centred frames,
Slaney mels to 8 kHz, ln with floor 1e-5). The original samples all T steps; `--steps fast` takes lmnt's 6-step
vocoder schedule where it fits the training schedule. Nothing in the file is run (see torch_checkpoint.py).
"""

from tf_diffwave.config import merge
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import read_json_config, typed_entry
from tf_diffwave.interop.model_folder import StateDict, fit_fast_schedule
from tf_diffwave.interop.rf5_diffwave import convert_philsyn_layout, rf5_wavenet_config, rf5_wavenet_weights

VOCODER_FAST_SCHEDULE = [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]  # lmnt-com/diffwave's, for `--steps fast`
UPSAMPLE_KERNEL = (1, 1, 3, 32)  # each block's ConvTranspose2d(1, 1, (3, 32), stride (1, 16)): [in, out, mel, time]


def philsyn_vocoder_config(source, path):
    """This project's config for the vocoder a philsyn `config_*.json` describes; errors name its keys."""
    config = rf5_wavenet_config(source, path)
    trainset = source.get("trainset_config") if isinstance(source.get("trainset_config"), dict) else {}

    def get(key, kind, default):
        if key not in trainset:
            return default
        return typed_entry(trainset, key, kind, path, "trainset_config.", "philsyn's DiffWave vocoder")

    hop = get("hop_length", int, 256)
    if hop != 256:
        raise UserError(f"{path}: trainset_config.hop_length = {hop}, but philsyn's mel upsampler (16 x 16) only "
                        f"makes hop 256")
    n_fft = get("filter_length", int, 1024)
    merge(config, {
        "data": {"kind": "ljspeech", "path": "data/ljspeech-demo", "crop_frames": get("segment_length", int, 16000)
                 // hop},
        "audio": {"sample_rate": get("sampling_rate", int, 22050), "n_fft": n_fft,
                  "win_length": get("win_length", int, n_fft), "hop_length": hop, "n_mels": 80,
                  "fmin": float(get("mel_fmin", (int, float), 0.0)), "fmax": float(get("mel_fmax", (int, float),
                                                                                       8000.0)),
                  "log_floor": 1e-5, "features": "tacotron2"},
        "model": {"unconditional": False, "wavenet": {"mel_upsampler": "per_layer"}},
        "diffusion": {"fast_schedule": VOCODER_FAST_SCHEDULE},
    }, "", f"{path} (as this project's config)")
    fit_fast_schedule(config["diffusion"], path)
    return config


def philsyn_vocoder_weights(state, config, path):
    """Keras weights {layer: {weight: array}} from philsyn's vocoder state dict: its WaveNet's, and each residual
    layer's upsampler and mel projection; every key must be used once."""
    m = config["model"]["wavenet"]
    c, n_mels = m["residual_channels"], config["audio"]["n_mels"]
    conditioning = {key: value for key, value in state.items() if ".upsample_conv2d." in key or ".mel_conv." in key}
    weights = rf5_wavenet_weights({k: v for k, v in state.items() if k not in conditioning}, config, path)
    state = StateDict(conditioning, path)
    for i in range(m["residual_layers"]):
        key = f"residual_layer.residual_blocks.{i}"
        for n in (1, 2):  # weight norm over the whole kernel; [1, 1, mel 3, time 32] -> Keras [time, mel, out, in]
            kernel = state.weight_normed(f"{key}.upsample_conv2d.{n - 1}", UPSAMPLE_KERNEL)
            weights[f"layer_{i}_mel_upsampler_{n}"] = {
                "kernel": kernel[0, 0].T[:, :, None, None], "bias": state.take(f"{key}.upsample_conv2d.{n - 1}.bias",
                                                                                (1,))}
        projection = state.conv1d(f"{key}.mel_conv.conv", 2 * c, n_mels, normed=True)
        order = list(range(c, 2 * c)) + list(range(c))  # philsyn: tanh of the first C; the projection's gate first
        weights[f"conditioner_projection_{i}"] = {"kernel": projection["kernel"][0][:, order],
                                                  "bias": projection["bias"][order]}
    state.check_all_used()
    return weights


def convert_philsyn_vocoder(checkpoint_path, config_path, out_dir, overrides=(), export=True):
    """Write a model folder for a philsyn/DiffWave-Vocoder checkpoint and its config JSON; return the loaded model
    (tf_diffwave.load)."""
    def make_config():
        source = read_json_config(config_path, ("diffusion_config", "wavenet_config"), "a philsyn/DiffWave-Vocoder")
        return philsyn_vocoder_config(source, config_path)

    return convert_philsyn_layout(checkpoint_path, "philsyn-vocoder", make_config, philsyn_vocoder_weights,
                                  out_dir, overrides, export)
