#!/bin/sh
# make run: start the worklist server with a demo database.
set -eu
mwl="$1"
port="$2"
if ! "$mwl" serve --help >/dev/null 2>&1; then
  echo "make run: 'mwl serve' is not built yet (the worklist server lands with the SCP work); nothing to run." >&2
  exit 1
fi
exec "$mwl" serve --port "$port"
