"""zsrec-ray: zero-shot recommendation with pretrained, dataset-agnostic neural recommenders on Ray."""

__version__ = "0.1.0"
