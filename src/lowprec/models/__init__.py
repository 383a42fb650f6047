"""Neural PDE solvers: FNO and TFNO (more in later modules)."""

from .fno import FNO, TFNO, FNOBlock
from .layers import ChannelMLP, DomainPadding, GridEmbedding
from .wrappers import Normalized

__all__ = ["FNO", "TFNO", "FNOBlock", "ChannelMLP", "DomainPadding", "GridEmbedding", "Normalized"]
