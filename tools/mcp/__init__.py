"""MCP servers as tool sources (issue 17): a tenant's servers' tools next to the built-in ones.

- ``spec``: a server row turned into what a connection needs (secrets decrypted), and its checks.
- ``connect``: the SDK client for it: streamable HTTP or legacy SSE through ``guard`` (the
  network guard of ``http_fetch``), or a local (stdio) server that ``local`` launches only inside
  the bubblewrap sandbox.
- ``client``: ``tools/list`` and ``tools/call`` from a worker thread, errors turned into tool errors.
- ``catalog``: tool lists cached in Redis for every worker, refreshed on TTL or ``list_changed``.
- ``watch``: per process, a listener per server that drops the cached list when it changes.
- ``offer``: the tenant's MCP tools as registry ``Tool`` objects named ``<server>__<tool>``.
- ``services``: saving a server (secrets encrypted, audited).
"""
