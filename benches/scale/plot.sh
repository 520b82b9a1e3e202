#!/usr/bin/env bash
# The growth curves of issue 24 as one PNG (gnuplot, Debian package gnuplot-nox):
# target/scale/search.tsv (and search-flat.tsv, before shards) from benches/scale/search.sh
# and target/scale/turns.tsv from benches/scale/turns.sh → docs/scale-growth.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v gnuplot > /dev/null || { echo "benches/scale/plot.sh needs gnuplot: apt-get install -y gnuplot-nox" >&2; exit 2; }
S=target/scale/search.tsv
F=target/scale/search-flat.tsv
T=target/scale/turns.tsv
[[ -f $F ]] || F=$S
OUT=${OUT:-docs/scale-growth.png}
# turns rows by backend, stored turns > 0 plotted at their count, 0 at 1e4 (log axis)
grep -P '^sqlite\t' "$T" | awk -F'\t' '{x = $2 > 0 ? $2 : 1e4; sub("ms", "", $4); print x, $3, $4}' > target/scale/turns-sqlite.dat || true
grep -P '^postgres\t' "$T" | awk -F'\t' '{x = $2 > 0 ? $2 : 1e4; split($4, p, "/"); sub("ms", "", p[1]); sub("ms", "", p[2]); print x, $3, (p[1] + 0 > p[2] + 0 ? p[1] : p[2])}' > target/scale/turns-pg.dat || true
gnuplot <<GP
set terminal pngcairo size 1400,1000 font ",11"
set output "$OUT"
set multiplot layout 2,2 title "yidi as its work grows (issue 24; one 2-core machine, each point one run)"
set logscale x
set key top left
set grid
set datafile separator "\t"
set title "search per query (µs)"
set xlabel "regions"
set logscale y
plot "$S" using 1:9 every ::1 with linespoints title "median, evaluation questions", \
     "$S" using 1:11 every ::1 with linespoints title "median, region questions", \
     "$S" using 1:12 every ::1 with linespoints title "p99, region questions", \
     "$F" using 1:9 every ::1 with linespoints dt 2 title "median before (one index)", \
     60 with lines lc rgb "red" title "target 60 µs"
set title "start-up (ms)"
plot "$S" using 1:5 every ::1 with linespoints title "yidi search (no query)", \
     "$S" using 1:7 every ::1 with linespoints title "yidi serve to /readyz", \
     "$F" using 1:5 every ::1 with linespoints dt 2 title "yidi search before", \
     3000 with lines lc rgb "red" title "target 3 s"
unset logscale y
set title "memory (MB RSS)"
plot "$S" using 1:6 every ::1 with linespoints title "yidi search at start", \
     "$S" using 1:8 every ::1 with linespoints title "yidi serve, every shard built", \
     "$F" using 1:6 every ::1 with linespoints dt 2 title "yidi search before", \
     400 with lines lc rgb "red" title "target 400 MB"
set datafile separator whitespace
set title "turns with stored history (16 conversations)"
set xlabel "stored turns (0 plotted at 10^4)"
set ylabel "turns/s"
set yrange [0:*]
set y2label "p99 ms"
set y2tics
set logscale y2
plot "target/scale/turns-sqlite.dat" using 1:2 with linespoints title "SQLite turns/s", \
     "target/scale/turns-pg.dat" using 1:2 with linespoints title "PostgreSQL, 2 replicas, turns/s", \
     "target/scale/turns-sqlite.dat" using 1:3 axes x1y2 with linespoints dt 2 title "SQLite p99 ms", \
     "target/scale/turns-pg.dat" using 1:3 axes x1y2 with linespoints dt 2 title "PostgreSQL p99 ms"
unset multiplot
GP
echo "wrote $OUT" >&2
