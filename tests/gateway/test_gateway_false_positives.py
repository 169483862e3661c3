"""What ordinary prompts hold is no secret: quoted words, schemas, placeholders, the
lines of real OpenAPI specs and the prompts the document workflow sends; real secrets
in the same shapes still are."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from gateway.wholetext import WholeText
from llmdocs.examples import user_service_spec
from llmdocs.services.gateway.security import Detector
from llmdocs.services.orchestrator.docgen import DocgenSettings
from llmdocs.services.promptstore import templates
from llmdocs.services.promptstore.seeding import load_seeds

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
    assert "User Service:\nopenapi:" in prompt and '"## <title>"' in prompt
    assert "password: {type: string, format: password" in prompt
    assert not Detector().scan([prompt]).sensitive
