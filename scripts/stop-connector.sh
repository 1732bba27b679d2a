#!/bin/sh
# shellcheck source-path=SCRIPTDIR
#
# stop-connector.sh [CONFIG]
#
# Stops one connector instance: SIGTERM (the connector delivers what it read, saves
# its position and exits within seconds), then, if it is still there after
# MRAV2_STOP_TIMEOUT seconds (default 15), SIGKILL. Says which of the two happened.
#
# Exit status: 0 stopped or was not running; 1 could not be stopped; 2 usage;
# 5 not installed; 6 config file missing.
set -eu

# Called from connector-lib.sh.
# shellcheck disable=SC2317
usage() {
    cat <<USAGE
usage: $(basename -- "$0") [CONFIG]

Stop the connector started for CONFIG (default: <prefix>/config.ini):
SIGTERM, then SIGKILL after \${MRAV2_STOP_TIMEOUT:-15} seconds.
USAGE
}

# Our own directory, following symbolic links (e.g. from /usr/local/bin).
SELF_DIR=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=connector-lib.sh
. "${SELF_DIR}/connector-lib.sh"
setup_instance "$@"

stop_timeout=$(seconds_or_default "${MRAV2_STOP_TIMEOUT-}" 15)

probe_instance
case "${STATE}" in
    stopped)
        report "not running"
        exit 0
        ;;
    dead)
        report "not running; removing stale pid file ${PID_FILE}"
        rm -f -- "${PID_FILE}"
        exit 0
        ;;
esac

if ! kill -TERM "${PID}" 2>/dev/null; then
    report "cannot signal pid ${PID} (are you its owner?)" >&2
    exit 1
fi
started_at=$(now)
while process_alive "${PID}"; do
    elapsed=$(($(now) - started_at))
    if [ "${elapsed}" -ge "${stop_timeout}" ]; then
        report "still running ${stop_timeout}s after SIGTERM; sending SIGKILL to pid ${PID}"
        report "positions saved since the last commit are kept; events read but not yet delivered will be fetched again"
        kill -KILL "${PID}" 2>/dev/null || true
        killed_at=$(now)
        while process_alive "${PID}"; do
            if [ "$(($(now) - killed_at))" -ge 5 ]; then
                report "pid ${PID} survived SIGKILL" >&2
                exit 1
            fi
            nap
        done
        rm -f -- "${PID_FILE}"
        report "stopped with SIGKILL (pid ${PID})"
        exit 0
    fi
    nap
done
rm -f -- "${PID_FILE}"
report "stopped with SIGTERM (pid ${PID}, after $(($(now) - started_at))s)"
