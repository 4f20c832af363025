"""`python -m tap_blogger` runs the tap's command line."""

from tap_blogger.tap import TapBlogger

TapBlogger.cli()
