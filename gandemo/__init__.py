"""gandemo: explore, train and stylise with small GANs and neural style transfer.

``Generator`` and ``load_generator`` are imported on first use (they need torch), so ``import gandemo`` and the
command line's ``--help`` are quick.
"""

from typing import TYPE_CHECKING

from .errors import GandemoError
from .lazy import lazy_exports

if TYPE_CHECKING:
    from .generator import Generator, load_generator

__version__ = "0.1.0"
__all__ = ["GandemoError", "Generator", "load_generator", "__version__"]
__getattr__ = lazy_exports(__name__, {".generator": ("Generator", "load_generator")})
