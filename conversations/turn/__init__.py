"""The turn, in one home: from the accepted message to its one terminal event.

Read in the order a turn happens:

1. ``dispatch`` — the turn's row is inserted with the accepted message (queued behind
   an earlier turn of the session) and handed to Celery through the outbox.
2. ``claim`` — a worker claims the turn (lease, renewal) and writes its events.
3. ``admission`` — policy and budget gates (at the gateway for the accept, in the turn).
4. ``route`` — which models the turn goes to: ``analysis`` of the message, the ``escalation``
   rules, the fallback chain.
5. ``context_window`` and ``prompt`` — the messages sent to the model, kept inside its context.
6. ``runner`` — runs the turn: claim, the model's stream, the end; ``publisher`` coalesces
   tokens into deltas and ``watch`` is the process's one timer for every running turn.
7. ``tool_loop`` and ``tool_calls`` — the model asks for tools, they run, results go back;
   ``approvals`` parks a turn whose tool call waits for a person and resumes it.
8. ``finish`` — the one terminal event, written by the worker that owns the turn; ``end``
   then calls, explicitly and in order, what follows a turn (usage, memory, summary, metrics).

``types`` holds what a turn is while it runs and when it ends (the claim, the outcome).
"""
