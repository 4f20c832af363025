"""singer-sdk's standard tap tests, run for real against the local emulator."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_blogger.tap import TapBlogger
from tests.blogger_emulator import BloggerEmulator, Dataset

# The standard suite syncs while pytest collects, so the emulator starts at import.
_emulator = BloggerEmulator(Dataset.named("tiny"))
atexit.register(_emulator.stop)

TestTapBlogger = get_tap_test_class(
    TapBlogger,
    config=_emulator.oauth_config(),
    suite_config=SuiteConfig(max_records_limit=None),
    parse_env_config=False,
)
