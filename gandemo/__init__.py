"""gandemo: explore, train and stylise with small GANs and neural style transfer."""

from .errors import GandemoError
from .generator import Generator, load_generator

__version__ = "0.1.0"
__all__ = ["GandemoError", "Generator", "load_generator", "__version__"]
