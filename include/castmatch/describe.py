"""One line for an error, for logs, stored reasons and people: never a traceback, never a
credential, and describing never raises."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """``Type (status): first line``. A database error names its driver's error (without the SQL
    echo); an API error its status and the API's own message; an empty message still describes."""
    try:
        inner = getattr(exc, "orig", None) or exc
        status = getattr(inner, "status_code", None)
        body = getattr(inner, "body", None)
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        lines = str(inner).strip().splitlines()
        text = str(message or (lines[0] if lines else ""))[:300]
        head = f"{type(inner).__name__}{f' ({status})' if status else ''}"
        return f"{head}: {text}" if text else head
    except Exception:  # describing must not fail the thing it describes
        return type(exc).__name__
