"""A `Reference` as the Markdown pieces of an API document and its CSV table. Text from
the spec is untrusted: it goes into table cells escaped and into code spans fenced, and
the renderers parse Markdown with raw HTML off."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from llmdocs.openapi.fields import Facts, FieldInfo
from llmdocs.openapi.reference import Body, OperationRef, Param, Reference

TABLE_COLUMNS = ["kind", "method", "path", "name", "in", "type", "required", "constraints",
                 "description"]
_SLUG_DROP = re.compile(r"[^\w\- ]")
_WORDS = re.compile(r"[\s_-]+")


def title_case(tag: str) -> str:
    """A tag as its section's title: `user-accounts` → `User Accounts`."""
    return " ".join(w[:1].upper() + w[1:] for w in _WORDS.split(tag) if w) or "General"


def op_heading(method: str, path: str) -> str:
    """An operation's heading; the coverage check and consistency check parse it."""
    return f"### `{method.upper()} {path}`"


def cell(text: str) -> str:
    """Text as one table cell: no line breaks, `|` escaped."""
    return " ".join(str(text).replace("\\", "\\\\").replace("|", "\\|").split()) or "-"


def code(text: Any) -> str:
    """A value as an inline code span that its own backticks cannot end."""
    value = text if isinstance(text, str) else json.dumps(text, default=str)
    value = " ".join(value.split())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or fence != "`" else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _paragraph(text: str) -> str:
    """Spec prose as a paragraph: lines kept, no heading, fence or table of its own."""
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(("\\" + line) if line.startswith(("#", "```", "~~~", "|", "<", "=",
                                                       "---")) else line
                     for line in lines).strip()


def slug(text: str) -> str:
    """The anchor a heading gets in the usual Markdown renderers (GitHub's rule)."""
    return _SLUG_DROP.sub("", text.lower().replace("`", "")).replace(" ", "-")


def schema_anchors(reference: Reference) -> dict[str, str]:
    """Each shared schema's anchor, unique among the document's headings before it."""
    seen: dict[str, int] = {}

    def unique(text: str) -> str:
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        return base if n == 0 else f"{base}-{n}"

    auth = ["Authentication"] if reference.security_schemes else []
    for heading in ("Overview", "Getting started", *auth,
                    *(title_case(t.name) for t in reference.tags),
                    *(f"{o.method.upper()} {o.path}" for o in reference.operations),
                    "Schemas"):
        unique(heading)
    return {s.name: unique(s.name) for s in reference.schemas}


def type_text(facts: Facts, anchors: dict[str, str]) -> str:
    """`string (uuid)`, `array of [User](#user)`, `one of: A, B`, `nullable` marked."""
    kind = facts.type or "any"
    if facts.schema_name in anchors:
        link = f"[{facts.schema_name}](#{anchors[facts.schema_name]})"
        kind = link if kind == "object" else kind.replace(facts.schema_name, link) \
            if kind.endswith(f" of {facts.schema_name}") else f"{kind} ({link})"
    elif kind.startswith("array of "):
        inner = kind[len("array of "):]
        if inner in anchors:
            kind = f"array of [{inner}](#{anchors[inner]})"
    if facts.format:
        kind += f" ({facts.format})"
    if facts.variants:
        kind = f"{facts.variant_kind}: " + ", ".join(
            f"[{v}](#{anchors[v]})" if v in anchors else v for v in facts.variants)
    return kind + (", nullable" if facts.nullable else "")


def _bound(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def plain(value: Any) -> str:
    """A value as plain text (a CSV cell): strings bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def constraints(facts: Facts, markup: bool = True) -> str:
    """Every constraint in words: `one of: a, b; default: 20; 1 ≤ value ≤ 100; …`,
    values as code spans (or plain, for the CSV)."""
    value = code if markup else plain
    parts: list[str] = []
    if facts.enum:
        parts.append("one of: " + ", ".join(value(v) for v in facts.enum))
    if facts.has_default:
        parts.append(f"default: {value(facts.default)}")
    low = f"{_bound(facts.minimum)} {'<' if facts.exclusive_minimum else '≤'} " \
        if facts.minimum is not None else ""
    high = f" {'<' if facts.exclusive_maximum else '≤'} {_bound(facts.maximum)}" \
        if facts.maximum is not None else ""
    if low or high:
        parts.append(f"{low}value{high}")
    for label, low_n, high_n in (("length", facts.min_length, facts.max_length),
                                 ("items", facts.min_items, facts.max_items)):
        if low_n is not None and high_n is not None:
            parts.append(f"{label} {low_n} to {high_n}")
        elif low_n is not None:
            parts.append(f"{label} ≥ {low_n}")
        elif high_n is not None:
            parts.append(f"{label} ≤ {high_n}")
    if facts.pattern:
        parts.append(f"pattern {value(facts.pattern)}")
    parts += [word for flag, word in ((facts.read_only, "read-only"),
                                      (facts.write_only, "write-only"),
                                      (facts.deprecated, "deprecated")) if flag]
    if facts.note:
        parts.append(facts.note)
    return "; ".join(parts)


def _described(facts: Facts) -> str:
    extra = constraints(facts)
    text = facts.description.strip()
    return cell(f"{text}{' — ' if text and extra else ''}{extra}")


def _params_table(params: list[Param], anchors: dict[str, str]) -> list[str]:
    lines = ["| name | in | type | required | description |", "|---|---|---|---|---|"]
    lines += [f"| `{cell(p.name)}` | {p.location} | {cell(type_text(p, anchors))} | "
              f"{'yes' if p.required else 'no'} | {_described(p)} |" for p in params]
    return lines


def _fields_table(fields: list[FieldInfo], anchors: dict[str, str]) -> list[str]:
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    lines += [f"| `{cell(f.name)}` | {cell(type_text(f, anchors))} | "
              f"{'yes' if f.required else 'no'} | {_described(f)} |" for f in fields]
    return lines


def _body_link(body: Body, anchors: dict[str, str]) -> str:
    """The body's shared schema as a link (`[User](#user)`, `array of [User](#user)`)."""
    if body.schema_name in anchors:
        return f"[{body.schema_name}](#{anchors[body.schema_name]})"
    inner = body.type[len("array of "):] if body.type.startswith("array of ") else ""
    return f"array of [{inner}](#{anchors[inner]})" if inner in anchors else ""


def _body_lines(body: Body, anchors: dict[str, str]) -> list[str]:
    head = f"`{cell(body.content_type)}`" + (", required" if body.required else "")
    # an inline object is said by its fields' table
    kind = _body_link(body, anchors) or (cell(body.type) if body.type not in ("", "object")
                                         else "")
    lines = [f"{head}{f': {kind}' if kind else ''}."]
    if body.description:
        lines += ["", _paragraph(body.description)]
    if body.fields:
        lines += ["", *_fields_table(body.fields, anchors)]
    return lines


def _json_block(value: Any) -> list[str]:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return ["```json", text.replace("```", "`\u200b``"), "```"]


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _auth_header(op: OperationRef, reference: Reference) -> list[str]:
    """The placeholder of the first way to authenticate this operation, for curl."""
    if not op.security or not op.security[0]:
        return []
    schemes = {s.name: s for s in reference.security_schemes}
    out: list[str] = []
    for requirement in op.security[0]:
        scheme = schemes.get(requirement.scheme)
        if scheme is None:
            continue
        if scheme.type == "apiKey" and scheme.how.startswith("header"):
            out.append(f"-H {_shell(scheme.how.split('`')[1] + ': <api-key>')}")
        elif scheme.type == "http" and "Basic" in scheme.how:
            out.append("-u '<user>:<password>'")
        elif scheme.type in ("http", "oauth2", "openIdConnect"):
            out.append("-H 'Authorization: Bearer <token>'")
    return out


def _curl_body(body: Body) -> list[str]:
    """A body as curl sends it: form fields one by one (a file from a path), anything
    else as the data."""
    def text(item: Any) -> str:
        return item if isinstance(item, str) else json.dumps(item, ensure_ascii=False,
                                                             default=str)

    content_type, value = body.content_type, body.example.value
    if isinstance(value, dict) and content_type == "multipart/form-data":
        files = {f.name for f in body.fields if f.format == "binary"}
        return [f"-F {_shell(f'{k}=@path/to/{k}' if k in files else f'{k}={text(v)}')}"
                for k, v in value.items()]
    if isinstance(value, dict) and content_type == "application/x-www-form-urlencoded":
        return [f"--data-urlencode {_shell(f'{k}={text(v)}')}" for k, v in value.items()]
    return [f"-H {_shell('Content-Type: ' + content_type)}", f"-d {_shell(text(value))}"]


def curl(op: OperationRef, reference: Reference) -> str:
    """The operation called once: the first server, example values, the auth placeholder."""
    path = op.path
    query: list[str] = []
    headers: list[str] = []
    for p in op.parameters:
        value = p.example if p.has_example else f"<{p.name}>"
        values = value if isinstance(value, list) else [value]
        texts = [v if isinstance(v, str) else json.dumps(v, default=str) for v in values]
        text = ",".join(texts)
        if p.location == "path":
            path = path.replace("{" + p.name + "}", text)
        elif p.location == "query" and p.required:
            query += [f"{quote(p.name)}={quote(t) if p.has_example else t}" for t in texts]
        elif p.location == "header" and p.required:
            headers.append(f"-H {_shell(f'{p.name}: {text}')}")
    base = reference.servers[0].url.rstrip("/") if reference.servers else ""
    url = base + path + ("?" + "&".join(query) if query else "")
    parts = [f"curl -X {op.method.upper()} {_shell(url)}", *_auth_header(op, reference),
             *headers]
    body = op.request_body
    if body is not None and body.example.origin != "none":
        parts += _curl_body(body)
    return " \\\n  ".join(parts)


def operation_block(op: OperationRef, reference: Reference,
                    anchors: dict[str, str] | None = None) -> str:
    """One operation's reference, under its `### \\`METHOD /path\\`` heading."""
    anchors = schema_anchors(reference) if anchors is None else anchors
    lines = [op_heading(op.method, op.path), ""]
    if op.summary:
        lines += [_paragraph(op.summary), ""]
    if op.description and op.description.strip() != op.summary.strip():
        lines += [_paragraph(op.description), ""]
    if op.deprecated:
        lines += ["**Deprecated.**", ""]
    lines += [f"**Authentication**: {_security_text(op)}", ""]
    if op.parameters:
        lines += ["**Parameters**", "", *_params_table(op.parameters, anchors), ""]
    if op.request_body is not None:
        first, *rest = _body_lines(op.request_body, anchors)
        lines += [f"**Request body**: {first}", *rest, ""]
    if op.responses:
        lines += ["**Responses**", "", "| status | description | body |", "|---|---|---|"]
        for r in op.responses:
            body = ""
            if r.body is not None:
                kind = _body_link(r.body, anchors) or cell(r.body.type)
                body = f"`{cell(r.body.content_type)}` {kind}".strip()
            lines.append(f"| `{cell(r.status)}` | {cell(r.description)} | {body or '-'} |")
        lines.append("")
        for r in op.responses:
            extra = [*(["| header | type | description |", "|---|---|---|"] + [
                f"| `{cell(h.name)}` | {cell(type_text(h, anchors))} | {_described(h)} |"
                for h in r.headers] if r.headers else []),
                *(_fields_table(r.body.fields, anchors) if r.body and r.body.fields
                  and not _body_link(r.body, anchors) else [])]
            if extra:
                lines += [f"**Response `{cell(r.status)}`**", "", *extra, ""]
    lines += ["**Example request**", "", "```sh", curl(op, reference), "```", ""]
    success = next((r for r in op.responses if r.status.startswith("2") and r.body), None)
    if success is not None and success.body is not None:
        example = success.body.example
        if example.origin != "none":
            lines += [f"**Example response** (`{success.status}`"
                      f"{', generated from the schema' if example.origin == 'generated' else ''})",
                      "", *_json_block(example.value), ""]
    if op.examples_missing:
        lines += [f"No valid example could be made for the {' and the '.join(op.examples_missing)}"
                  " from the spec's schema.", ""]
    return "\n".join(lines).rstrip()


def _security_text(op: OperationRef) -> str:
    if not op.security:
        return "none"
    return " or ".join(" and ".join(
        f"`{cell(r.scheme)}`" + (f" (scopes: {', '.join(code(s) for s in r.scopes)})"
                                 if r.scopes else "") for r in alternative) or "none"
        for alternative in op.security)


def overview(reference: Reference) -> str:
    """The API's facts: title and version, its own description, its base URLs."""
    lines = [f"**{cell(reference.title) if reference.title else 'API'}**, version "
             f"{code(reference.version or 'unversioned')}."]
    if reference.description:
        lines += ["", _paragraph(reference.description)]
    if reference.servers:
        lines += ["", "**Base URLs**", ""]
        for s in reference.servers:
            lines.append(f"- {code(s.url)}{' — ' + cell(s.description) if s.description else ''}")
            if s.template:  # where its variables may take other values
                lines.append(f"  The spec writes it as {code(s.template)}, where "
                             f"{'; '.join(cell(v) for v in s.variables)}.")
    return "\n".join(lines)


def getting_started(reference: Reference) -> str:
    """A first call a reader can paste: the first operation without a body."""
    op = next((o for o in reference.operations if o.method == "get"
               and not any(p.required and p.location != "path" for p in o.parameters)),
              reference.operations[0] if reference.operations else None)
    if op is None:
        return ""
    base = reference.servers[0].url if reference.servers else "the server's address"
    lines = [f"Requests go to {code(base)}; the paths below are relative to it."]
    if op.security:
        lines.append(f"This call authenticates with {_security_text(op)} (see Authentication).")
    return "\n".join([" ".join(lines), "", "```sh", curl(op, reference), "```"])


def authentication(reference: Reference) -> str:
    """Each scheme, how to send it, and which operations need it."""
    lines = ["| scheme | type | how to send it | description |", "|---|---|---|---|"]
    for s in reference.security_schemes:
        scopes = "scopes: " + ", ".join(f"{code(k)} ({v})" if v else code(k)
                                        for k, v in s.scopes.items()) if s.scopes else ""
        said = "; ".join(part for part in (s.description.strip(), scopes) if part)
        lines.append(f"| `{cell(s.name)}` | {cell(s.type)} | {cell(s.how)} | {cell(said)} |")
    public = [o for o in reference.operations if not o.security]
    lines.append("")
    for s in reference.security_schemes:
        users = [o for o in reference.operations
                 if any(r.scheme == s.name for alt in o.security for r in alt)]
        if users and len(users) == len(reference.operations):
            lines.append(f"- `{cell(s.name)}`: every operation.")
        elif users:
            lines.append(f"- `{cell(s.name)}`: " + ", ".join(
                f"`{o.method.upper()} {cell(o.path)}`" for o in users) + ".")
    if public:
        lines.append("- No authentication: " + ", ".join(
            f"`{o.method.upper()} {cell(o.path)}`" for o in public) + ".")
    return "\n".join(lines).rstrip()


def tag_description(reference: Reference, tag: str) -> str:
    """The spec's own description of a tag, as a paragraph."""
    text = next((t.description for t in reference.tags if t.name == tag), "")
    return _paragraph(text) if text else ""


def group(reference: Reference, tag: str) -> list[str]:
    """The blocks of a tag's operations, in the spec's order."""
    anchors = schema_anchors(reference)
    return [operation_block(op, reference, anchors) for op in reference.operations
            if op.tag == tag]


def schemas(reference: Reference) -> str:
    """Each shared schema under its own heading (the anchor operations link to)."""
    anchors = schema_anchors(reference)
    blocks: list[str] = []
    for s in reference.schemas:
        lines = [f"### {s.name.replace('#', '')}", ""]
        if s.description:
            lines += [_paragraph(s.description), ""]
        if s.fields:
            lines += _fields_table(s.fields, anchors)
        else:
            facts = constraints(s.facts)
            lines.append(f"Type: {cell(type_text(s.facts, anchors))}"
                         f"{'; ' + cell(facts) if facts else ''}.")
        blocks.append("\n".join(lines).rstrip())
    return "\n\n".join(blocks)


def summary_table(reference: Reference) -> str:
    rows = [f"| `{o.method.upper()}` | `{cell(o.path)}` | {cell(o.summary)} |"
            for o in reference.operations]
    return "\n".join(["| method | path | summary |", "|---|---|---|", *rows])


def table_rows(reference: Reference) -> list[list[str]]:
    """The CSV form, the same facts as the Markdown: a row per server, security scheme,
    operation, parameter, request body and field, response and response field, and
    shared schema field (columns: `TABLE_COLUMNS`)."""
    rows = [["server", "", "", s.url, "", "", "",
             "; ".join([*([f"written {s.template}"] if s.template else []),
                        *s.variables]).replace("`", ""), s.description]
            for s in reference.servers]
    rows += [["security scheme", "", "", s.name, "", s.type, "", plain(s.how),
              s.description] for s in reference.security_schemes]
    for o in reference.operations:
        method, path = o.method.upper(), o.path
        auth = _security_text(o).replace("`", "")
        rows.append(["operation", method, path, o.operation_id, "", "", "",
                     "; ".join(filter(None, ["deprecated" if o.deprecated else "",
                                             f"authentication: {auth}"])), o.summary])
        rows += [["parameter", method, path, p.name, p.location, type_text(p, {}),
                  "yes" if p.required else "no", constraints(p, False), p.description]
                 for p in o.parameters]
        if o.request_body is not None:
            body = o.request_body
            rows.append(["request body", method, path, body.schema_name, body.content_type,
                         body.type, "yes" if body.required else "no", "", body.description])
            rows += _field_rows("request field", method, path, "", body.fields)
        for r in o.responses:
            rows.append(["response", method, path, r.status, r.body.content_type if r.body
                         else "", r.body.type if r.body else "", "", "", r.description])
            rows += _field_rows("response field", method, path, f"{r.status} ",
                                r.body.fields if r.body else [])
    for schema in reference.schemas:
        rows += _field_rows("schema field", "", schema.name, "", schema.fields)
    return rows


def _field_rows(kind: str, method: str, path: str, prefix: str,
                fields: list[FieldInfo]) -> list[list[str]]:
    return [[kind, method, path, f"{prefix}{f.name}", "body", type_text(f, {}),
             "yes" if f.required else "no", constraints(f, False), f.description]
            for f in fields]
