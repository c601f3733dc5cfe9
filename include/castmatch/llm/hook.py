"""The Anthropic provider's hook, its clients sharing one TLS context per process.

The SDK gives every client a new ``ssl.SSLContext``, and OpenSSL 3 parses the whole CA bundle
for each (about 28 ms of CPU here): once per agent task, the largest cost left in it. The
hook maps the connection to the client exactly as the provider's does (platform, key, base URL,
``anthropic_client_kwargs``); only the direct API's client gets the SDK's own default HTTP
client with the process's one TLS context. The scheduler makes that context before it forks
task processes (``castmatch.preload``), so they inherit it.
"""

from __future__ import annotations

import dataclasses
import functools

from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

_tls: dict = {}


def shared_tls_context():
    """The process's TLS context for Anthropic clients: what the SDK would build for each client
    (certificates from the system, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), built once."""
    if "context" not in _tls:
        import httpx2

        _tls["context"] = httpx2.create_ssl_context()
    return _tls["context"]


class ClaudeHook(AnthropicHook):
    """``AnthropicHook`` whose direct-API clients share the process's TLS context."""

    def _build_client(self, factories):
        import anthropic

        if self.platform == "anthropic":  # the others (Bedrock, Vertex, ...) build their clients as the provider does
            factory = factories.anthropic
            http = anthropic.DefaultAsyncHttpxClient if issubclass(factory, anthropic.AsyncAnthropic) \
                else anthropic.DefaultHttpxClient
            factories = dataclasses.replace(
                factories, anthropic=functools.partial(factory, http_client=http(verify=shared_tls_context())))
        return super()._build_client(factories)
