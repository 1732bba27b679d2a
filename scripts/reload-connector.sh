#!/bin/sh
# shellcheck source-path=SCRIPTDIR
#
# reload-connector.sh [CONFIG]
#
# Makes a running connector instance re-read CONFIG without a restart (SIGHUP). It
#   1. checks that the instance runs,
#   2. validates the config with `check-config` and, if that fails, shows every
#      problem and sends nothing (the running connector would refuse the file too),
#   3. sends SIGHUP: the connector re-opens its log file, re-reads the config, starts
#      added tenants and destinations, stops removed ones, restarts changed ones and
#      leaves the others untouched,
#   4. waits until the log says what the reload did, and shows that line.
#
# [connector] state_dir and metrics_listen need a restart (restart-connector.sh).
#
# Exit status: 0 reloaded; 1 the connector refused the file, could not be signalled
# or did not confirm within MRAV2_RELOAD_TIMEOUT seconds (default 30); 2 usage;
# 5 not installed; 6 config file missing; 7 not running; 78 configuration invalid.
set -eu

# Called from connector-lib.sh.
# shellcheck disable=SC2317
usage() {
    cat <<USAGE
usage: $(basename -- "$0") [CONFIG]

Make the connector started for CONFIG (default: <prefix>/config.ini) re-read it
(SIGHUP), after checking it. Tenants and destinations whose settings did not change
keep running untouched.
USAGE
}

# Our own directory, following symbolic links (e.g. from /usr/local/bin).
SELF_DIR=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=connector-lib.sh
. "${SELF_DIR}/connector-lib.sh"
setup_instance "$@"

reload_timeout=$(seconds_or_default "${MRAV2_RELOAD_TIMEOUT-}" 30)

probe_instance
case "${STATE}" in
    stopped | dead)
        report "not running; nothing to reload (start it with start-connector.sh)" >&2
        exit 7
        ;;
esac

check_config_or_exit "; nothing was sent, the connector keeps running as it was"

offset=$(log_size)
if ! kill -HUP "${PID}" 2>/dev/null; then
    report "cannot signal pid ${PID} (are you its owner?)" >&2
    exit 1
fi

started_at=$(now)
while :; do
    said=$(log_since "${offset}" 100000)
    done_line=$(printf '%s\n' "${said}" | grep -- 'configuration reloaded' | tail -n 1 || true)
    if [ -n "${done_line}" ]; then
        report "reloaded (pid ${PID}):"
        printf '    %s\n' "${done_line}"
        exit 0
    fi
    if printf '%s\n' "${said}" | grep -q -- 'reload refused'; then
        report "the connector refused ${CONFIG} and keeps running as it was; its log says:" >&2
        printf '%s\n' "${said}" | tail -n 20 | sed 's/^/    /' >&2
        exit 1
    fi
    if ! process_alive "${PID}"; then
        report "pid ${PID} exited during the reload; last log lines from ${LOG_FILE}:" >&2
        log_since "${offset}" 20 | sed 's/^/    /' >&2
        exit 1
    fi
    if [ "$(($(now) - started_at))" -ge "${reload_timeout}" ]; then
        report "SIGHUP sent to pid ${PID}, but the log does not say the reload finished after ${reload_timeout}s; check ${LOG_FILE}" >&2
        exit 1
    fi
    nap
done
