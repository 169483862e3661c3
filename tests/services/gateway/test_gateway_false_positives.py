"""What ordinary prompts hold is no secret: quoted words, schemas, placeholders, IP
addresses, placeholder passwords in URLs, hashes and ids, the lines of real OpenAPI specs
and the prompts the document workflow sends; real secrets in the same shapes still are."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from llmdocs.examples import user_service_spec
from llmdocs.services.gateway.security import Detector
from llmdocs.services.orchestrator.settings import DocgenSettings
from llmdocs.services.promptstore import templates
from llmdocs.services.promptstore.seeding import load_seeds
from services.gateway.wholetext import WholeText

CORPUS = Path("/work/shared/corpus/openapi")
# every spec, with the personal data it really holds: the USPTO spec names its
# publisher's contact address, an e-mail address like any other to the detector
SPECS = {files("llmdocs.examples") / "user-service.yaml": set(),
         CORPUS / "uspto.yaml": {("email", "developer@uspto.gov")}}

NOT_SECRETS = [
    'say "hello"', 'the field "password" is required', "token = 'abc'",
    "password: {type: string}", "x-api-key: ${API_KEY}", "password: <password>",
    'api_key = "{{ secret }}"', "password = %(pw)s", "password: ****", "api_key=xxxx",
    "password: string", "secret: required", '{"password": "string"}', "password: null",
    "PASSWORD=${DB_PASSWORD}", 'api_key = os.environ["API_KEY"]', "secret = get_secret()",
    "password = settings.db_password", '"apiKey": "oa_citations",',
    "password:\n  type: string\n  format: password",  # across the break: a key follows
    "Password: Must be at least 12 characters long.", "api_key: SecretStr | None = None",
    "password: str = Field(min_length=12)", "  secret: Optional[str] = None",
    # a dotted quad (an IPv4 address, a version) holds no phone number
    "the metadata service at 169.254.169.254 answers", "host 10.0.12.345:5432",
    "ping 192.168.100.200 or 10.10.123.234/24.", "release v1.2.3456", "build 1.22.333.4444",
    "route 192.168.100.200 255.255.255.0", "169.254.169.254-169.254.169.255 3 times",
    # basic-auth URLs whose password shows where one goes
    "DATABASE_URL=postgresql://llmdocs:secret@db/llmdocs", "curl https://user:pass@host/x",
    "redis://:password@cache:6379/0", "postgres://USER:PASSWORD@db.internal:5432/app",
    "url: postgres://${DB_USER}:${DB_PASS}@db/app", "${DB_USER}:${DB_PASS}@db",
    "mysql://root:<password>@localhost/db", "amqp://guest:{password}@mq//",
    "postgres://app:***@db/app", "https://me:xxxx@example.org",
    # hashes and ids in quotes: a trace id, a git commit, a content hash, filler
    'traceparent "4bf92f3577b34da6a3ce929d0e0e4736"',
    '"commit": "da39a3ee5e6b4b0d3255bfef95601890afd80709"',
    'sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    '{"span_id": "00f067aa0ba902b7", "user_id": "9f86d081884c7d659a2fea"}',
    '  "id": "a3bf4f1b2b0b822cd15d6c"', 'example "0123456789abcdef0123456789abcdef"',
    "filler ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
]
SECRETS = [
    ('password = "Tr0ub4dor&3xQ"', "password_assignment", "Tr0ub4dor&3xQ"),
    ('{"api_key": "sk-proj-8olanHLXOmK6zQAEX2UkY1ya3Vfja4ac"}', "password_assignment",
     "sk-proj-8olanHLXOmK6zQAEX2UkY1ya3Vfja4ac"),
    ('the value is "gs37PxKN4kfJSDAf6ZRkQunNMlTi19CixGaKCi0z"', "high_entropy",
     "gs37PxKN4kfJSDAf6ZRkQunNMlTi19CixGaKCi0z"),
    ("salt = 'Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc'", "base64_high_entropy_string",
     "Xk9Qm2Lp7Vn4Rt8Wz1Yb6Hc"),
    ('const apiSecret = "kls8d7f6g5h4"', "secret_keyword", "kls8d7f6g5h4"),
    ("export HOME=/srv\nPASSWORD=hunter2hunter\n", "password_assignment", "hunter2hunter"),
    ("password: hunter2hunter", "password_assignment", "hunter2hunter"),
    ("api_key =\n    'Zx81kqPl0wnT'", "password_assignment", "Zx81kqPl0wnT"),
    ("password: letmein", "password_assignment", "letmein"),
    ("the default password: `Tr0ub4dor&3xQ`", "password_assignment", "`Tr0ub4dor&3xQ`"),
    ("db: postgres://bob:s3cret@db/x", "basic_auth_credentials", "://bob:s3cret@"),
    # phone numbers written with dots or beside a dotted quad, a "+" before four groups
    ("call 555.867.5309", "phone", "555.867.5309"),
    ("call +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("tel +1.555.867.5309", "phone", "+1.555.867.5309"),
    ("on 10.0.0.1 555 867 5309", "phone", "555 867 5309"),
    ("host 10.0.0.1\n555-867-5309", "phone", "555-867-5309"),
    # a real password in a URL, a real default one too
    ("https://admin:Tr0ub4dor&3@host", "connection_string", "https://admin:Tr0ub4dor&3@host"),
    ("postgres://app:changeme@db/x", "basic_auth_credentials", "://app:changeme@"),
    ("postgres://postgres:postgres@localhost/db", "basic_auth_credentials",
     "://postgres:postgres@"),
    # a hex token named as one on its line, a hash's length or an id's key or not
    ('api_key = "4bf92f3577b34da6a3ce929d0e0e4736"', "password_assignment",
     "4bf92f3577b34da6a3ce929d0e0e4736"),
    ('token: "da39a3ee5e6b4b0d3255bfef95601890afd80709"', "hex_high_entropy_string",
     "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ('{"user_id": 7, "api_token": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7'
     '852b855"}', "hex_high_entropy_string",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ('"session_id": "4bf92f3577b34da6a3ce929d0e0e4736"', "hex_high_entropy_string",
     "4bf92f3577b34da6a3ce929d0e0e4736"),
    ('{"user_id": 7, "signature": "da39a3ee5e6b4b0d3255bfef95601890afd8070911"}',
     "hex_high_entropy_string", "da39a3ee5e6b4b0d3255bfef95601890afd8070911"),
]


def found(detector: Detector, texts: list[str]) -> set[tuple[str, str]]:
    return {(f.type, texts[f.message][f.start:f.end]) for f in detector.scan(texts).findings}


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_placeholders_schemas_and_quoted_words_are_not_sensitive(text: str) -> None:
    assert found(Detector(), [text]) == set()


@pytest.mark.parametrize(("text", "kind", "value"), SECRETS)
def test_real_secrets_are_still_found(text: str, kind: str, value: str) -> None:
    assert found(Detector(), [text]) == {(kind, value)}


@pytest.mark.parametrize("path", list(SPECS), ids=lambda path: path.name)
def test_every_line_of_a_real_spec_holds_no_secret(path: Path) -> None:
    """Each line as a prompt of its own, and the whole spec as one (a schema's value
    may stand on the next line): only the personal data the spec really holds, found
    where a scan of the whole text finds it."""
    spec = path.read_text(encoding="utf-8")
    detector = Detector()
    assert found(detector, spec.splitlines()) == SPECS[path]
    assert found(detector, [spec]) == SPECS[path]
    assert detector.scan([spec]).findings == WholeText(Detector()).findings([spec])


@pytest.mark.parametrize("chars", [DocgenSettings().source_chars, 1_000_000],
                         ids=["default-excerpt", "whole-spec"])
def test_a_workflow_prompt_from_the_user_service_spec_is_not_sensitive(chars: int) -> None:
    """The section-writing seed rendered as the workflow renders it, with the spec as
    a source document: its title, then its text cut to the workflow's limit (which
    keeps the first password schema), or whole."""
    seed = next(prompt for prompt in load_seeds() if prompt.name == "section-writing")
    assert isinstance(seed.content, str)
    prompt = templates.render(seed.content, {
        "query": "Create API documentation for the user service",
        "outline": "- Overview\n- Authentication\n- Users\n- Sessions",
        "section": "Authentication",
        "sources": f"User Service:\n{user_service_spec()}"[:chars]})
    assert "User Service:\nopenapi:" in prompt and "Write plain paragraphs" in prompt
    assert "password: {type: string, format: password" in prompt
    assert not Detector().scan([prompt]).sensitive
