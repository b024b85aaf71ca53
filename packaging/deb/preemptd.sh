#!/bin/sh
# /usr/bin/preemptd: the agent on its own Node.js runtime (Debian's node may be older than 24).
exec /opt/preemptd/bin/node /opt/preemptd/lib/preemptd.mjs "$@"
