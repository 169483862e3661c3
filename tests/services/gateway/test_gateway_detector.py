"""The detector runs line by line and remembers lines: it must find what a scan of the
whole text finds, at the same places, whatever ends the lines, and still fail closed."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator

from llmdocs.services.gateway.security import (
    DETECTOR_ERROR,
    Detector,
    Finding,
    _joined,
    _Part,
    any_of,
)
from services.gateway.wholetext import WholeText

KEY = ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq3xZ0Jx\nq9Hn0Ox2Lw==\n"
       "-----END ENCRYPTED PRIVATE KEY-----")  # a type detect-secrets does not name
PROMPT = "\n".join([
    "You write one section of a technical document.",
    "Document request: describe the user service; ask jane.doe@example.com or call",
    "+44 20 7946 0958 (or, from the US, 555-867",  # a phone number across the break
    "5309), in London (020)",
    "20 7946 0958, for access.",
    "Sources:",
    "  password: {type: string, format: password}",
    "  api_key =",  # an assignment across the break
    "    'Zx81kqPl0wnT'",
    "  token: ghp_abcdefghijklmnopqrstuvwxyz0123456789 AKIAIOSFODNN7EXAMPLE",
    "  card 4111 1111 1111 1111, SSN 123-45-6789, postgres://bob:s3cret@db/x",
    KEY,
    'const apiSecret = "kls8d7f6g5h4"',  # low entropy, but assigned to a secret's name
    '  signature: "gs37PxKN4kfJSDAf6ZRkQunNMlTi19CixGaKCi0z"',  # random: 40 of 62 chars
    "  salt = 'Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc'",  # 23 distinct characters: above the 4.5 bits
    'Say "hello" when the field "password" is required; x-api-key: ${API_KEY}',
    "  password:",  # a schema, not a value, across the break
    "    type: string",
    "Answer with the Markdown of the section only.",
])
NOT_SECRETS = {"{type:", "type:", "hello", "password", "${API_KEY}", "required"}


def values(text: str, findings: tuple[Finding, ...]) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in findings]


def test_a_prompt_is_found_as_by_a_scan_of_the_whole_text() -> None:
    detector = Detector(keywords=["user service"])
    expected = WholeText(Detector(keywords=["user service"])).findings(["hi", PROMPT])
    assert detector.scan(["hi", PROMPT]).findings == expected
    found = values(PROMPT, expected)
    assert {("email", "jane.doe@example.com"), ("phone", "+44 20 7946 0958"),
            ("phone", "555-867\n5309"),
            ("phone", "(020)\n20 7946 0958"), ("password_assignment", "Zx81kqPl0wnT"),
            ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"), ("private_key", KEY),
            ("credit_card", "4111 1111 1111 1111"), ("national_id", "123-45-6789"),
            ("keyword", "user service"), ("secret_keyword", "kls8d7f6g5h4"),
            ("high_entropy", "gs37PxKN4kfJSDAf6ZRkQunNMlTi19CixGaKCi0z"),
            ("base64_high_entropy_string", "Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc")} <= set(found)
    assert not NOT_SECRETS & {value for _, value in found}
    # the second prompt reuses most lines, now from the memo, and finds the same
    again = "A different first line\n" + PROMPT.replace("jane.doe", "john.roe")
    assert detector.scan([again]).findings == WholeText(
        Detector(keywords=["user service"])).findings([again])
    alone = "in London (020)\n20 7946 0958."  # the one break a match runs across
    assert values(alone, detector.scan([alone]).findings) == [("phone", "(020)\n20 7946 0958")]


def test_findings_on_later_lines_are_where_they_stand_whatever_ends_the_lines() -> None:
    detector = Detector()
    for end in ("\n", "\r\n", "\r", "\u2028", "\x0b"):
        text = end.join(["intro line", "mail jane.doe@example.com now",
                         "key AKIAIOSFODNN7EXAMPLE", 'x = "Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc"',
                         'y = "kls8d7f6g5h4"', "password: {type: string}", "call 555 867",
                         "5309 or +44 20 7946 0958", "password: hunter2hunter", ""])
        found = detector.scan([text]).findings
        assert values(text, found) == [
            ("email", "jane.doe@example.com"), ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
            ("base64_high_entropy_string", "Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc"),
            # one [\s.-] between the digits: any line end but "\r\n"
            *([("phone", f"555 867{end}5309")] if end != "\r\n" else []),
            ("phone", "+44 20 7946 0958"), ("password_assignment", "hunter2hunter")], repr(end)
        assert found == WholeText(Detector()).findings([text]), repr(end)


PIECES = ["", " ", "555", "867-", "5309", "(020)", "+44", "+", ")", "password", "api_key",
          "client-secret", "=", ":", "'", "'hunter2hunter'", "AKIAIOSFODNN7EXAMPLE",
          "jane@example.com", "jane", "@", "example.com", "AKC1234567890",
          "-----BEGIN DSA PRIVATE KEY-----", "-----END DSA PRIVATE KEY-----",
          "-----BEGIN ENCRYPTED PRIVATE KEY-----", "x", '"kls8d7f6g5h4"', "4111 1111",
          "1111 1111", "DE89 3704 0044 0532 0130 00", "123-45-6789", "AB 12 34 56 C",
          "postgres://bob:s3cret@db/x", "//registry/:_authToken=", "npm_abcdef", "Project",
          "Zeus", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4",
          '"Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc"', '"hello"', "'password'", '"apiKey": "oa_citations"',
          "password: {type: string, format: password}", "type: string", "{type:", "string",
          "${API_KEY}", "<password>", "****", "xxxx", "%(pw)s", "Tr0ub4dor&3xQ", "Must be",
          "\n", "\n", "\n\n", "\r\n", "\r", "\u2028", "\x0b", "-", ".", "12", "123",
          "169.254.169.254", "10.0.0.1", "1.22.333", ".4444", "+1.555.867.5309",
          "postgres://USER:PASSWORD@db.internal", "https://me:xxxx@", "redis://:password@",
          '"4bf92f3577b34da6a3ce929d0e0e4736"', '"trace_id": ', "token: ", "abc_id ",
          '"0123456789abcdef0123456789abcdef"']


def test_random_texts_are_found_as_by_a_scan_of_the_whole_text() -> None:
    """Texts of pieces that make findings, alone or with their neighbours across a line
    break; one detector scans them all, so later texts come partly from the memo."""
    rng, detector = random.Random(6), Detector(keywords=["Project Zeus"])
    for _ in range(600):
        text = "".join(rng.choice(PIECES) + rng.choice(["", " ", "\n", "\n\n", "\r\n"])
                       for _ in range(rng.randint(1, 24)))
        if "AKC" in text:  # a token at a line's start keeps no line break (see Detector)
            text = text.replace("\nAKC", "\n AKC")
        assert detector.scan([text]).findings == WholeText(
            Detector(keywords=["Project Zeus"])).findings([text]), text


def test_parts_join_where_one_ends_and_the_next_starts_as_a_pattern_needs() -> None:
    """Blocks of lines are put together like lines: a Join pattern (here 7) may match
    across the break between two parts when the first part's end and the next part's
    start allow it, or inside a part; offsets run on."""
    held: dict[str, _Part] = {
        "a\n\n": ([(1, "x", 0, 1)], (7,), (7,), ()), "b\n\n": ([], (7,), (), (3,)),
        "c": ([(2, "y", 0, 1)], (), (), ())}
    found, starts, ends, across = _joined("a\n\nb\n\nc", "\n\n", held.__getitem__,
                                          held.__getitem__, 99)
    assert (found, starts, ends, set(across)) == (
        [(1, "x", 0, 1), (2, "y", 6, 7)], (7,), (), {7, 3})
    assert _joined("b\n\na\n\n", "\n\n", held.__getitem__, held.__getitem__, 99)[3] == (3,)


def test_one_search_stands_for_all_patterns_or_for_none() -> None:
    """A line runs the per-line patterns only where their alternation matches; patterns
    that cannot stand in one alternation make every line run them all."""
    both = any_of([re.compile("secret", re.I), re.compile(r"\d{3}(?=x)")])
    assert both is not None
    assert both.search("a SECRET") and both.search("123x") and not both.search("123 sec")
    assert any_of([re.compile("a"), re.compile(r"(b)\1")]) is None  # \1 would point at a
    assert any_of([re.compile("(?P<n>a)"), re.compile("(?P<n>b)")]) is None
    assert any_of([re.compile("a # comment", re.X)]) is None  # it would eat the ")"
    assert any_of([re.compile("a", re.A)]) is None


class Counting:
    """A value plugin that counts the lines it is asked about and fails on one."""

    def __init__(self, fail_on: str = "") -> None:
        self.seen: Counter[str] = Counter()
        self.fail_on = fail_on

    def analyze_string(self, line: str) -> Iterator[str]:
        self.seen[line] += 1
        if self.fail_on and self.fail_on in line:
            raise RuntimeError("broken plugin")
        if "marker" in line:
            yield "marker"


def test_a_line_is_scanned_once_and_found_again_at_its_new_place() -> None:
    detector, counting = Detector(), Counting()
    detector._value_plugins.append(("counting", counting))
    shared = "an unchanging line with a marker\n"
    first, second = "query one\n" + shared, "a longer query two\n" + shared + "end"
    assert values(first, detector.scan([first]).findings) == [("counting", "marker")]
    assert values(second, detector.scan([second]).findings) == [("counting", "marker")]
    assert counting.seen == {"query one\n": 1, shared: 1, "a longer query two\n": 1,
                             "end": 1}


def test_a_failing_plugin_fails_the_scan_closed_and_its_line_is_not_kept() -> None:
    detector, counting = Detector(), Counting(fail_on="boom")
    detector._value_plugins.append(("counting", counting))
    text = "fine line\nboom line with a marker\nlast"
    scan = detector.scan([text])
    assert scan.error and scan.sensitive and scan.types == [DETECTOR_ERROR]
    assert detector.scan([text]).error  # not remembered as clean either
    assert counting.seen["boom line with a marker\n"] == 2
    counting.fail_on = ""
    assert values(text, detector.scan([text]).findings) == [("counting", "marker")]
    assert counting.seen["fine line\n"] == 1  # the lines before it were kept
