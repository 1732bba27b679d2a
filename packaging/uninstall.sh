#!/bin/sh
#
# uninstall.sh [--prefix DIR] [--purge]
#
# Removes the connector installed by install.sh. Running instances (pid files in
# DIR/state) are stopped first. Configs (DIR/*.ini, DIR/*.key), logs and state
# (stream positions, dead letters) are kept unless --purge is given, so that a later
# install resumes where this one stopped.
#
# DIR defaults to the directory holding this script when it is the installed copy,
# else /opt/mrav2-connector.
set -eu

DEFAULT_PREFIX=/opt/mrav2-connector
BINARY_NAME=mrav2-syslog-connector
PROGRAM_FILES="bin/${BINARY_NAME} bin/start-connector.sh bin/stop-connector.sh bin/status-connector.sh bin/reload-connector.sh bin/restart-connector.sh bin/connector-lib.sh config.ini.example share/doc/README.md share/doc/CHANGELOG.md share/doc/LICENSE share/systemd/mrav2-connector.service share/systemd/mrav2-connector@.service share/launchd/com.lookout.mrav2-connector.plist share/monitoring/grafana-dashboard.json share/monitoring/prometheus-rules.yml uninstall.sh"
PROGRAM_DIRS="share/doc share/systemd share/launchd share/monitoring share bin"

usage() {
    cat <<EOF
usage: $(basename -- "$0") [--prefix DIR] [--purge]

  --prefix DIR  the installation to remove (default: this script's directory if it is
                the installed copy, else ${DEFAULT_PREFIX})
  --purge       also remove configs (*.ini, *.key), logs and state (positions, dead
                letters); without it they are kept
EOF
}

die() {
    printf 'uninstall.sh: %s\n' "$*" >&2
    exit 1
}

here=$(cd -- "$(dirname -- "$0")" && pwd -P)
prefix=${DEFAULT_PREFIX}
[ -f "${here}/.mrav2-connector" ] && prefix=${here}
purge=no
while [ "$#" -gt 0 ]; do
    case "$1" in
        --prefix)
            [ "$#" -ge 2 ] || die "--prefix needs a directory"
            prefix=$2
            shift 2
            ;;
        --prefix=*)
            prefix=${1#--prefix=}
            shift
            ;;
        --purge)
            purge=yes
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
done

[ -d "${prefix}" ] || die "${prefix} does not exist; pass the installation's --prefix"
prefix=$(cd -- "${prefix}" && pwd -P)
# Never remove anything from a directory that install.sh did not fill.
[ -f "${prefix}/.mrav2-connector" ] ||
    die "${prefix} is not a connector installation (no ${prefix}/.mrav2-connector, which install.sh writes)"

# True if "$1" is a live (not zombie) process whose command line names pid file "$2".
is_instance() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true)
        args=$(tr '\000' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)
    else
        stat=$(ps -o stat= -p "$1" 2>/dev/null || true)
        args=$(ps -ww -o args= -p "$1" 2>/dev/null || true)
    fi
    case "${stat}" in
        Z*) return 1 ;;
    esac
    case "${args}" in
        '' | *"${BINARY_NAME}"*"$2"*) return 0 ;;
    esac
    return 1
}

# Stop every running instance: SIGTERM, then SIGKILL after 15 s, as stop-connector.sh.
for pid_file in "${prefix}"/state/*.pid; do
    [ -f "${pid_file}" ] || continue
    name=$(basename -- "${pid_file}" .pid)
    pid=$(sed -n '1{s/[[:space:]]//g;p;}' "${pid_file}" 2>/dev/null || true)
    case "${pid}" in
        '' | *[!0-9]*) pid= ;;
    esac
    if [ -n "${pid}" ] && is_instance "${pid}" "${pid_file}"; then
        echo "Stopping instance ${name} (pid ${pid})."
        kill -TERM "${pid}" 2>/dev/null || die "cannot signal pid ${pid} of instance ${name} (are you its owner?)"
        waited=0
        while is_instance "${pid}" "${pid_file}"; do
            if [ "${waited}" -ge 15 ]; then
                echo "Instance ${name} still runs 15s after SIGTERM; sending SIGKILL."
                kill -KILL "${pid}" 2>/dev/null || true
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    rm -f -- "${pid_file}"
done

for f in ${PROGRAM_FILES}; do
    rm -f -- "${prefix:?}/${f}"
done
# The operator reference install.sh copies from the tarball's docs/: its *.md files
# (regular files only; find does not follow a symbolic link), then the directories
# they leave empty, deepest first. Anything else in share/doc/docs stays, with its
# directories.
docs=${prefix:?}/share/doc/docs
if [ -d "${docs}" ] && [ ! -L "${docs}" ]; then
    find "${docs}" -type f -name '*.md' -exec rm -f -- {} +
    find "${docs}" -depth -type d -exec rmdir -- {} + 2>/dev/null || true
fi
for d in ${PROGRAM_DIRS}; do
    rmdir -- "${prefix:?}/${d}" 2>/dev/null || true
done

if [ "${purge}" = yes ]; then
    for f in "${prefix}"/*.ini "${prefix}"/*.key; do
        if [ -f "${f}" ]; then rm -f -- "${f}"; fi
    done
    rm -rf -- "${prefix:?}/logs" "${prefix:?}/state"
    rm -f -- "${prefix:?}/.mrav2-connector"
    rmdir -- "${prefix}" 2>/dev/null || true
    if [ -d "${prefix}" ]; then
        echo "Removed the connector, its configs, logs and state; ${prefix} still holds other files:"
        ls -A -- "${prefix}"
    else
        echo "Removed ${prefix} entirely."
    fi
else
    echo "Removed the connector from ${prefix}."
    echo "Kept (remove them with --purge, or by hand):"
    for f in "${prefix}"/*.ini "${prefix}"/*.key "${prefix}/logs" "${prefix}/state"; do
        if [ -e "${f}" ]; then echo "  ${f}"; fi
    done
fi

for unit in /etc/systemd/system/mrav2-connector.service /etc/systemd/system/mrav2-connector@.service \
    /Library/LaunchDaemons/com.lookout.mrav2-connector.plist; do
    if [ -f "${unit}" ]; then
        echo "Note: ${unit} is still installed; disable and remove it (see docs/operations.md, \"Running as a service\", in the release tarball)."
    fi
done
exit 0
