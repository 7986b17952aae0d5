"""``make run``'s launcher: start every process on the port it prints, say so once all answer.

``python -m somaagent.project.devrun [--local-model 0|1] web worker tools beat [flower]``:

1. plans the run (``plan.py``): the web's port is ``PORT`` or 8000 and is given
   to honcho with ``-p`` (honcho's own default would be 5000), the embedded local
   model joins as the ``llm`` process when it is wanted and installed;
2. refuses to start, saying what to do, when the web's or the model's port is taken;
3. holds the embedded Redis server (``embedded_redis.acquire``) when ``REDIS_URL``
   is unset, migrates, creates the development credentials (``bootstrap_dev``);
4. runs honcho and waits (``readiness.py``) until the web answers ``/healthz`` and
   ``/readyz`` at the planned URL, a worker consumes every queue and, when it was
   started, the local model answers; then prints the banner (``banner.py``) once;
5. on Ctrl-C or SIGTERM stops honcho (and so every process), then releases the
   embedded Redis server, which stops it if this run started it, and says so.
"""
