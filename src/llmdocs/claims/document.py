"""The document check, "docs as tests": what any Markdown document (a person's or a
model's) claims that a spec does not support, and which of the spec's operations it
leaves out. One pass over its lines, each token looked at a fixed number of times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from llmdocs.claims.extract import HTTP_METHODS, indexed_claims
from llmdocs.claims.phrases import (
    Token,
    alone_in_code,
    bounds,
    enum_values,
    listed_values,
    mentions,
    reason_after,
    status_meant,
    status_of,
    tokenize,
)
from llmdocs.claims.sentences import list_item
from llmdocs.claims.spec_index import SpecIndex, Target
from llmdocs.claims.vocabulary import Vocabulary
from llmdocs.openapi.bounds import SpecBounds
from llmdocs.openapi.reference import OperationRef, Reference, build_reference

EXCERPT = 200  # characters of a line shown with an unsupported claim
# the title a refreshed document's section of changes starts with: it is history (it
# names what the spec no longer has), not claims about the current API
CHANGES = "Changes since version"
# the kinds read by a document's structure; the others are the vocabulary's
STRUCTURED = frozenset({"operation", "parameter", "field", "header", "status", "enum",
                        "constraint"})
# what a table's first column is called when its rows name parameters, fields, headers
_NAME_COLUMNS = {"name": "", "argument": "", "parameter": "parameter", "param":
                 "parameter", "field": "field", "property": "field", "attribute": "field",
                 "key": "field", "header": "header"}
_STATUS_COLUMNS = frozenset({"status", "code", "status code", "http status", "http code",
                             "response", "responses"})
_NAME_WORDS = {"parameter": "parameter", "param": "parameter", "argument": "parameter",
               "query": "parameter", "field": "field", "property": "field",
               "header": "header"}
# the part of an operation's section a heading or label opens, by its first telling word
_SUBSECTIONS = (("header", "headers"), ("param", "parameters"), ("response", "response"),
                ("request", "request"), ("body", "request"))
# an extra checklist item of an operation: (what, the text that shows it, or None: lost)
Checklist = Callable[[OperationRef], list[tuple[str, str | None]]]


@dataclass(frozen=True)
class Unsupported:
    """A claim the spec does not support, where it is and what the line says."""

    kind: str
    claim: str
    operation: str | None
    line: int
    excerpt: str


@dataclass
class DocumentCheck:
    """The check's answer: claims and those supported, what is unsupported, and the
    spec's operations the document leaves out (`gaps` says what of each)."""

    claims: int = 0
    supported: int = 0
    unsupported: list[Unsupported] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "METHOD /path"
    gaps: list[str] = field(default_factory=list)  # "GET /users: parameter limit is missing"
    missing_ops: list[str] = field(default_factory=list)  # their operation ids
    operations: int = 0

    @property
    def completeness(self) -> float:
        return (self.operations - len(self.missing)) / self.operations \
            if self.operations else 1.0

    @property
    def truthfulness(self) -> float:
        return self.supported / self.claims if self.claims else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"claims": self.claims, "supported": self.supported,
                "unsupported": [asdict(u) for u in self.unsupported],
                "missing": self.missing,
                "scores": {"completeness": round(self.completeness, 4),
                           "truthfulness": round(self.truthfulness, 4)}}


class Where(NamedTuple):
    """What claims are judged against (None: an operation the spec lacks) and the
    operation they are reported under."""

    target: Target | None
    operation: str | None


class _Scan:
    """The document's lines in order, with the section, subsection and table each is in."""

    def __init__(self, index: SpecIndex | None, vocabulary: Vocabulary) -> None:
        self.index, self.vocabulary = index, vocabulary
        self.result = DocumentCheck()
        self.anywhere = Where(index.anywhere if index else None, None)
        self.section, self.level, self.sub = self.anywhere, 0, ""
        self.pending = 0  # a heading's level whose first paragraph may name its operation
        self.paragraph = False  # a line of the heading's first paragraph was read
        self.header: list[str] | None = None
        self.texts: dict[str, list[str]] = {}  # each operation's section, its lines
        self.named: dict[str, set[str]] = {}  # each operation's names and statuses said
        self.line, self.excerpt = 0, ""

    # --- recording ----------------------------------------------------------------

    def claim(self, kind: str, text: str, where: Where, ok: bool) -> None:
        self.result.claims += 1
        if ok:
            self.result.supported += 1
            if where.operation and kind in ("parameter", "field", "header", "status"):
                self.named.setdefault(where.operation, set()).add(
                    text.upper() if kind == "status" else text)
        else:
            self.result.unsupported.append(Unsupported(kind, text, where.operation,
                                                       self.line, self.excerpt))

    def generic(self, text: str, taken: set[int], values_only: bool = False) -> None:
        """The claims no structured reading took: URLs, hosts, paths, names, numbers,
        judged against everything the spec states."""
        for at, claim in indexed_claims(text, values_only=values_only):
            if at not in taken:  # a number no reading took as a status is a number
                self.claim("number" if claim.kind == "status" else claim.kind, claim.text,
                           self.section, self.vocabulary.supports(claim))

    def operation(self, method: str, path: str) -> Where:
        """An operation claim; where claims about it are judged. The first one under a
        heading that names none opens its section ("## List users", then `GET /users`)."""
        target = self.index.operation(method, path) if self.index else None
        self.claim("operation", f"{method} {path}", Where(target, None), target is not None)
        where = Where(target, target.key if target else f"{method} {path}")
        if self.pending:
            self.open(where, self.pending)
        return where

    # --- sections -------------------------------------------------------------------

    def open(self, where: Where, level: int) -> None:
        self.section, self.level, self.sub, self.header = where, level, "", None
        self.pending, self.paragraph = 0, False
        if where.operation and where.target is not None:
            self.texts.setdefault(where.operation, [])

    def heading(self, text: str, level: int) -> None:
        tokens = tokenize(text)
        found = mentions(tokens) if self.index else []
        taken: set[int] = set()
        for n, (i, method, path) in enumerate(found):
            where = self.operation(method, path)
            taken |= {i, i + 1}
            if n == 0:
                self.open(where, level)
        schema = self.index.schemas.get(text.strip("`*_ ")) if self.index else None
        if schema is not None and not found:
            self.open(Where(schema, None), level)
        elif not found and (level <= self.level or self.section is self.anywhere):
            self.open(self.anywhere, 0)
            self.pending = level  # "### List users", then "`GET /users` lists …"
        elif not found:
            self.subsection(text)
        if tokens and 0 not in taken and status_of(tokens[0].core) and self.index:
            taken.add(0)
            self.status(tokens[0].core, self.section)
        self.prose(tokens, text, self.section, taken=taken)

    def subsection(self, text: str) -> None:
        lowered = text.lower()
        self.sub = next((sub for word, sub in _SUBSECTIONS if word in lowered), self.sub)

    # --- claims by kind -------------------------------------------------------------

    def status_at(self, tokens: list[Token], i: int, where: Where, taken: set[int]) -> None:
        """The status at `i`, its reason phrase taken with it ("`201 Created`")."""
        taken |= set(range(i, i + 1 + reason_after(tokens, i)))
        self.status(tokens[i].core, where)

    def status(self, written: str, where: Where) -> None:
        code = status_of(written) or written.lower()  # `4xx` as `4XX`, `default`
        self.claim("status", code, where, where.target is not None and
                   SpecIndex.has_status(where.target, code.upper()))

    def name(self, name: str, kind: str, where: Where) -> None:
        target = where.target
        if not kind:  # a name a subsection does not place: what the operation has
            kind = {"headers": "header", "request": "field", "response": "field"}.get(
                self.sub, "field" if target and name in target.fields
                and name not in target.params else "parameter")
        self.claim(kind, name, where, target is not None and SpecIndex.has_name(
            target, name, kind))

    def prose(self, tokens: list[Token], text: str, where: Where, subject: str = "",
              taken: set[int] | None = None, whole_status: bool = False) -> Where:
        """Every claim of a piece of text; the operation it names first, if any."""
        taken = set() if taken is None else taken
        if self.index is not None:
            follow = where is self.section  # not a table row's own operation
            for i, method, path in mentions(tokens):
                if i not in taken:
                    named = self.operation(method, path)
                    where = named if follow else where
                    taken |= {i, i + 1}
            self._attributed(tokens, where, subject, taken, whole_status)
        self.generic(text, taken)
        return where

    def _attributed(self, tokens: list[Token], where: Where, subject: str,
                    taken: set[int], whole_status: bool) -> None:
        target = where.target
        listed = enum_values(tokens) or (
            listed_values(tokens) if subject else [])  # a named field's "`a` or `b`"
        valued = {i for i, _ in listed}
        for i, token in enumerate(tokens):
            if i in taken or i in valued:
                continue
            if (whole_status and len(tokens) == 1 and status_of(token.core)) or \
                    status_meant(tokens, i, where.operation is not None):
                self.status_at(tokens, i, where, taken)
            elif alone_in_code(tokens, i) and (kind := _name_word(tokens, i)):
                taken.add(i)
                self.name(token.core, kind, where)
        values = [(i, v) for i, v in listed if i not in taken]
        stated = [(i, bound) for i, bound in bounds(tokens) if i not in taken]
        first = min([i for i, _ in values] + [i for i, _ in stated], default=0)
        subject = subject or next((t.core for i, t in enumerate(tokens[:first])
                                   if alone_in_code(tokens, i) and _is_name(t.core)), "")
        for i, value in values:
            end = i + 1
            while end < len(tokens) and tokens[end].span == tokens[i].span >= 0:
                end += 1
            taken |= set(range(i, end))
            self.claim("enum", f"{subject}: {value}" if subject else value, where,
                       target is not None and SpecIndex.has_value(target, subject, value))
        for i, bound in stated:
            taken.add(i)
            self.claim("constraint", f"{subject}: {bound}" if subject else str(bound),
                       where, target is not None and SpecIndex.has_bound(
                           target, subject, bound))

    # --- lines ----------------------------------------------------------------------

    def row(self, cells: list[str]) -> None:
        header = self.header or []
        where = self.section
        taken_cells: set[int] = set()
        if "method" in header and "path" in header and self.index is not None:
            m, p = header.index("method"), header.index("path")
            if max(m, p) < len(cells):
                method, path = _core(cells[m]), _core(cells[p])
                if method in HTTP_METHODS and path.startswith("/"):
                    where = self.operation(method, path)
                    taken_cells = {m, p}
        for j, cell in enumerate(cells):  # an operation named in a cell: the row's
            if j not in taken_cells and where is self.section and (
                    found := mentions(tokenize(cell))):
                where = self.index_where(found[0][1], found[0][2])
        subject = ""
        for j, cell in enumerate(cells):
            if j in taken_cells:
                continue
            column = header[j] if j < len(header) else ""
            tokens = tokenize(cell)
            first = tokens[0].core if tokens else ""
            if self.index is not None and column in _STATUS_COLUMNS and (
                    status_of(first) or first.lower() == "default"):
                self.status(first, where)
                self.prose(tokens, cell, where, taken={0})
            elif self.index is not None and j == 0 and _name_column(column) is not None \
                    and _is_name(first):
                subject = first
                self.name(first, _name_kind(column, header, self.sub), where)
                self.prose(tokens, cell, where, subject, taken={0})
            else:
                self.prose(tokens, cell, where, subject, whole_status=j == 0)

    def index_where(self, method: str, path: str) -> Where:
        """Where a row naming an operation is judged (its claim is the cell's prose)."""
        target = self.index.operation(method, path) if self.index else None
        return Where(target, target.key if target else f"{method} {path}")

    def item(self, text: str) -> None:
        tokens = tokenize(text)
        first = tokens[0] if tokens else None
        in_section = self.section is not self.anywhere
        if first is None or self.index is None:
            self.prose(tokens, text, self.section)
        elif status_of(first.core) and (
                alone_in_code(tokens, 0) or first.raw.endswith(":") or reason_after(
                    tokens, 0) or (in_section and tokens[1:2] and tokens[1].raw in (
                        "-", ":", "\u2014", "\u2013"))):  # "- 404 — no such user"
            taken: set[int] = set()
            self.status_at(tokens, 0, self.section, taken)
            self.prose(tokens, text, self.section, taken=taken)
        elif in_section and _is_name(first.core) and (
                alone_in_code(tokens, 0) or first.raw.startswith("**")
                or (first.raw.endswith(":") and self.sub)):
            self.name(first.core, "", self.section)
            self.prose(tokens, text, self.section, first.core, taken={0})
        else:
            self.prose(tokens, text, self.section)

    def text_line(self, line: str) -> None:
        item = list_item(line)
        if item is not None:
            self.item(item)
            return
        tokens = tokenize(line)
        if line.startswith("**") or line.endswith(":"):
            self.subsection(line)
        found = mentions(tokens) if self.index else []
        if len(tokens) == 2 and found:  # `GET /users` alone on its line: a section
            self.open(self.operation(found[0][1], found[0][2]), 7)
            self.generic(line, {0, 1})
            return
        self.prose(tokens, line, self.section)

    def code_line(self, line: str, command: list[str]) -> None:
        """A line of a fenced block: an example's values are illustrations, but the
        request it makes (`curl -X POST url`, `GET /path HTTP/1.1`) is a claim."""
        tokens = line.split()
        if command or line.startswith("curl "):
            command.append(line.rstrip("\\"))
            self.generic(line, {i for i, t in enumerate(tokens) if t in HTTP_METHODS
                                and self.index}, values_only=True)
            if not line.endswith("\\"):
                self.curl(" ".join(command).split())
                command.clear()
            return
        if self.index and len(tokens) >= 2 and tokens[0] in HTTP_METHODS \
                and tokens[1].startswith("/"):
            self.operation(tokens[0], tokens[1])
            self.generic(line, {0, 1}, values_only=True)
            return
        self.generic(line, set(), values_only=True)

    def curl(self, words: list[str]) -> None:
        method, url = "", ""
        for i, word in enumerate(words):
            if word in ("-X", "--request") and i + 1 < len(words):
                method = words[i + 1].strip("'\"").upper()
            elif word.startswith("-X") and len(word) > 2:
                method = word[2:].strip("'\"").upper()
            elif word in ("-d", "--data", "--data-urlencode", "-F", "--form") and not method:
                method = "POST"
            elif not url and "://" in word:
                url = word.strip("'\"")
        if url and self.index is not None:
            self.operation(method or "GET", "/" + url.split("://", 1)[1].partition("/")[2])

    def run(self, markdown: str) -> DocumentCheck:
        lines = markdown.splitlines()
        fence, command = False, list[str]()  # a curl command continued over lines
        history = 0  # the level of the section of changes read through, or 0
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            self.line, self.excerpt = number, line[:EXCERPT]
            if not line and not fence and self.paragraph:
                self.pending = 0  # only the first paragraph after a heading names it
            self.paragraph = self.paragraph or bool(line)
            if line.startswith(("```", "~~~")):
                fence, self.header = not fence, None
                if command:
                    self.curl(" ".join(command).split())
                    command.clear()
                continue
            level = len(line) - len(line.lstrip("#"))
            if not fence and 0 < level <= 6 and line[level:level + 1] in (" ", ""):
                if history and level > history:
                    continue  # a subsection of the changes
                title = line[level:].strip()
                history = level if title.startswith(CHANGES) else 0
                if history:
                    self.open(self.anywhere, 0)
                else:
                    self.heading(title, level)
                continue
            if history:
                continue
            if self.section.operation in self.texts:
                self.texts[self.section.operation].append(raw)
            if fence:
                self.code_line(line, command)
            elif line.startswith("|"):
                self.pending = 0
                cells = _cells(line)
                if all(c and not c.strip("-: ") for c in cells):
                    continue  # the header's rule
                following = lines[number].strip() if number < len(lines) else ""
                if following.startswith("|") and all(
                        c and not c.strip("-: ") for c in _cells(following)):
                    self.header = [_core(c).lower() for c in cells]
                    self.generic(line, set())
                else:
                    self.row(cells)
            else:
                self.header = None
                if line:
                    self.text_line(line)
        return self.result

    # --- completeness ---------------------------------------------------------------

    def complete(self, index: SpecIndex, extra: Checklist | None) -> None:
        """Each operation of the spec: its section, naming each parameter and status
        (and the extra checklist's items)."""
        result = self.result
        result.operations = len(index.operations)
        for op, target in index.operations:
            key = target.key
            if key not in self.texts:
                lost = ["the endpoint is not documented"]
            else:
                text, named = "\n".join(self.texts[key]), self.named.get(key, set())
                # a path parameter is shown by the path the section is headed with
                lost = [f"parameter {p.name}" for p in op.parameters if p.location != "path"
                        and p.name not in named and f"`{p.name}`" not in text]
                lost += [f"response {r.status}" for r in op.responses
                         if r.status.upper() not in named and f"`{r.status}`" not in text]
                # bandit B610: not Django
                lost += [what for what, shown in (extra(op) if extra else [])  # nosec B610
                         if shown is None or shown not in text]
            if lost:
                result.missing.append(key)
                result.missing_ops.append(op.operation_id)
                result.gaps += [f"{key}: {what}" + ("" if what.startswith("the endpoint")
                                                    else " is missing") for what in lost]


def _core(cell: str) -> str:
    return cell.strip().strip("`*_ ")


def _cells(row: str) -> list[str]:
    """A table row's cells; `\\|` is a pipe inside a cell."""
    cells, current, escaped = list[str](), list[str](), False
    for char in row.strip().strip("|") if row.strip() != "|" else "":
        if char == "|" and not escaped:
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        escaped = char == "\\" and not escaped
    cells.append("".join(current).strip())
    return cells


def _is_name(text: str) -> bool:
    """An identifier as an API names a parameter or field (`user_id`, `X-Request-Id`,
    `items[].id`, `filter[status]`), not a phrase."""
    return 0 < len(text) <= 200 and any(c.isalpha() for c in text) and all(
        c.isalnum() or c in "_-.[]$@" for c in text)


def _name_word(tokens: list[Token], i: int) -> str:
    """The kind a word beside a code name gives it: "the `sort` parameter"."""
    after = tokens[i + 1].core.lower() if i + 1 < len(tokens) else ""
    before = tokens[i - 1].core.lower() if i else ""
    kind = _NAME_WORDS.get(after.rstrip("s")) or _NAME_WORDS.get(before.rstrip("s"), "")
    return kind if _is_name(tokens[i].core) else ""


def _name_column(column: str) -> str | None:
    """The kind of name a first column holds ("" for any), None for no name column."""
    found = _NAME_COLUMNS.get(column)
    return found if found is not None else _NAME_COLUMNS.get(column.removesuffix("s"))


def _name_kind(column: str, header: list[str], sub: str) -> str:
    kind = _name_column(column)
    if kind:
        return kind
    if "in" in header or "location" in header or sub == "parameters":
        return "parameter"
    return ""


def unsupported_in(text: str, index: SpecIndex, vocabulary: Vocabulary
                   ) -> list[Unsupported]:
    """What a piece of text (a model's sentence) says of the spec's operations that they
    do not state: the structured kinds, so a sentence is judged as the gate will judge
    it ("`GET /users` returns `404`" where only other operations answer 404)."""
    return [u for u in _Scan(index, vocabulary).run(text).unsupported
            if u.kind in STRUCTURED]


def check_reference(markdown: str, reference: Reference, vocabulary: Vocabulary,
                    extra: Checklist | None = None) -> DocumentCheck:
    """`check_document` on a spec already read: its reference and vocabulary (what a
    workflow keeps); `extra` adds checklist items an operation's section must show."""
    index = SpecIndex(reference)
    scan = _Scan(index, vocabulary)
    scan.run(markdown)
    scan.complete(index, extra)
    return scan.result


def check_document(markdown: str, spec: dict[str, Any],
                   bounds: SpecBounds | None = None) -> DocumentCheck:
    """What the document claims that the parsed spec does not support, and which of its
    operations the document leaves out (a spec beyond the bounds is a `SpecError`)."""
    reference = build_reference(spec, bounds or SpecBounds())
    return check_reference(markdown, reference, Vocabulary.from_openapi(spec))


class Truthfulness(NamedTuple):
    """Claims a text makes, and those the vocabulary supports."""

    supported: int
    total: int
    unsupported: list[str]

    @property
    def ratio(self) -> float:
        return self.supported / self.total if self.total else 1.0


def truthfulness(markdown: str, vocabulary: Vocabulary) -> Truthfulness:
    """Supported claims ÷ claims over a document whose facts are texts, not a spec: the
    document check's reading without operations. Fenced code counts only its URLs,
    hosts, paths and methods (an example's values are illustrations); a list item's
    number is an ordinal, not a claim."""
    result = _Scan(None, vocabulary).run(markdown)
    return Truthfulness(result.supported, result.claims,
                        [f"{u.kind}: {u.claim}" for u in result.unsupported])
