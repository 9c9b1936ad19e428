"""Test-session settings: hybrid's on-disk compile cache stays off unless a test
turns it on in a subprocess (tests/lowering/test_persistent_cache.py), so the suite
neither reads programs compiled by an earlier run nor fills the user's cache."""

import os

os.environ["HYBRID_CACHE_DIR"] = "off"
