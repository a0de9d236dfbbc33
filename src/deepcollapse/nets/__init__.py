"""Real networks: ResNet-20 backbone + L-layer MLP head (the DUFM on real features), their training
loop with streamed collapse metrics and resumable checkpoints (SPEC.md, "Real networks").

    NetConfig                                  validated run config (nets.config)
    ResNet20(in_channels, channels, shortcut)  backbone: NHWC images -> c_3-dim features (nets.resnet)
    MLPHead(d_in, K, L, width, activation)     bias-free head W_1..W_L, features like dufm.forward
    Net(backbone, head), build_net(cfg, C, K, seed)
    StreamStats.zeros(d, K).accumulate(F, y).finalize(); stream_summary(stats)
    train_network(cfg, out_dir, progress, seed) -> NetResult(config, seed, history, final, model)
"""

from .augment import random_crop_flip
from .config import NetConfig
from .head import MLPHead, head_dims
from .model import Net, build_net
from .resnet import BasicBlock, ResNet20, count_params, shortcut_a
from .stream import ClassStats, StreamStats, nc1_from_stats, stream_summary
from .synthetic import synthetic_images
from .train import NetResult, evaluate, layer_names, load_data, loss_fn, train_network

__all__ = [
    "BasicBlock", "ClassStats", "MLPHead", "Net", "NetConfig", "NetResult", "ResNet20", "StreamStats",
    "build_net", "count_params", "evaluate", "head_dims", "layer_names", "load_data", "loss_fn",
    "nc1_from_stats", "random_crop_flip", "shortcut_a", "stream_summary", "synthetic_images", "train_network",
]
