"""Intent and entities of a plain-language request: rules first (they need no model);
the model fills in only what they could not tell, and only from the request's words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from llmdocs.formats import FORMATS, normalize_format

INTENTS = ("generate_document", "summarize", "answer_question", "analyze_consistency",
           "list_documents", "search_documents")
_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_URL = re.compile(r"https?://[^\s'\"<>]+", re.I)
_SERVICE = re.compile(r"\b(?:for|of|about|on|with|against)\s+(?:the\s+|our\s+|my\s+)?"
                      r"([a-z0-9][a-z0-9_-]*(?:\s+[a-z0-9][a-z0-9_-]*)?)\s+(?:service|api)\b",
                      re.I)
_HYPHENATED = re.compile(r"\b([a-z0-9]+-service)\b", re.I)
_FORMAT = re.compile(r"\b(?:as|in|to)\s+(?:a\s+|an\s+)?(" + "|".join(
    (*FORMATS, "md", "text", "plain text")) + r")\b|\b(pdf|csv|zip|json|markdown)\b", re.I)
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("analyze_consistency", re.compile(r"\b(consisten\w*|drift|out of date|outdated|"
                                       r"mismatch\w*|match(es)? the spec)\b", re.I)),
    ("list_documents", re.compile(r"^\s*(list|show( me)?)\b.*\bdoc(ument)?s?\b", re.I)),
    ("search_documents", re.compile(r"^\s*(search|find|look for|look up)\b", re.I)),
    ("summarize", re.compile(r"\b(summar(y|ise|ize)|tl;?dr|digest)\b", re.I)),
    ("generate_document", re.compile(
        r"\b(create|generate|write|make|produce|build|draft|document)\b.*"
        r"\b(doc|docs|documentation|guide|reference|manual|readme|page)\b|"
        r"\bapi (doc|docs|documentation|reference)\b", re.I)),
    ("answer_question", re.compile(r"(\?\s*$)|^\s*(what|how|why|when|which|who|where|"
                                   r"does|do|is|are|can|should)\b", re.I)),
]
_FOLLOW_UP = re.compile(r"^\s*(now|also|and|then|again|same|instead|add|include|"
                        r"make it|as\b|in\b)", re.I)
_ADD = re.compile(r"\b(?:add|include|also)\s+(?:the\s+)?(.+?)\s*[.!]?\s*$", re.I)


@dataclass
class Interpretation:
    intent: str | None
    confidence: float
    entities: dict[str, Any] = field(default_factory=dict)
    method: str = "rules"
    follow_up: bool = False
    missing: list[str] = field(default_factory=list)


def entities_of(query: str) -> dict[str, Any]:
    entities: dict[str, Any] = {}
    if match := _SERVICE.search(query) or _HYPHENATED.search(query):
        entities["service"] = match.group(1).strip().lower()
    if ids := _ID.findall(query):
        entities["document_ids"] = [i.lower() for i in ids]
    if urls := _URL.findall(query):
        entities["spec_url"] = urls[0].rstrip(".,)")
    if match := _FORMAT.search(query):
        entities["format"] = normalize_format((match.group(1) or match.group(2)
                                               ).replace("plain text", "txt"))
    if re.search(r"\bapi\b|\bendpoints?\b|\bopenapi\b", query, re.I) or "service" in entities:
        entities["doc_type"] = "api_documentation"
    return entities


def by_rules(query: str) -> Interpretation:
    entities = entities_of(query)
    for intent, pattern in _RULES:
        if pattern.search(query):
            strong = intent != "answer_question"
            return Interpretation(intent, 0.9 if strong else 0.7, entities)
    return Interpretation(None, 0.0, entities)


def follow_up(query: str, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """A follow-up's changes to the previous request ("now as PDF", "add the error
    codes"), or None when the request stands on its own."""
    if previous is None or not _FOLLOW_UP.search(query):
        return None
    found = entities_of(query)
    if found.get("service") or found.get("spec_url") or found.get("document_ids"):
        return None
    change: dict[str, Any] = {}
    if "format" in found:
        change["format"] = found["format"]
    added = _FORMAT.sub("", match.group(1)).strip(" .,") if (match := _ADD.search(query)) \
        else ""
    if added:  # "also as PDF" changes the format only
        change["instructions"] = [*previous.get("instructions", []), added]
    return change or None


def merge_model(rules: Interpretation, query: str, answer: str) -> Interpretation:
    """Use the model's intent only if the rules found none; keep only the entities the
    request really contains."""
    try:
        data = json.loads(answer)
    except ValueError:
        return rules
    if not isinstance(data, dict):
        return rules
    result = Interpretation(rules.intent, rules.confidence, dict(rules.entities),
                            method="rules+model")
    intent, confidence = data.get("intent"), data.get("confidence")
    if rules.intent is None and intent in INTENTS:
        result.intent = str(intent)
        result.confidence = min(float(confidence), 0.6) if isinstance(
            confidence, int | float) else 0.5
        result.method = "model"
    service = data.get("service")
    if "service" not in result.entities and isinstance(service, str) and service.strip() \
            and service.strip().lower() in query.lower():
        result.entities["service"] = service.strip().lower()
    return result


MODEL_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["intent", "confidence"],
    "properties": {"intent": {"type": "string", "enum": list(INTENTS)},
                   "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                   "service": {"type": "string"}}}


def search_terms(query: str) -> str:
    """What to search for in "find documents about X"."""
    terms = re.sub(r"^\s*(search|find|look for|look up)\s+(for\s+)?(the\s+)?"
                   r"(documents?\s+|docs?\s+)?(about\s+|on\s+|for\s+)?", "", query, flags=re.I)
    return terms.strip() or query
