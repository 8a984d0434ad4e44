"""The digit classifier's config section (`classifier.*`), registered with tf_diffwave.config without importing
TensorFlow, so that classifier configs load anywhere configs do."""

from tf_diffwave.config import Section, register_section

register_section("classifier", Section(
    defaults={                        # the SC09 digit classifier used by the quality metrics
        "channels": 32,               # convolution channels of the first block (doubled in each of 3 blocks)
        "features": 128,              # width of the penultimate layer (the features FID is computed on)
        "dropout": 0.3,
        "max_shift": 0.1,             # training augmentation: random circular time shift, in seconds
    },
    recorded=False,  # a model's run does not use it; the classifier's own folder writes its config itself
))
