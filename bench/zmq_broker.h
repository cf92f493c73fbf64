/* bench/zmq_broker.h - the thread pool's message pattern in raw libzmq. */
#ifndef TR_BENCH_ZMQ_BROKER_H
#define TR_BENCH_ZMQ_BROKER_H

/* Tasks per second: n trivial tasks through a broker thread and workers
 * thread workers, window in flight (see zmq_broker.c). */
double zb_rate(long n, int workers, int window);

#endif
