#!/bin/sh
# Never finishes on its own, and shrugs off SIGTERM: only SIGKILL ends it (for timeouts and stops).
trap 'echo "hang: ignoring TERM"' TERM
echo "hang: started"
while :; do sleep 1; done
