"""Kept-alive HTTP/1.1 requests written as bytes and read by httptools: what the Sinch client
sends with and what the simulator posts its callbacks with. Imports nothing of ours."""

from smsgateway.rawhttp.transport import (
    RawAnswer,
    RawTransport,
    origin_of,
    request_target,
    take_slot,
)

__all__ = ["RawAnswer", "RawTransport", "origin_of", "request_target", "take_slot"]
