"""Quality: vocoder measures, SC09 metrics, the digit classifier, reports, schedule search."""
