# shellcheck shell=sh
# The variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# Shared by start-connector.sh, stop-connector.sh, status-connector.sh,
# reload-connector.sh and restart-connector.sh. It is sourced, never run: it only
# defines variables and functions.
#
# One *instance* is one config file. Everything else about the instance is derived
# from the config's file name, so that several instances can run side by side from
# one installation:
#
#   config      <prefix>/config.ini          (or the path given as the only argument)
#   name        config                       (file name without .ini)
#   pid file    <prefix>/state/<name>.pid
#   state dir   <prefix>/state/<name>/        (positions and dead letters)
#   log file    <prefix>/logs/<name>.log
#
# <prefix> is the directory above the one holding these scripts (bin/).
#
# Tunables (environment):
#   MRAV2_START_TIMEOUT  seconds to wait for "started successfully" (default 30)
#   MRAV2_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 15)

BINARY_NAME=mrav2-syslog-connector
READY_LINE='started successfully'

# Prints a message on stderr, prefixed with the script's name.
say() {
    printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2
}

# Prints a message on stdout, prefixed with the instance's name.
report() {
    printf 'mrav2-connector [%s]: %s\n' "${INSTANCE}" "$*"
}

# Prints "$1" as an absolute path of an existing file.
absolute_file() {
    dir=$(cd -- "$(dirname -- "$1")" && pwd -P) || return 1
    printf '%s/%s\n' "${dir}" "$(basename -- "$1")"
}

# Sets PREFIX, BINARY, CONFIG, INSTANCE, PID_FILE, STATE_DIR and LOG_FILE from the
# script's own directory (SELF_DIR, set by the script before sourcing this file) and
# its arguments ("[CONFIG]"). Exits 2 on a usage error, 5 (LSB: not installed) when
# the program is missing and 6 (LSB: not configured) when the config file is missing.
setup_instance() {
    SCRIPT_NAME=$(basename -- "$0")
    here=$(cd -- "${SELF_DIR}" && pwd -P)
    PREFIX=$(cd -- "${here}/.." && pwd -P)
    BINARY=${here}/${BINARY_NAME}

    case "${1-}" in
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            say "unknown option: $1"
            usage >&2
            exit 2
            ;;
    esac
    if [ "$#" -gt 1 ]; then
        say "expected at most one argument (the config file), got $#"
        usage >&2
        exit 2
    fi

    config_arg=${1:-${PREFIX}/config.ini}
    if [ ! -f "${config_arg}" ]; then
        INSTANCE=$(basename -- "${config_arg}" .ini)
        say "config file not found: ${config_arg}"
        say "copy ${PREFIX}/config.ini.example to it and edit it (chmod 600: it may hold an API key)"
        exit 6
    fi
    CONFIG=$(absolute_file "${config_arg}")
    INSTANCE=$(basename -- "${CONFIG}" .ini)
    case "${INSTANCE}" in
        '' | *[!A-Za-z0-9._-]*)
            say "config file name '${INSTANCE}' must use only A-Z a-z 0-9 . _ - (it names the pid, state and log files)"
            exit 2
            ;;
    esac

    PID_FILE=${PREFIX}/state/${INSTANCE}.pid
    STATE_DIR=${PREFIX}/state/${INSTANCE}
    LOG_FILE=${PREFIX}/logs/${INSTANCE}.log

    if [ ! -x "${BINARY}" ]; then
        say "program not found or not executable: ${BINARY}"
        exit 5
    fi
}

# Prints the pid recorded in the pid file, or nothing when there is no usable one.
read_pid() {
    [ -f "${PID_FILE}" ] || return 0
    pid=$(sed -n '1{s/[[:space:]]//g;p;}' "${PID_FILE}" 2>/dev/null || true)
    case "${pid}" in
        '' | *[!0-9]*) return 0 ;;
    esac
    printf '%s\n' "${pid}"
}

# True if process "$1" exists and is not a zombie. A zombie still answers kill -0,
# and where nothing reaps orphans (some containers) a stopped connector stays one.
process_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        # The state letter follows the command name, which is in parentheses.
        stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true)
    else
        stat=$(ps -o stat= -p "$1" 2>/dev/null || true)
    fi
    case "${stat}" in
        Z*) return 1 ;;
    esac
    return 0
}

# Prints the command line of process "$1", arguments separated by spaces.
process_args() {
    if [ -r "/proc/$1/cmdline" ]; then
        tr '\000' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
    else
        ps -ww -o args= -p "$1" 2>/dev/null || true
    fi
}

# True if process "$1" is this instance's connector: its command line holds our pid
# file. This guards against a pid that was reused by an unrelated process after a
# crash left the pid file behind.
process_is_instance() {
    args=$(process_args "$1")
    case "${args}" in
        '') return 0 ;; # ps cannot tell; trust the pid file
        *"${BINARY_NAME}"*"${PID_FILE}"*) return 0 ;;
    esac
    return 1
}

# Sets STATE to running, stopped or dead, and PID to the running pid (if any).
probe_instance() {
    PID=$(read_pid)
    if [ -z "${PID}" ]; then
        if [ -f "${PID_FILE}" ]; then
            STATE=dead
        else
            STATE=stopped
        fi
    elif process_alive "${PID}" && process_is_instance "${PID}"; then
        STATE=running
    else
        STATE=dead
    fi
}

# Sleeps a fraction of a second where sleep(1) allows it (GNU, BSD, busybox), else 1 s.
nap() {
    sleep 0.2 2>/dev/null || sleep 1
}

# Prints the current time in whole seconds since the epoch.
now() {
    date +%s
}

# Prints the current size of the log file in bytes (0 if it does not exist).
log_size() {
    if [ -f "${LOG_FILE}" ]; then
        wc -c <"${LOG_FILE}" | tr -d ' '
    else
        echo 0
    fi
}

# Prints the log written since byte offset "$1", last "$2" lines.
log_since() {
    if [ -f "${LOG_FILE}" ]; then
        tail -c "+$(($1 + 1))" "${LOG_FILE}" | tail -n "$2"
    fi
}

# Checks that "$1" is a whole number of seconds; prints it, or the default "$2".
seconds_or_default() {
    case "$1" in
        '' | *[!0-9]*) printf '%s\n' "$2" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# Validates ${CONFIG} with check-config. On a problem: reports it, with "$1" saying
# what that means for this script, prints every problem and exits with check-config's
# code (78 for a configuration error). Warnings are shown and not fatal.
check_config_or_exit() {
    check_status=0
    check_problems=$("${BINARY}" check-config --config "${CONFIG}" 2>&1 >/dev/null) ||
        check_status=$?
    if [ "${check_status}" -ne 0 ]; then
        report "configuration check failed (exit ${check_status}) for ${CONFIG}$1:" >&2
        printf '%s\n' "${check_problems}" >&2
        exit "${check_status}"
    fi
    if [ -n "${check_problems}" ]; then
        printf '%s\n' "${check_problems}" | sed 's/^/    /' >&2
    fi
}
