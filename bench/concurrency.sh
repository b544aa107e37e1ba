#!/bin/bash
# Usage: bench/concurrency.sh [SRC]  (NS="4 8 16" by default, DELAY=0 ms per request at the
# grid, as `grid --delay-ms`; needs npm run build)
# Small files: ours at concurrency N vs N parallel bare PUTs, same grid, interleaved.
cd "$(dirname "$0")/.."
G=$(mktemp -d)
node dist/bin/lafs-backup.js grid --port 0 --delay-ms ${DELAY:-0} > $G/grid.txt 2>&1 &
GP=$!
sleep 2
URL=$(grep -o 'http[^ ]*' $G/grid.txt | head -1)
SRC=${1:-/tmp/lafs-backup-bench/small/src}  # made by bench (b)
for N in ${NS:-4 8 16}; do
  printf "source: {path: $SRC, queue: {path: $G/q.txt}, entry_cache: {path: $G/c.db}}\ndestination: {url: '$URL'}\noperation: {concurrency: $N}\n" > $G/c$N.yaml
done
for rep in 1 2 3; do
  for N in ${NS:-4 8 16}; do
    /usr/bin/time -f "%e" -o $G/t node bench/put-loop.js $URL $SRC $N >/dev/null 2>&1; a=$(cat $G/t)
    rm -f $G/c.db* $G/q.txt
    /usr/bin/time -f "%e" -o $G/t node dist/bin/lafs-backup.js -c $G/c$N.yaml backup >/dev/null 2>&1; b=$(cat $G/t)
    echo "N=$N put-loop=$a ours=$b"
  done
done
kill $GP
