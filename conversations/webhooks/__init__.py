"""Webhooks: a tenant's HTTPS endpoints told about events, signed, retried, dead-lettered.

An event (``turn.finished``, ``turn.failed``, …) becomes one ``WebhookDelivery``
row per subscribed endpoint, written in the same transaction as what it
reports, so a committed turn always has its deliveries and a rolled-back one
none. The rows are the outbox: after commit they are kicked once through the
core outbox (``webhook.deliver``), and the beat sweep picks up whatever is due
(a retry's time has come, a kick was lost, a worker died holding a lease).
Each try is leased, so two workers never send one delivery at the same time;
a receiver that answers 2xx ends it. A failure is tried again with jittered
backoff (never sooner than a ``Retry-After``) until the retry span has passed,
then the delivery is dead and a dead letter lets staff replay it from admin.

Receivers check ``Soma-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 of
``"<t>." + body`` with the endpoint's secret (``signing``); ``Soma-Delivery``
is the delivery's id, the same on every try, for receivers to drop repeats.
"""
