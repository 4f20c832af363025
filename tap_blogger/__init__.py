"""Singer tap for the Google Blogger API v3."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tap-blogger")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
