#!/bin/sh
# Runs its arguments inside the current D-Bus session with an unlocked gnome-keyring (the Secret Service).
# Started by scripts/run.mjs under dbus-run-session, so the keyring lives and dies with the test run.
set -e
export XDG_DATA_HOME="${XDG_DATA_HOME:-$(mktemp -d)}"
# --unlock reads the login password from stdin; an empty keyring is created and unlocked with it.
eval "$(printf 'flyte-auth-test' | gnome-keyring-daemon --unlock --components=secrets 2>/dev/null)"
export GNOME_KEYRING_CONTROL
exec "$@"
