#!/bin/sh
# Fails until it has been called $1 times (counted in $2), then succeeds: a stand-in for a flaky agent.
n=$(cat "$2" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$2"
if [ "$n" -lt "$1" ]; then
  echo "flaky: attempt $n fails"
  exit 3
fi
echo "flaky: attempt $n succeeds"
