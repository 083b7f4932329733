"""A small async SDK for the Sinch SMS REST API; imports httpx and pydantic, nothing of ours.

Start at :class:`SinchClient`; the error tree is drawn in :mod:`smsgateway.sinch.errors`.
"""

from smsgateway.rawhttp.transport import RawTransport
from smsgateway.sinch._exchange import REQUEST_ID_HEADER
from smsgateway.sinch.aiohttp_transport import AiohttpTransport
from smsgateway.sinch.auth import ApiTokenAuth, OAuth2ClientCredentials
from smsgateway.sinch.client import SinchClient
from smsgateway.sinch.errors import (
    SinchConflict,
    SinchError,
    SinchHTTPError,
    SinchInvalidResponse,
    SinchNotFound,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
    SinchUnauthorized,
)
from smsgateway.sinch.observer import NullObserver, SinchObserver
from smsgateway.sinch.regions import Region
from smsgateway.sinch.retry import NO_RETRY, RetryPolicy
from smsgateway.sinch.transport import ShardedTransport

__all__ = [
    "NO_RETRY",
    "REQUEST_ID_HEADER",
    "AiohttpTransport",
    "ApiTokenAuth",
    "NullObserver",
    "OAuth2ClientCredentials",
    "RawTransport",
    "Region",
    "RetryPolicy",
    "ShardedTransport",
    "SinchClient",
    "SinchConflict",
    "SinchError",
    "SinchHTTPError",
    "SinchInvalidResponse",
    "SinchNotFound",
    "SinchNotSent",
    "SinchObserver",
    "SinchOutcomeUnknown",
    "SinchRateLimited",
    "SinchRejected",
    "SinchServerError",
    "SinchUnauthorized",
]
