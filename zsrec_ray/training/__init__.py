"""Training utilities shared by every learned model: negative sampling, early stopping."""
