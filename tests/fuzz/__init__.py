"""Schemathesis against every service's OpenAPI document, on a running `llmdocs up`."""

from collections import Counter

import pytest

CASES = pytest.StashKey[dict[str, Counter[str]]]()  # service -> operation -> cases sent
