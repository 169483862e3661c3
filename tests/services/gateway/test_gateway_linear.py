"""The security filter on hostile text: every pattern it runs takes time linear in the
text (a prompt of "1" * 60000 took 57 s and froze every service in the process, "a." *
50000 69 s, "token" and 1,000 spaces 8 s), a large scan leaves the event loop free, a
scan reads at most its cap and counts the rest as sensitive, and text is read as it
shows: invisible characters and other spaces and dashes do not hide a secret or a
national id."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import sys
import time
import unicodedata
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.keyword import KeywordDetector

from llmdocs.core.config import Settings
from llmdocs.services.gateway.rules import (
    _LINEAR,
    _SPACES,
    _linear,
    _LinearKeywords,
    plugin_rules,
)
from llmdocs.services.gateway.security import (
    _HIDDEN,
    DETECTOR_ERROR,
    INLINE_CHARS,
    UNSCANNED,
    Detector,
    Scanner,
    readable,
    redact,
)
from services.gateway.conftest import Fake, Gateway, headers
from services.gateway.test_gateway_detector import PIECES
from services.gateway.test_gateway_outgoing import cloud

# hostile text of about n characters: the issue's, and one for each pattern that was
# not linear (ours: the dotted quad, e-mail, connection string; detect-secrets': JWT,
# OpenAI, npm, the keyword detector, Cloudant/IBM/SoftLayer's `name = value`)
HOSTILE: dict[str, Callable[[int], str]] = {
    "digits": lambda n: "1" * n,
    "dotted": lambda n: "a." * (n // 2),
    "domain": lambda n: "x@" + "a." * (n // 2),
    "scheme": lambda n: "a+" * (n // 2) + "://",
    "jwt": lambda n: "eyJ" * (n // 3),
    "openai": lambda n: "sk-" * (n // 3),
    "npm": lambda n: "_authToken= " + "//" * (n // 2),
    "keyword": lambda n: "api_key" * (n // 7),
    "spaces": lambda n: "token" + " " * n + "!",
    "cloudant": lambda n: "cl_key" + " " * n + "!",
    "private key": lambda n: "-----BEGIN " * (n // 11),
    "quoted values": lambda n: '"Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc" ' * (n // 26),
    "findings": lambda n: "jane.doe@example.com 555-867-5309 " * (n // 34),
    "lines": lambda n: "1\n" * (n // 2),  # a phone number may run across each break
}


def scan_seconds(text: str) -> float:
    """The best of three scans of `text`, each by a new detector (nothing remembered)."""
    best = float("inf")
    for _ in range(3):
        detector = Detector(max_chars=len(text))
        started = time.perf_counter()
        assert not detector.scan([text]).error
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_scan_of_hostile_text_grows_linearly(kind: str) -> None:
    """Four times the text takes about four times as long: under eight times (a
    quadratic pattern takes sixteen, a cubic one sixty-four)."""
    make = HOSTILE[kind]
    small, large = scan_seconds(make(16_384)), scan_seconds(make(65_536))
    assert large < 8 * small, f"{kind}: {small:.3f} s, then {large:.3f} s at 4x"


def regex_plugins() -> list[type[Any]]:
    plugins: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
    return [cls for cls in plugins if issubclass(cls, RegexBasedDetector)]


async def test_other_requests_are_answered_while_a_large_scan_runs(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    """A message of a million digits (a scan of seconds): the service keeps answering
    /health/live meanwhile, never waiting a quarter of the call's time for an answer
    (it waited out the whole scan)."""
    _, url = await fake("openai")
    app = await gateway(cloud(url))
    big = {"model": "gpt-4o-mini", "max_tokens": 5,
           "messages": [{"role": "user", "content": "1" * 1_000_000}]}
    async with httpx.AsyncClient(base_url=app.url, timeout=300,
                                 headers=headers(settings)) as http:
        started = time.perf_counter()
        call = asyncio.create_task(http.post("/v1/chat/completions", json=big))
        ended: list[float] = []
        call.add_done_callback(lambda _: ended.append(time.perf_counter()))
        answered = []
        while not call.done():
            assert (await http.get("/health/live")).status_code == 200
            answered.append(time.perf_counter())
        assert (await call).status_code == 200
    marks = [started, *(t for t in answered if t < ended[0]), ended[0]]
    took = ended[0] - started
    assert len(marks) > 4, f"{len(marks) - 2} answers in {took:.2f} s"
    gap = max(later - earlier for earlier, later in itertools.pairwise(marks))
    assert gap < took / 4, f"{gap:.2f} s without an answer in a call of {took:.2f} s"


async def test_a_scan_whose_worker_dies_fails_closed() -> None:
    """A large scan runs in a worker process; one killed fails the scan (sensitive, not
    clean), and the next large scan gets a new worker."""
    scanner = Scanner(processes=1)
    large = ["mail jane.doe@example.com " + "x" * INLINE_CHARS]
    try:
        assert (await scanner.scan(large)).types == ["email"]
        assert scanner._pool is not None
        for pid in list(scanner._pool._processes):  # the worker this test started
            os.kill(pid, signal.SIGKILL)
        failed = await scanner.scan(large)
        assert failed.error and failed.sensitive and failed.types == [DETECTOR_ERROR]
        assert (await scanner.scan(large)).types == ["email"]
    finally:
        scanner.close()


def test_the_detector_runs_each_pattern_it_has_in_its_linear_form() -> None:
    """Each rewrite still applies to the installed detect-secrets (else its pattern runs
    as it is, and the growth test above says whether that is linear)."""
    originals = {rx.pattern for cls in regex_plugins() for rx in cls().denylist}
    assert set(_LINEAR) <= originals
    assert sum(_SPACES[0] in pattern for pattern in originals) >= 4
    rules, values = plugin_rules()
    running = {rule[1].pattern for rule in rules}
    assert not running & (set(_LINEAR) | {p for p in originals if _SPACES[0] in p})
    assert any(isinstance(plugin, _LinearKeywords) for _, plugin in values)
    assert sum(rx.pattern.startswith("(?<!\\w)(?>") for rx in _LinearKeywords._PATTERNS) == 4


SAMPLES = [
    *PIECES,
    "auth: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "eyJhbGci.eyJzdWIi", "xeyJeyJa.b.c", "eyJabc", "eyJa.",
    "key sk-" + "a" * 30 + "T3BlbkFJ" + "b" * 20,
    "sk-proj-" + "A1" * 15 + "T3BlbkFJ" + "c" * 20 + " and sk-" + "d" * 20 + "T3BlbkFJ" + "e" * 20,
    "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz012345",
    "see //a/b and //registry/:_authToken= 12345678-1234-1234-1234-123456789abc x",
    "cloudant_password = 'abcdefghijklmnopqrstuvwx'", "clou-api-key: " + "0123456789abcdef" * 4,
    "cl_key   :   " + "a" * 24,
    "ibm_cloud_iam_api_key  =>  " + "A" * 44, "softlayer_api_key " + "b" * 64,
    'cos_secret_access_key = "' + "0123456789abcdef" * 3 + '"',
    'api_key = "hunter2hunter"', 'my_api_keyx: "s3cr3tvalue"', 'api_keyapi_key = "zzz9zzz9"',
    'private_key "abcdef123456";', 'if x == "s3cr3t" and secret_value', "password => 'abc123def'",
]


def spans(rx: re.Pattern[str], group: int, check: Callable[[str], bool] | None,
          text: str) -> list[tuple[int, int]]:
    return [m.span(group) for m in rx.finditer(text) if check is None or check(m.group(group))]


def test_the_linear_patterns_find_what_the_originals_find() -> None:
    """Each rewritten plugin pattern matches where its original does: the same spans,
    or one that holds the original's (a run taken whole); the keyword detector yields
    the same values."""
    for cls in regex_plugins():
        for original in cls().denylist:
            if original.pattern not in _LINEAR and _SPACES[0] not in original.pattern:
                continue
            rx, group, check = _linear(original, None)
            for text in SAMPLES:
                before, after = spans(original, 0, None, text), spans(rx, group, check, text)
                assert all(any(s <= b and b_end <= e for s, e in after)
                           for b, b_end in before), (original.pattern, text)
                assert all(any(s <= b and b_end <= e for b, b_end in before)
                           for s, e in after), (original.pattern, text)
    old, new = KeywordDetector(), _LinearKeywords()
    for text in SAMPLES:
        assert list(new.analyze_string(text)) == list(old.analyze_string(text)), text


def test_a_scan_reads_at_most_its_cap_and_the_rest_is_sensitive() -> None:
    detector = Detector(max_chars=100)
    secret = "mail jane.doe@example.com"
    scan = detector.scan([secret, "a" * 60, "b" * 60 + " AKIAIOSFODNN7EXAMPLE", "c"])
    found = [(f.type, f.message, f.start, f.end) for f in scan.findings]
    assert found == [("email", 0, 5, 25), (UNSCANNED, 2, 15, 81), (UNSCANNED, 3, 0, 1)]
    assert scan.error and scan.sensitive
    assert not detector.scan(["a" * 100]).sensitive  # the cap itself is read


HIDDEN = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2066\ufe0f\U000e0041"


@pytest.mark.parametrize("hidden", list(HIDDEN), ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_hide_no_secret(hidden: str) -> None:
    text = f"key AKIA{hidden}IOSFODNN7EXAMPLE, mail jane{hidden}.doe@exam{hidden}ple.com"
    scan = Detector().scan([text])
    found = {(f.type, text[f.start:f.end]) for f in scan.findings}
    assert found == {("aws_access_key", f"AKIA{hidden}IOSFODNN7EXAMPLE"),
                     ("email", f"jane{hidden}.doe@exam{hidden}ple.com")}
    placeholders: dict[str, str] = {}
    assert redact(text, scan.findings, placeholders) == (
        "key [AWS_ACCESS_KEY_1], mail [EMAIL_2]")


@pytest.mark.parametrize("ssn", [
    "078-05-1120", "078 05 1120", "078.05.1120", "078\u202f05\u202f1120", "078\u201305\u20131120",
    "078\u00a005\u00a01120", "\uff10\uff17\uff18-\uff10\uff15-\uff11\uff11\uff12\uff10",
    "078-0\u200b5-1120"])
def test_a_national_id_is_found_however_its_groups_are_apart(ssn: str) -> None:
    text = f"SSN {ssn}, thanks"
    assert [(f.type, text[f.start:f.end]) for f in Detector().scan([text]).findings] == [
        ("national_id", ssn)]


@pytest.mark.parametrize("text", ["DOB: 1985-03-14", "date of birth 14/03/1985",
                                  'patient born on March 14, 1985 in Leeds',
                                  '{"birthDate": "1985-03-14"}', "D.O.B. 14 March 1985",
                                  "birthday: 3.14.85", "Date_of_Birth=14th of March 1985"])
def test_a_date_next_to_a_word_for_birth_is_personal_data(text: str) -> None:
    found = [(f.type, text[f.start:f.end]) for f in Detector().scan([text]).findings]
    assert len(found) == 1 and found[0][0] == "date_of_birth"
    assert re.search(r"\d", found[0][1]) and "birth" not in found[0][1].lower()


@pytest.mark.parametrize("text", ["released 2024-01-15", "born in 1985", "created: 1985-03-14",
                                  "birthDate: {type: string, format: date}",
                                  "the birthday paradox needs 23 people"])
def test_other_dates_and_birth_words_alone_are_not(text: str) -> None:
    assert not Detector().scan([text]).sensitive


def test_every_format_character_is_left_out() -> None:
    """The characters left out are listed by range: Unicode's format characters (Cf)
    are all among them."""
    format_characters = [chr(c) for c in range(sys.maxunicode + 1)
                         if unicodedata.category(chr(c)) == "Cf"]
    assert len(format_characters) > 150
    assert all(_HIDDEN.fullmatch(c) for c in format_characters)


def test_text_as_read_keeps_its_length_but_for_what_it_leaves_out() -> None:
    assert readable("plain ascii") == ("plain ascii", [])
    assert readable("a\u2009b\u2212c\uff21") == ("a b-cA", [])
    assert readable("\u200ba\u200b\u200bb") == ("ab", [0, 1, 1])
