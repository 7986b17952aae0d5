"""Schedules: a message sent on a cron or an interval, each run an ordinary turn, once per due time.

The beat's tick (``schedules.tick``, every ``SOMA_SCHEDULE_TICK_SECONDS``) does two things.
First it finds the schedules whose next due time has come; for each it locks the
schedule's row, writes a *waiting* run for that due time (unique per schedule and due
time) and moves the next due time on, in one transaction: two beats, a restarted beat or
a worker killed mid-tick can neither write a due time twice (the lock, then the unique
run) nor lose one (nothing commits unless all of it does). Then it starts waiting runs
while background slots are free (per tenant and in all, tenants taking turns): each start
locks the run, accepts its message as the schedule's owner (policy and budget checks
included, the turn queued through the outbox) and marks it queued, in one transaction.
People's messages never wait for a slot, so a tenant's flood of due runs holds up no one
else's chat. The turn itself is an ordinary turn with its lease. When the turn ends,
``outcomes.schedule_run_ended`` (called from the end of the turn) records the outcome, and a
schedule failing ``SOMA_SCHEDULE_MAX_FAILURES`` times in a row is paused.
"""
