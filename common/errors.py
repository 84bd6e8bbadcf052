"""Errors a user can fix: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user; the message names the bad value and the fix."""


class BadArgument(UserError, ValueError):
    """A bad argument to a library call: one line at the command line like any UserError, and a
    ValueError to Python code that calls the library and catches that."""


def download_cause(error: BaseException) -> str:
    """Why a download failed, in words: no network, an HTTP status, a failed checksum, or the error's first line.

    Keras and kagglehub wrap the cause (urllib's HTTPError / URLError, requests' errors) in exceptions
    of their own, so the chain of causes is searched for it.
    """
    chain, seen = [], error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in chain:
        status = getattr(cause, "code", None) or getattr(getattr(cause, "response", None), "status_code", None)
        if isinstance(status, int) and 100 <= status < 600:
            return f"HTTP status {status}{_reason(cause)}"
    for cause in chain:
        name = type(cause).__name__
        if isinstance(cause, TimeoutError) or "Timeout" in name:
            return "no network: the connection timed out"
        if isinstance(cause, ConnectionError) or name in ("URLError", "gaierror") or "ConnectionError" in name:
            return f"no network: {_first_line(getattr(cause, 'reason', None) or cause)}"
    for cause in chain:
        if "hash" in str(cause).lower() or "checksum" in str(cause).lower():
            return "the downloaded file failed its checksum (a truncated or altered download)"
    return f"{type(error).__name__}: {_first_line(error)}"


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "msg", None)
    return f" ({reason})" if isinstance(reason, str) and reason else ""


def _first_line(error) -> str:
    return (str(error).strip().splitlines() or [""])[0]
