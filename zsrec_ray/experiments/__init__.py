"""Experiment protocols over the core: zero-shot, leave-one-out, source -> target matrix, ablation,
interpolation, baselines runs, leave-one-source-out validation, and their reports.

Import the module you need (e.g. ``zsrec_ray.experiments.zeroshot``); this package imports nothing
eagerly, so a Ray worker that needs one protocol does not load the others.
"""
