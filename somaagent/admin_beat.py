"""django_celery_beat's periodic task admin, with its form's clean() fixed for a refused task.

Its ``PeriodicTaskForm.clean`` reads ``cleaned_data['task']`` even when the field itself refused
the value (a NUL, over 200 characters): a KeyError, a 500 for staff. Here the field's own error
is shown instead (issue 14: hostile input is a 4xx or a form error, never a 500).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import PeriodicTask


class PeriodicTaskForm(beat_admin.PeriodicTaskForm):
    def clean(self) -> Any:
        if "task" not in self.cleaned_data and not self.cleaned_data.get("regtask"):
            return self.cleaned_data  # the task field's own error is on the form
        return super().clean()


class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    form = PeriodicTaskForm


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
