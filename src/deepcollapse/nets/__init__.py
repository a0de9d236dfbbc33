"""Real networks: ResNet-20 backbone + L-layer MLP head (the DUFM on real features) and their engine
(SPEC.md, "Real networks"). A network run is `deepcollapse.train.train(NetConfig(...))`, the same run
path and record as a DUFM run.

    ResNet20(in_channels, channels, shortcut)  backbone: NHWC images -> c_3-dim features (nets.resnet)
    MLPHead(d_in, K, L, width, activation)     bias-free head W_1..W_L, features like dufm.forward
    Net(backbone, head), build_net(cfg, C, K, seed)
    NetEngine(cfg, data=None)                  lanes = seeds, chunk = eval_every epochs (nets.train)
    model_from_params(cfg, lane_params, C)     a trained lane's network back from its record
"""

from deepcollapse.config import NetConfig

from .augment import random_crop_flip
from .head import MLPHead, head_dims
from .model import Net, build_net
from .resnet import BasicBlock, ResNet20, count_params, shortcut_a
from .synthetic import synthetic_images
from .train import NetEngine, evaluate, layer_names, load_data, loss_fn, model_from_params

__all__ = [
    "BasicBlock", "MLPHead", "Net", "NetConfig", "NetEngine", "ResNet20", "build_net", "count_params",
    "evaluate", "head_dims", "layer_names", "load_data", "loss_fn", "model_from_params", "random_crop_flip",
    "shortcut_a", "synthetic_images",
]
