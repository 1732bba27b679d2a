#!/bin/sh
#
# package.sh: build the release tarball.
#
#   dist/mrav2-syslog-connector-<version>-<target>.tar.gz   (+ .sha256)
#
# <version> comes from Cargo.toml, <target> is the host triple of `rustc -vV`. The
# archive holds one directory of the same name with:
#
#   install.sh uninstall.sh README.md CHANGELOG.md LICENSE config.ini.example
#   bin/mrav2-syslog-connector bin/{start,stop,status,reload,restart}-connector.sh bin/connector-lib.sh
#   systemd/mrav2-connector.service systemd/mrav2-connector@.service
#   launchd/com.lookout.mrav2-connector.plist
#   monitoring/grafana-dashboard.json monitoring/prometheus-rules.yml
#   docs/**.md   every Markdown file that git tracks under docs/, same tree (docs/formats/,
#                docs/receivers/, ...), so that README.md's links into docs/ resolve
#
# Files are mode 644 (755 for programs), directories 755.
#
# The archive is reproducible: the same tree gives the same names, order, modes,
# owners and times (sorted, root:root numeric, mtime = $SOURCE_DATE_EPOCH or the last
# commit's time, gzip without name/time), so only a different binary changes it.
#
# Environment:
#   MRAV2_PACKAGE_PROFILE  release (default) or debug. debug skips the optimised build
#                          and compresses fast (for tests and CI), and names the
#                          archive ...-debug.tar.gz.
#   MRAV2_PACKAGE_BINARY   package this already built binary instead of running cargo
#                          (the tests hand over the binary they test). It must be built
#                          from this tree for the host, with the profile named above.
#   MRAV2_PACKAGE_DIST     output directory (default: <repo>/dist)
#   CARGO_TARGET_DIR       reused as cargo does (an existing build is not redone)
#   SOURCE_DATE_EPOCH      timestamp of every archive entry (default: last commit time)
#   CARGO, RUSTC           the tools to use (default: cargo, rustc on PATH)
#
# Prints the path of the archive as its last line of standard output.
set -eu

die() {
    printf 'package.sh: %s\n' "$*" >&2
    exit 1
}

# A relative MRAV2_PACKAGE_BINARY is relative to the caller's directory, not to ${root}.
case "${MRAV2_PACKAGE_BINARY-}" in
    '' | /*) ;;
    *) MRAV2_PACKAGE_BINARY=$(pwd -P)/${MRAV2_PACKAGE_BINARY} ;;
esac
root=$(cd -- "$(dirname -- "$0")/.." && pwd -P)
cd -- "${root}"
cargo=${CARGO:-cargo}
rustc=${RUSTC:-rustc}
profile=${MRAV2_PACKAGE_PROFILE:-release}
dist=${MRAV2_PACKAGE_DIST:-${root}/dist}
name=mrav2-syslog-connector

# GNU tar is needed for --sort and --owner/--mtime (on macOS: brew install gnu-tar).
tar=tar
if ! tar --version 2>/dev/null | grep -q 'GNU tar'; then
    command -v gtar >/dev/null 2>&1 || die "GNU tar is required (macOS: brew install gnu-tar)"
    tar=gtar
fi
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum -- "$1"; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 -- "$1"; }
else
    die "sha256sum or shasum is required"
fi

# The version of [package], not of some dependency table further down.
version=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && /^version[[:space:]]*=/ {
        sub(/^version[[:space:]]*=[[:space:]]*"/, ""); sub(/".*/, ""); print; exit
    }' Cargo.toml)
[ -n "${version}" ] || die "no version in the [package] section of Cargo.toml"
target=$("${rustc}" -vV | sed -n 's/^host: //p')
[ -n "${target}" ] || die "cannot read the host triple from '${rustc} -vV'"

case "${profile}" in
    release)
        suffix=
        level=9
        ;;
    debug)
        suffix=-debug
        # A debug binary is large and only for tests: compress it fast.
        level=1
        ;;
    *) die "MRAV2_PACKAGE_PROFILE must be release or debug, not '${profile}'" ;;
esac
if [ -n "${MRAV2_PACKAGE_BINARY-}" ]; then
    binary=${MRAV2_PACKAGE_BINARY}
    if [ ! -f "${binary}" ] || [ ! -x "${binary}" ]; then
        die "MRAV2_PACKAGE_BINARY=${binary} is not an executable file: build it first or unset it"
    fi
else
    case "${profile}" in
        release) "${cargo}" build --release --locked --bin "${name}" >&2 ;;
        debug) "${cargo}" build --locked --bin "${name}" >&2 ;;
    esac
    target_dir=${CARGO_TARGET_DIR:-$("${cargo}" metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
    [ -n "${target_dir}" ] || die "cannot find cargo's target directory"
    case "${target_dir}" in
        /*) ;;
        *) target_dir=${root}/${target_dir} ;;
    esac
    binary=${target_dir}/${profile}/${name}
    [ -x "${binary}" ] || die "the build did not produce ${binary}"
fi

if [ -z "${SOURCE_DATE_EPOCH-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "${root}" log -1 --format=%ct 2>/dev/null) ||
        die "not a git checkout: set SOURCE_DATE_EPOCH to the release's timestamp"
fi
case "${SOURCE_DATE_EPOCH}" in
    '' | *[!0-9]*) die "SOURCE_DATE_EPOCH must be seconds since 1970, not '${SOURCE_DATE_EPOCH}'" ;;
esac

for f in README.md CHANGELOG.md LICENSE config.ini.example; do
    [ -f "${root}/${f}" ] || die "${f} is missing from ${root}: it belongs in the tarball"
done

# The operator reference: the Markdown files that git tracks under docs/ (a draft that
# is not committed stays out). Outside a git checkout, such as an exported source tree,
# which holds only tracked files, every *.md under docs/ is taken.
if git -C "${root}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    docs=$(git -C "${root}" -c core.quotePath=false ls-files -- 'docs/*.md') ||
        die "git ls-files failed in ${root}: cannot list the docs to ship"
else
    docs=$(cd -- "${root}" && find docs -type f -name '*.md' | LC_ALL=C sort)
fi
[ -n "${docs}" ] || die "no docs/*.md in ${root}: the tarball ships the operator reference"
# These names are split on white space here and read line by line by install.sh: keep
# them plain.
odd=$(printf '%s\n' "${docs}" | LC_ALL=C grep -v -x -e '[A-Za-z0-9._/-]*' || true)
[ -z "${odd}" ] ||
    die "$(printf '%s' "${odd}" | head -n 1): a doc's path may hold only letters, digits and . _ - / (rename it)"
for doc in ${docs}; do
    [ -f "${root}/${doc}" ] || die "${doc} is tracked by git but missing from ${root}: check it out again"
done

base=${name}-${version}-${target}${suffix}
mkdir -p -- "${dist}"
stage=$(mktemp -d "${dist}/.stage.XXXXXX")
trap 'rm -rf -- "${stage}"' EXIT
top=${stage}/${base}

# Every mode is set here, so the archive does not depend on the builder's umask or on
# how git checked the files out.
put() {
    mkdir -p -- "$(dirname -- "${top}/$2")"
    cp -- "${root}/$1" "${top}/$2"
    chmod "$3" "${top}/$2"
}
mkdir -p -- "${top}"
cp -- "${binary}" "${top}/${name}.tmp"
mkdir -p -- "${top}/bin"
mv -- "${top}/${name}.tmp" "${top}/bin/${name}"
chmod 755 "${top}/bin/${name}"
put packaging/install.sh install.sh 755
put packaging/uninstall.sh uninstall.sh 755
for s in start-connector.sh stop-connector.sh status-connector.sh reload-connector.sh restart-connector.sh; do
    put "scripts/${s}" "bin/${s}" 755
done
put scripts/connector-lib.sh bin/connector-lib.sh 644
put config.ini.example config.ini.example 644
put systemd/mrav2-connector.service systemd/mrav2-connector.service 644
put systemd/mrav2-connector@.service systemd/mrav2-connector@.service 644
put launchd/com.lookout.mrav2-connector.plist launchd/com.lookout.mrav2-connector.plist 644
for m in grafana-dashboard.json prometheus-rules.yml; do
    put "packaging/monitoring/${m}" "monitoring/${m}" 644
done
for doc in README.md CHANGELOG.md LICENSE ${docs}; do
    put "${doc}" "${doc}" 644
done
find "${top}" -type d -exec chmod 755 {} +

archive=${dist}/${base}.tar.gz
(
    cd -- "${stage}"
    LC_ALL=C "${tar}" --sort=name --format=gnu \
        --owner=0 --group=0 --numeric-owner \
        --mtime="@${SOURCE_DATE_EPOCH}" \
        --no-acls --no-xattrs --no-selinux \
        -cf - "${base}"
) | gzip -n "-${level}" >"${archive}.tmp"
mv -f -- "${archive}.tmp" "${archive}"
(
    cd -- "${dist}"
    sha256 "${base}.tar.gz" >"${base}.tar.gz.sha256.tmp"
    mv -f -- "${base}.tar.gz.sha256.tmp" "${base}.tar.gz.sha256"
)
printf 'package.sh: wrote %s and %s.sha256\n' "${archive}" "${archive}" >&2
printf '%s\n' "${archive}"
