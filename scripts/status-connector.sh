#!/bin/sh
# shellcheck source-path=SCRIPTDIR
#
# status-connector.sh [CONFIG]
#
# Says whether one connector instance runs, and shows per tenant the saved stream
# position, when it was saved (its age) and how many events were delivered
# (`mrav2-syslog-connector status`). The connector's log has the live lag: once a
# minute per tenant, the age of the last delivered event.
#
# Exit status follows the LSB convention for "status":
#   0 running; 1 dead, but the pid file remains; 3 not running;
#   4 status unknown (e.g. usage error, program or config missing).
set -eu

# Called from connector-lib.sh.
# shellcheck disable=SC2317
usage() {
    cat <<USAGE
usage: $(basename -- "$0") [CONFIG]

Show whether the connector for CONFIG (default: <prefix>/config.ini) runs, and each
tenant's saved position and its age. Exit: 0 running, 1 dead (stale pid file),
3 stopped, 4 unknown.
USAGE
}

# Our own directory, following symbolic links (e.g. from /usr/local/bin).
SELF_DIR=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=connector-lib.sh
. "${SELF_DIR}/connector-lib.sh"

case "${1-}" in
    -h | --help)
        usage
        exit 0
        ;;
esac
# LSB reserves 4 for "unknown": map every setup failure (usage, missing program or
# config) to it. The trial runs in a subshell so that its exit stays ours to map.
(setup_instance "$@") || exit 4
setup_instance "$@"

probe_instance
case "${STATE}" in
    running)
        report "running (pid ${PID}); log: ${LOG_FILE}"
        code=0
        ;;
    dead)
        report "dead: the process is gone but the pid file ${PID_FILE} remains (crash or kill -9?); see ${LOG_FILE}"
        code=1
        ;;
    *)
        report "stopped"
        code=3
        ;;
esac

# Positions are on disk, so they are worth showing whether or not it runs.
if [ -d "${STATE_DIR}" ]; then
    if ! "${BINARY}" status --config "${CONFIG}" --state-dir "${STATE_DIR}"; then
        say "could not read the positions in ${STATE_DIR} (see above)"
    fi
else
    report "no state yet in ${STATE_DIR}"
fi
exit "${code}"
