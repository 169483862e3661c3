"""The claim checker: which sentences of model prose a spec or source texts support, what
share of a document's claims they support, and the document check against a spec (what
any Markdown claims that the spec lacks, what it leaves out). A library, no service."""

from llmdocs.claims.check import (
    CheckContext,
    Checked,
    Dropped,
    Reason,
    Repeats,
    check_prose,
    check_sentence,
)
from llmdocs.claims.document import (
    CHANGES,
    DocumentCheck,
    Truthfulness,
    Unsupported,
    check_document,
    check_reference,
    truthfulness,
)
from llmdocs.claims.extract import Claim, claims_of
from llmdocs.claims.sentences import prose_units, split_sentences
from llmdocs.claims.spec_index import SpecIndex
from llmdocs.claims.vocabulary import Vocabulary

__all__ = ["CHANGES", "CheckContext", "Checked", "Claim", "DocumentCheck", "Dropped", "Reason",
           "Repeats", "SpecIndex", "Truthfulness", "Unsupported", "Vocabulary", "check_document",
           "check_prose", "check_reference", "check_sentence", "claims_of", "prose_units",
           "split_sentences", "truthfulness"]
