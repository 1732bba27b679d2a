#!/bin/sh
#
# install.sh [--prefix DIR] [--owner USER[:GROUP]]
#
# Installs the connector from an extracted release tarball (this script's directory)
# into DIR (default /opt/mrav2-connector). Root is needed only if DIR is not writable
# by you. Layout:
#
#   DIR/bin/                 mrav2-syslog-connector and the control scripts
#   DIR/config.ini           created from the example only if it does not exist (mode 600)
#   DIR/config.ini.example   always refreshed
#   DIR/logs/  DIR/state/    one log file / pid file + state directory per instance
#   DIR/share/               systemd units and launchd plist (paths set to DIR)
#   DIR/share/monitoring/    the Grafana dashboard and the Prometheus alerting rules
#   DIR/share/doc/           README.md, CHANGELOG.md, LICENSE, and docs/ (the operator
#                            reference, the tarball's docs/ tree) beside README.md, so
#                            README.md's links into docs/ resolve
#   DIR/uninstall.sh
#   DIR/.mrav2-connector     marks an installation (uninstall.sh acts only where it is)
#
# Installing over an existing installation upgrades the program and keeps every config,
# log and state file. Running instances keep the old program until restarted.
set -eu

DEFAULT_PREFIX=/opt/mrav2-connector
BINARY_NAME=mrav2-syslog-connector
CONTROL_SCRIPTS="start-connector.sh stop-connector.sh status-connector.sh reload-connector.sh restart-connector.sh connector-lib.sh"
MONITORING_FILES="grafana-dashboard.json prometheus-rules.yml"

usage() {
    cat <<EOF
usage: $(basename -- "$0") [--prefix DIR] [--owner USER[:GROUP]]

  --prefix DIR          install into DIR (default ${DEFAULT_PREFIX})
  --owner USER[:GROUP]  (as root) let USER own logs/, state/ and config.ini, so the
                        control scripts can run the connector as USER
EOF
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

prefix=${DEFAULT_PREFIX}
owner=
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
        --owner)
            [ "$#" -ge 2 ] || die "--owner needs a user name"
            owner=$2
            shift 2
            ;;
        --owner=*)
            owner=${1#--owner=}
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
[ -n "${prefix}" ] || die "--prefix must not be empty"
if [ -n "${owner}" ] && [ "$(id -u)" -ne 0 ]; then
    die "--owner needs root (only root can change the owner of files)"
fi

src=$(cd -- "$(dirname -- "$0")" && pwd -P)
for f in "bin/${BINARY_NAME}" config.ini.example uninstall.sh; do
    [ -f "${src}/${f}" ] || die "${src}/${f} is missing: run install.sh from an extracted release tarball"
done

mkdir -p -- "${prefix}" 2>/dev/null ||
    die "cannot create ${prefix}: choose a writable --prefix, or run as root (sudo)"
prefix=$(cd -- "${prefix}" && pwd -P)
[ -w "${prefix}" ] ||
    die "${prefix} is not writable: choose a writable --prefix, or run as root (sudo)"

version=$("${src}/bin/${BINARY_NAME}" --version 2>/dev/null || true)
[ -n "${version}" ] || version="${BINARY_NAME} (version unknown)"
upgrade=no
[ -f "${prefix}/bin/${BINARY_NAME}" ] && upgrade=yes

# Copies $1 to $2 with mode $3 by writing a temporary file next to $2 and renaming
# it: a running program or script is replaced, never overwritten in place (which
# fails with "text file busy", or corrupts a script that a shell is reading).
put() {
    tmp="$2.new.$$"
    cp -- "$1" "${tmp}"
    chmod "$3" "${tmp}"
    mv -f -- "${tmp}" "$2"
}

umask 022
mkdir -p -- "${prefix}/bin" "${prefix}/share/doc" "${prefix}/share/systemd" "${prefix}/share/launchd" \
    "${prefix}/share/monitoring"
mkdir -p -- "${prefix}/logs" "${prefix}/state"
chmod 750 "${prefix}/logs" "${prefix}/state"

put "${src}/bin/${BINARY_NAME}" "${prefix}/bin/${BINARY_NAME}" 755
for script in ${CONTROL_SCRIPTS}; do
    mode=755
    [ "${script}" = connector-lib.sh ] && mode=644
    put "${src}/bin/${script}" "${prefix}/bin/${script}" "${mode}"
done
put "${src}/uninstall.sh" "${prefix}/uninstall.sh" 755
for m in ${MONITORING_FILES}; do
    if [ -f "${src}/monitoring/${m}" ]; then
        put "${src}/monitoring/${m}" "${prefix}/share/monitoring/${m}" 644
    fi
done
put "${src}/config.ini.example" "${prefix}/config.ini.example" 644
for doc in README.md CHANGELOG.md LICENSE; do
    if [ -f "${src}/${doc}" ]; then
        put "${src}/${doc}" "${prefix}/share/doc/${doc}" 644
    fi
done
# The operator reference. An upgrade replaces it as a whole: the *.md files of the
# previous release go first (uninstall.sh removes the same set), so a page that was
# renamed or dropped does not linger with stale links. Nothing but *.md is touched.
if [ -d "${prefix}/share/doc/docs" ] && [ ! -L "${prefix}/share/doc/docs" ]; then
    find "${prefix}/share/doc/docs" -type f -name '*.md' -exec rm -f -- {} +
fi
if [ -d "${src}/docs" ]; then
    (cd -- "${src}" && find docs -type f -name '*.md') | while IFS= read -r doc; do
        mkdir -p -- "${prefix}/share/doc/$(dirname -- "${doc}")"
        put "${src}/${doc}" "${prefix}/share/doc/${doc}" 644
    done
fi

# The service files name /opt/mrav2-connector; point them at this prefix. A prefix
# with characters that would need quoting in a unit file is left to the operator.
rewrite=yes
case "${prefix}" in
    *[!A-Za-z0-9._/+-]*) rewrite=no ;;
esac
for unit in "${src}"/systemd/*.service "${src}"/launchd/*.plist; do
    [ -f "${unit}" ] || continue
    case "${unit}" in
        *.service) dest=${prefix}/share/systemd/$(basename -- "${unit}") ;;
        *) dest=${prefix}/share/launchd/$(basename -- "${unit}") ;;
    esac
    if [ "${rewrite}" = yes ]; then
        sed "s|${DEFAULT_PREFIX}/|${prefix}/|g" "${unit}" >"${dest}.new.$$"
        chmod 644 "${dest}.new.$$"
        mv -f -- "${dest}.new.$$" "${dest}"
    else
        put "${unit}" "${dest}" 644
    fi
done
if [ "${rewrite}" = no ]; then
    printf 'install.sh: note: %s contains characters that need quoting in unit files;\n' "${prefix}" >&2
    printf '  the files in %s/share still name %s: edit them before use\n' "${prefix}" "${DEFAULT_PREFIX}" >&2
fi

# Marks the directory as an installation for uninstall.sh, which refuses to remove
# anything from a directory without it. It stays until uninstall.sh --purge.
printf 'mrav2-syslog-connector installation\nversion=%s\nprefix=%s\n' "${version}" "${prefix}" \
    >"${prefix}/.mrav2-connector"
chmod 644 "${prefix}/.mrav2-connector"

# Configs may hold an API key: never overwrite one, and keep them private.
created_config=no
if [ ! -e "${prefix}/config.ini" ]; then
    (umask 077 && cp -- "${src}/config.ini.example" "${prefix}/config.ini")
    created_config=yes
fi
for config in "${prefix}"/*.ini; do
    [ -f "${config}" ] || continue
    chmod 600 "${config}"
done

if [ -n "${owner}" ]; then
    chown -R -- "${owner}" "${prefix}/logs" "${prefix}/state"
    for config in "${prefix}"/*.ini; do
        if [ -f "${config}" ]; then chown -- "${owner}" "${config}"; fi
    done
fi

b=${prefix}/bin
if [ "${upgrade}" = yes ]; then
    echo "Upgraded ${prefix} to ${version}."
    running=
    for pid_file in "${prefix}"/state/*.pid; do
        [ -f "${pid_file}" ] || continue
        running="${running} $(basename -- "${pid_file}" .pid)"
    done
    if [ -n "${running}" ]; then
        echo "Instances with a pid file (restart each to run the new version):${running}"
        echo "  ${b}/restart-connector.sh ${prefix}/<name>.ini"
    fi
else
    echo "Installed ${version} in ${prefix}."
fi
if [ "${created_config}" = yes ]; then
    echo "Created ${prefix}/config.ini from the example (mode 600)."
else
    echo "Kept the existing ${prefix}/config.ini."
fi
cat <<EOF

Next steps:
  1. Edit the config: set [lookout] entity_name, api_domain and api_key (or
     api_key_file), and the [syslog] destination:
       ${prefix}/config.ini
  2. Check it (add --probe to also try the API and the syslog server):
       ${b}/${BINARY_NAME} check-config --config ${prefix}/config.ini
  3. Start it, and see its state and per-tenant position:
       ${b}/start-connector.sh
       ${b}/status-connector.sh
     More instances: copy the example to ${prefix}/<name>.ini (chmod 600) and pass
     that path to each script. Logs: ${prefix}/logs/<name>.log.
     After editing a config: ${b}/reload-connector.sh [<name>.ini] applies it
     without a restart.
  As a service instead: systemd units in ${prefix}/share/systemd/, a launchd job in
  ${prefix}/share/launchd/ (see ${prefix}/share/doc/docs/operations.md,
  "Running as a service").
  Monitoring: a Grafana dashboard and Prometheus alerting rules in
  ${prefix}/share/monitoring/ (see operations.md, "Dashboards and alerts").
  Uninstall: ${prefix}/uninstall.sh (keeps configs and state; --purge removes them).
EOF
