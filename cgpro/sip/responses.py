# -*- test-case-name: tests.sip.test_responses -*-
"""
Building responses, tags and branches: what every SIP layer needs to
answer a request (RFC 3261 section 8.2.6).

Kept apart from the parser so that the transaction layer, the registrar
and the proxy share one way of copying Via, From, To, Call-ID and CSeq
into a response, and one source of random identifiers.
"""

import os
import binascii

from cgpro.sip.message import Response

#: The magic cookie of RFC 3261 section 8.1.1.7.
BRANCH_MAGIC = "z9hG4bK"

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded",
    182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted",
    300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief",
    429: "Too Many Requests",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_COPIED = ("Via", "From", "Call-ID", "CSeq")


def randomToken(nbytes=8):
    """@return: C{2 * nbytes} random hex digits."""
    return binascii.hexlify(os.urandom(nbytes)).decode("ascii")


def newBranch():
    """@return: a fresh RFC 3261 branch (magic cookie + random)."""
    return BRANCH_MAGIC + randomToken(8)


def newTag():
    """@return: a fresh From/To tag."""
    return randomToken(6)


def makeResponse(request, code, reason=None, toTag=None, headers=()):
    """
    Build a response to C{request}.

    Via (all of them, in order), From, Call-ID and CSeq are copied; To is
    copied and given C{toTag} if it has no tag yet (RFC 3261 section
    8.2.6.2: not for 100 Trying, which callers ask for by passing no tag).

    @param reason: the reason phrase; the standard one by default.
    @param headers: further C{(name, value)} headers, appended in order.
    @rtype: L{Response}
    """
    if reason is None:
        reason = REASONS.get(code, "Unknown")
    response = Response(code, reason)
    out = response.headers
    to = None
    for name, value in request.headers:
        if name in _COPIED:
            out.append([name, value])
        elif name == "To" and to is None:
            to = value
            out.append([name, value])
    if toTag is not None and to is not None and code != 100:
        if request.toAddr.tag is None:
            for header in out:
                if header[0] == "To":
                    header[1] = "%s;tag=%s" % (to, toTag)
                    break
    for name, value in headers:
        out.append([name, value])
    return response
