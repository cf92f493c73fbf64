/* bench/bench_tell.h - the troupe side of the tell-throughput benchmarks
 * (bench_core between thread actors, bench_process between process
 * actors): a source actor tells a sink actor 64-byte messages. */
#ifndef TR_BENCH_TELL_H
#define TR_BENCH_TELL_H

#include "troupe.h"

/* Messages a second from a source actor to a sink actor, both in mode,
 * msgs messages. */
double bt_throughput(tr_node_t *node, tr_mode_t mode, long msgs);

#endif
