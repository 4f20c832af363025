"""Local Blogger API v3 + OAuth2 emulator for tests and benchmarks.

from tests.blogger_emulator import BloggerEmulator, Dataset

with BloggerEmulator(Dataset.named("tiny")) as emu:
    config = emu.oauth_config()
"""

from .data import COMMENT_STATUSES, PAGE_STATUSES, POST_STATUSES, BlogSpec, Dataset, parse_timestamp
from .faults import KINDS as FAULT_KINDS
from .faults import TRANSIENT_KINDS, FaultInjector
from .server import API_ROUTES, RATE_LIMITERS, ROUTES, SCOPE_READONLY, BloggerEmulator, RequestLog

__all__ = [
    "API_ROUTES",
    "COMMENT_STATUSES",
    "FAULT_KINDS",
    "PAGE_STATUSES",
    "POST_STATUSES",
    "RATE_LIMITERS",
    "ROUTES",
    "SCOPE_READONLY",
    "TRANSIENT_KINDS",
    "BlogSpec",
    "BloggerEmulator",
    "Dataset",
    "FaultInjector",
    "RequestLog",
    "parse_timestamp",
]
