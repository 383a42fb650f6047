"""Neural PDE solvers: FNO and TFNO, SFNO, UNet, Transformer (and, in pinn/deeponet, PINN MLPs and DeepONets).

Grid solvers are registered by name (:mod:`lowprec.models.registry`): ``build_model("fno", ...)``.
"""

from .deeponet import DeepONet, PODDeepONet
from .fno import FNO, TFNO, FNOBlock
from .gino import GINO
from .layers import ChannelMLP, DomainPadding, GridEmbedding, mark_coordinate_input
from .pinn import MLP, PINN, InputTransform
from .registry import available_models, build_model, register_model
from .sfno import SFNO, SphereEmbedding
from .transformer import Attention, MatMul, Transformer, TransformerBlock
from .unet import UNet, UNetBlock
from .wrappers import Normalized

__all__ = [
    "FNO",
    "TFNO",
    "FNOBlock",
    "GINO",
    "ChannelMLP",
    "DomainPadding",
    "GridEmbedding",
    "mark_coordinate_input",
    "Normalized",
    "UNet",
    "UNetBlock",
    "Transformer",
    "TransformerBlock",
    "Attention",
    "MatMul",
    "PINN",
    "MLP",
    "InputTransform",
    "DeepONet",
    "PODDeepONet",
    "register_model",
    "build_model",
    "available_models",
    "SFNO",
    "SphereEmbedding",
]
