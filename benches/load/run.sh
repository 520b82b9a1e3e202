#!/usr/bin/env bash
# Kept for old habits: the load measurement is now part of benches/compare.sh, which prints
# the whole speed table (search against the Python peer, HTTP search against /healthz, turns
# on SQLite and PostgreSQL, start-up and memory). PG=0 skips PostgreSQL.
exec "$(dirname "$0")/../compare.sh" "$@"
