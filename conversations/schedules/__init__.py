"""Schedules: a message sent on a cron or an interval, each run an ordinary turn, once per due time.

The beat's tick (``schedules.tick``, every ``SOMA_SCHEDULE_TICK_SECONDS``) finds the
schedules whose next due time has come. For each it locks the schedule's row, writes the
run for that due time (unique per schedule and due time), accepts the message as the
schedule's owner (policy and budget checks included, the turn queued through the
outbox) and moves the next due time on, all in one transaction: two beats, a restarted
beat or a worker killed mid-tick can neither run a due time twice (the lock, then the
unique run) nor lose one (nothing commits unless all of it does). The turn itself is an
ordinary turn with its lease. When the turn ends, ``schedule_run_ended`` (called from
the end of the turn) records the outcome, and a schedule failing
``SOMA_SCHEDULE_MAX_FAILURES`` times in a row is paused.
"""
