#!/usr/bin/env bash
#
# test.sh [ARGS...]: the whole test suite, on a fresh Debian or Ubuntu machine that has
# the Rust toolchain and a C compiler.
#
# First it makes sure the system has what the tests use, installing the Debian packages
# of whatever is missing:
#
#   - rsyslog: rsyslogd, the receiver the integration tests start on loopback
#   - rsyslog-gnutls: its TLS driver (TLS and mutual-TLS receivers)
#   - rsyslog-relp: its RELP modules, installed ahead of the RELP transport's tests
#   - shellcheck: checks every shell script of the repository
#   - systemd: systemd-analyze verifies the units
#   - prometheus: promtool checks the alerting rules and a scrape of /metrics (the
#     tests run promtool only; the Prometheus server is not used)
#   - git: the repository checks list tracked files; packaging reads the last
#     commit's time
#
# Then it runs `cargo test --locked ARGS...` from the repository root. When everything
# is present nothing is installed. Installing needs root and apt-get; without them the
# script prints the command that installs what is missing (on standard output, alone)
# and exits 1 before building anything. .ci/run runs this same script.
set -euo pipefail

say() {
    printf 'test.sh: %s\n' "$*" >&2
}

# The first of the given files that exists, or nothing.
first_file() {
    for f in "$@"; do
        if [ -e "${f}" ]; then
            printf '%s\n' "${f}"
            return 0
        fi
    done
    return 1
}

# True if the rsyslog module "$1" (a file name) is installed where rsyslogd loads from.
rsyslog_module() {
    first_file /usr/lib/rsyslog/"$1" /usr/lib/*/rsyslog/"$1" /usr/lib64/rsyslog/"$1" \
        /usr/local/lib/rsyslog/"$1" >/dev/null
}

# True if "$1" is a command, also where a non-root PATH leaves out the sbin directories
# (the tests look there too).
tool() {
    command -v "$1" >/dev/null 2>&1 ||
        first_file /usr/sbin/"$1" /sbin/"$1" /usr/local/sbin/"$1" >/dev/null
}

# Sets MISSING to the packages whose part the tests use is not installed.
find_missing() {
    MISSING=()
    tool rsyslogd || MISSING+=(rsyslog)
    rsyslog_module lmnsd_gtls.so || MISSING+=(rsyslog-gnutls)
    rsyslog_module imrelp.so || MISSING+=(rsyslog-relp)
    tool shellcheck || MISSING+=(shellcheck)
    tool systemd-analyze || MISSING+=(systemd)
    tool promtool || MISSING+=(prometheus)
    tool git || MISSING+=(git)
}

find_missing
if ((${#MISSING[@]})); then
    install="apt-get update && apt-get install -y --no-install-recommends ${MISSING[*]}"
    if ! command -v apt-get >/dev/null 2>&1; then
        say "the tests need these Debian packages, which are missing: ${MISSING[*]}"
        say "there is no apt-get here: this script installs on Debian and Ubuntu only."
        say "install the equivalent packages of your system, or on Debian/Ubuntu run:"
        printf "sudo sh -c '%s'\n" "${install}"
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        say "the tests need these packages, which are missing: ${MISSING[*]}"
        say "installing them needs root; run this, then run scripts/test.sh again:"
        printf "sudo sh -c '%s'\n" "${install}"
        exit 1
    fi
    say "installing ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
    # Debian's rsyslog may start a system rsyslogd; the tests start their own instances
    # on free loopback ports and need none.
    installed=("${MISSING[@]}")
    find_missing
    if ((${#MISSING[@]})); then
        say "apt-get installed ${installed[*]}, yet these are still missing: ${MISSING[*]}"
        exit 1
    fi
else
    say "rsyslog, rsyslog-gnutls, rsyslog-relp, shellcheck, systemd, prometheus and git are present"
fi

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is not on PATH: install the Rust toolchain (https://rustup.rs), then run this again"
    exit 1
fi
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
exec cargo test --locked "$@"
