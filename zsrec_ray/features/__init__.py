"""Dataset-agnostic node features (METHOD.md "Features"): activity, co-occurrence, interaction."""

from zsrec_ray.features.activity import activity_blocks, percentile_bins
from zsrec_ray.features.cooccurrence import cooccurrence_blocks
from zsrec_ray.features.embeddings import node2vec_embeddings, node_embeddings, spectral_embeddings
from zsrec_ray.features.featureset import FeatureSet, config_hash
from zsrec_ray.features.featurizer import cached_featurize, feature_cache_key, featurize, interactions_hash
from zsrec_ray.features.interaction import interaction_blocks

__all__ = [
    "FeatureSet", "activity_blocks", "cached_featurize", "config_hash", "cooccurrence_blocks",
    "feature_cache_key", "featurize", "interaction_blocks", "interactions_hash", "node2vec_embeddings",
    "node_embeddings", "percentile_bins", "spectral_embeddings",
]
