"""Feature flags (``flag_enabled(name, tenant=None)``): database rows, edited in admin, cached."""

from somaagent.flags.services import (
    FlagsSnapshot,
    flag_delete,
    flag_enabled,
    flag_set,
    flags_changed,
    flags_snapshot,
)

__all__ = ["FlagsSnapshot", "flag_delete", "flag_enabled", "flag_set", "flags_changed", "flags_snapshot"]
