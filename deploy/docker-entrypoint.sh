#!/bin/sh
# Every container starts with an empty Prometheus multiprocess directory: samples
# of a previous run (before a restart) must not be summed with the new ones.
set -e
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
exec "$@"
