#!/bin/sh
#
# restart-connector.sh [CONFIG]
#
# Stops the connector instance for CONFIG (if it runs) and starts it again. The new
# process resumes from the position the old one saved at shutdown.
#
# Exit status: that of start-connector.sh, or of stop-connector.sh if it failed.
set -eu

# Our own directory, following symbolic links (e.g. from /usr/local/bin).
dir=$(dirname -- "$(readlink -f -- "$0")")

"${dir}/stop-connector.sh" "$@"
exec "${dir}/start-connector.sh" "$@"
