#!/bin/sh
# shellcheck source-path=SCRIPTDIR
#
# start-connector.sh [CONFIG]
#
# Starts one connector instance in the background (see connector-lib.sh for how the
# instance's pid, state and log files are named). It
#   1. refuses to start a second copy of the same instance,
#   2. validates the config with `check-config` and shows every problem if it fails,
#   3. starts the daemon with --daemon --pid-file --log-file --state-dir,
#   4. waits until the log says it started, and shows the last log lines if it died.
#
# Exit status: 0 started; 1 already running or failed at start-up; 2 usage;
# 5 not installed; 6 config file missing; 78 configuration invalid.
# Progress goes to standard output, problems to standard error.
set -eu

# Called from connector-lib.sh.
# shellcheck disable=SC2317
usage() {
    cat <<EOF
usage: $(basename -- "$0") [CONFIG]

Start the connector for CONFIG (default: <prefix>/config.ini) in the background.
Pid file: <prefix>/state/<name>.pid, state: <prefix>/state/<name>/,
log: <prefix>/logs/<name>.log, where <name> is CONFIG's file name without .ini.
EOF
}

# Our own directory, following symbolic links (e.g. from /usr/local/bin).
SELF_DIR=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=connector-lib.sh
. "${SELF_DIR}/connector-lib.sh"
setup_instance "$@"

start_timeout=$(seconds_or_default "${MRAV2_START_TIMEOUT-}" 30)

probe_instance
case "${STATE}" in
    running)
        report "already running (pid ${PID}); not starting a second copy" >&2
        say "use stop-connector.sh or restart-connector.sh for ${CONFIG}"
        exit 1
        ;;
    dead)
        report "removing stale pid file ${PID_FILE} (its process is gone)"
        rm -f -- "${PID_FILE}"
        ;;
esac

# Validate first: a configuration error is reported here, in full, on the terminal,
# instead of disappearing into the daemon's log.
check_config_or_exit ""

umask 027
mkdir -p -- "${PREFIX}/logs" "${PREFIX}/state" "${STATE_DIR}"
offset=$(log_size)

# The daemon's own stdout/stderr also go to the log: anything printed before its
# logger is set up (or a panic) is kept next to its regular log lines.
cd -- "${PREFIX}"
set +e
# The log file is an argument and the redirection target, never read here.
# shellcheck disable=SC2094
"${BINARY}" --config "${CONFIG}" --log-file "${LOG_FILE}" --state-dir "${STATE_DIR}" \
    --daemon --pid-file "${PID_FILE}" run >>"${LOG_FILE}" 2>&1
status=$?
set -e

show_failure() {
    report "failed to start ($1); last log lines from ${LOG_FILE}:" >&2
    log_since "${offset}" 20 | sed 's/^/    /' >&2
}

if [ "${status}" -ne 0 ]; then
    show_failure "exit ${status}"
    exit "${status}"
fi

# The parent returned once it forked; now wait for the daemon to record its pid and
# to log that every tenant is running, or to die trying.
started_at=$(now)
pid=
while :; do
    probe_instance
    if [ "${STATE}" = running ]; then
        pid=${PID}
        if log_since "${offset}" 100000 | grep -q -- "${READY_LINE}"; then
            report "started (pid ${pid}); log: ${LOG_FILE}"
            exit 0
        fi
    elif [ -n "${pid}" ] || [ -n "${PID}" ]; then
        # It recorded its pid (any old pid file was removed above) and is gone again.
        # (A pid file that exists but is still empty is being written: wait.)
        show_failure "the process exited during start-up"
        rm -f -- "${PID_FILE}"
        exit 1
    fi
    if [ "$(($(now) - started_at))" -ge "${start_timeout}" ]; then
        break
    fi
    nap
done

if [ -n "${pid}" ]; then
    report "running (pid ${pid}), but the log does not say it started yet after ${start_timeout}s; check ${LOG_FILE}"
    exit 0
fi
show_failure "no running process after ${start_timeout}s"
exit 1
