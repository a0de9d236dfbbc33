"""Collapse metrics of any PyTorch model, layer by layer (optional extra `torch`).

    stats = collect(model, loader, ["layer1", "layer2", "layer3", "layer4"], num_classes=10,
                    classifier="fc")
    stats.metrics()        # {layer: {"nc1", "dnc1", "nc1_cdnv", "nc2_etf", "nc3", ranks, ...}}
    stats.table()          # tidy pandas table, one row per layer x metric

`collect` streams the model once over the loader and keeps only the class statistics of every named
layer (`deepcollapse.stats.StreamStats`, the type the project's Flax networks use), never the
features. Modules: `layers` (lookup by `named_modules` name), `pools` (feature maps -> vectors),
`collect` (the hooks and the streaming loop).
"""

from .collect import collect
from .layers import find_modules
from .pools import POOLS, pool_features

__all__ = ["POOLS", "collect", "find_modules", "pool_features"]
