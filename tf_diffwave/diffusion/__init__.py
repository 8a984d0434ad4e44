"""The diffusion core: schedules, training objectives, reverse samplers and the synthesizer; no network named."""
