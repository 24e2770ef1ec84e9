"""Maintenance tools (``python -m zsrec_ray.tools.<name>``)."""
