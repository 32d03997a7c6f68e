"""imagion: predict how well an Instagram image will do before it is posted."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imagion")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

from imagion.errors import ImagionError

__all__ = ["ImagionError", "__version__"]
