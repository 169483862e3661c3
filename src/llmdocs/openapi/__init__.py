"""OpenAPI specs, loaded, resolved and analysed within bounds: a library, no service."""

from llmdocs.openapi.analyse import Analysis, analyse
from llmdocs.openapi.bounds import SpecBounds
from llmdocs.openapi.load import (
    SpecError,
    Unreachable,
    fetch_spec,
    fetch_spec_source,
    fetch_spec_url,
    parse_spec,
    read_bounded,
    spec_hash,
)
from llmdocs.openapi.models import Operation, Parameter, RequestBody
from llmdocs.openapi.resolve import Resolver

__all__ = ["Analysis", "Operation", "Parameter", "RequestBody", "Resolver", "SpecBounds",
           "SpecError", "Unreachable", "analyse", "fetch_spec",
           "fetch_spec_source", "fetch_spec_url", "parse_spec", "read_bounded",
           "spec_hash"]
