"""The claim checker: which sentences of model prose a spec or source texts support, and
what share of a document's claims they support. A library, no service."""

from llmdocs.claims.check import (
    CheckContext,
    Checked,
    Dropped,
    Reason,
    Repeats,
    Truthfulness,
    check_prose,
    check_sentence,
    truthfulness,
)
from llmdocs.claims.extract import Claim, claims_of
from llmdocs.claims.sentences import prose_units, split_sentences
from llmdocs.claims.vocabulary import Vocabulary

__all__ = ["CheckContext", "Checked", "Claim", "Dropped", "Reason", "Repeats",
           "Truthfulness", "Vocabulary", "check_prose", "check_sentence", "claims_of",
           "prose_units", "split_sentences", "truthfulness"]
