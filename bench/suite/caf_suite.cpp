// bench/suite/caf_suite.cpp - the suite's workloads on the C++ Actor
// Framework (system "caf"; Debian's libcaf-dev, CAF 0.17).
//
// Written the way CAF's own examples are: event-based actors spawned from
// functions returning a behavior, messages tagged with atoms, request /
// response (with delegate) for answers, a scoped_actor as the driver, and
// actor_pool for the pool. CAF schedules its actors cooperatively on a
// work-stealing pool of one thread per core, where troupe gives each actor
// an OS thread. Workloads and checks: bench/suite/README.md.
#include <caf/all.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "suite.h"

using namespace caf;

using go_atom = atom_constant<atom("go")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using inc_atom = atom_constant<atom("inc")>;
using get_atom = atom_constant<atom("get")>;
using tok_atom = atom_constant<atom("tok")>;
using done_atom = atom_constant<atom("done")>;
using link_atom = atom_constant<atom("link")>;

static const char *sys_name = "caf";

// ---------------------------------------------------------------------
// ping-pong

behavior pong_actor(event_based_actor *self) {
  return {[=](ping_atom) {
    self->send(actor_cast<actor>(self->current_sender()), pong_atom::value);
  }};
}

// On go: n pings to pong, one at a time; answers the pongs it got.
behavior ping_actor(event_based_actor *self, actor pong, int64_t n) {
  auto got = std::make_shared<int64_t>(0);
  auto rp = std::make_shared<response_promise>();
  return {
      [=](go_atom) {
        *rp = self->make_response_promise();
        self->send(pong, ping_atom::value);
      },
      [=](pong_atom) {
        if (++*got < n)
          self->send(pong, ping_atom::value);
        else
          rp->deliver(*got);
      },
  };
}

static void pingpong(actor_system &sys, const su_spec_t *s) {
  int64_t n = su_get(s, "n"), got = 0;
  scoped_actor self{sys};
  auto pong = sys.spawn(pong_actor);
  auto ping = sys.spawn(ping_actor, pong, n);
  double t0 = su_now();
  self->request(ping, infinite, go_atom::value)
      .receive([&](int64_t v) { got = v; },
               [&](error &e) { su_die("ping: %s", to_string(e).c_str()); });
  su_result_int(s->name, sys_name, su_now() - t0, got);
  anon_send_exit(ping, exit_reason::user_shutdown);
  anon_send_exit(pong, exit_reason::user_shutdown);
}

// ---------------------------------------------------------------------
// counting, fork-join, mutex: a counter actor

behavior counter_actor(event_based_actor *) {
  auto count = std::make_shared<int64_t>(0);
  return {
      [=](inc_atom) { ++*count; },
      [=](get_atom) { return *count; },
  };
}

// On go: n incs to the counter, then hands the asker's get over to it.
behavior producer_actor(event_based_actor *self) {
  return {[=](go_atom, const actor &counter, int64_t n) {
    for (int64_t i = 0; i < n; i++)
      self->send(counter, inc_atom::value);
    return self->delegate(counter, get_atom::value);
  }};
}

static int64_t get_count(scoped_actor &self, const actor &a) {
  int64_t v = -1;
  self->request(a, infinite, get_atom::value)
      .receive([&](int64_t c) { v = c; },
               [&](error &e) { su_die("get: %s", to_string(e).c_str()); });
  return v;
}

static void counting(actor_system &sys, const su_spec_t *s) {
  int64_t n = su_get(s, "n"), count = 0;
  scoped_actor self{sys};
  auto counter = sys.spawn(counter_actor);
  auto producer = sys.spawn(producer_actor);
  double t0 = su_now();
  self->request(producer, infinite, go_atom::value, counter, n)
      .receive([&](int64_t v) { count = v; },
               [&](error &e) { su_die("go: %s", to_string(e).c_str()); });
  su_result_int(s->name, sys_name, su_now() - t0, count);
  anon_send_exit(producer, exit_reason::user_shutdown);
  anon_send_exit(counter, exit_reason::user_shutdown);
}

static void fjthrput(actor_system &sys, const su_spec_t *s) {
  long k = su_get(s, "k"), n = su_get(s, "n");
  scoped_actor self{sys};
  std::vector<actor> w;
  for (long i = 0; i < k; i++)
    w.push_back(sys.spawn(counter_actor));
  int64_t sum = 0;
  double t0 = su_now();
  for (long j = 0; j < n; j++)
    for (auto &a : w)
      self->send(a, inc_atom::value);
  for (auto &a : w)
    sum += get_count(self, a);
  su_result_int(s->name, sys_name, su_now() - t0, sum);
  for (auto &a : w)
    anon_send_exit(a, exit_reason::user_shutdown);
}

// t producers, each n incs then a get through the counter (a sync: its
// own incs are counted by then, order holding per sender); then the
// total.
static void mutex(actor_system &sys, const su_spec_t *s) {
  long t = su_get(s, "t"), n = su_get(s, "n");
  scoped_actor self{sys};
  auto counter = sys.spawn(counter_actor);
  std::vector<actor> p;
  for (long i = 0; i < t; i++)
    p.push_back(sys.spawn(producer_actor));
  double t0 = su_now();
  for (auto &a : p)
    self->send(a, go_atom::value, counter, int64_t{n});
  for (long i = 0; i < t; i++)
    self->receive([](int64_t) {});
  int64_t total = get_count(self, counter);
  su_result_int(s->name, sys_name, su_now() - t0, total);
  for (auto &a : p)
    anon_send_exit(a, exit_reason::user_shutdown);
  anon_send_exit(counter, exit_reason::user_shutdown);
}

// ---------------------------------------------------------------------
// ring

behavior ring_actor(event_based_actor *self, int64_t idx, actor driver) {
  auto next = std::make_shared<actor>();
  return {
      [=](link_atom, const actor &a) { *next = a; },
      [=](tok_atom, int64_t left, int64_t hops) {
        if (left > 0)
          self->send(*next, tok_atom::value, left - 1, hops + 1);
        else
          self->send(driver, done_atom::value, hops, idx);
      },
  };
}

static void ring(actor_system &sys, const su_spec_t *s) {
  long r = su_get(s, "r"), t = su_get(s, "t");
  scoped_actor self{sys};
  auto driver = actor_cast<actor>(self);
  std::vector<actor> a;
  for (long i = 0; i < r; i++)
    a.push_back(sys.spawn(ring_actor, int64_t{i}, driver));
  // mailboxes are FIFO: each link is in before any token can follow it
  for (long i = 0; i < r; i++)
    self->send(a[i], link_atom::value, a[(i + 1) % r]);
  int64_t hops = -1, pos = -1;
  double t0 = su_now();
  self->send(a[0], tok_atom::value, int64_t{t}, int64_t{0});
  self->receive([&](done_atom, int64_t h, int64_t p) { hops = h, pos = p; });
  double dt = su_now() - t0;
  std::string check = std::to_string(hops) + ":" + std::to_string(pos);
  su_result(s->name, sys_name, dt, check.c_str());
  for (auto &x : a)
    anon_send_exit(x, exit_reason::user_shutdown);
}

// ---------------------------------------------------------------------
// big

using peers_t = std::shared_ptr<std::vector<actor>>;

behavior big_actor(event_based_actor *self, int64_t idx, peers_t peers,
                   int64_t p, actor driver) {
  auto rng = std::make_shared<uint64_t>(uint64_t(idx) + 1);
  auto pongs = std::make_shared<int64_t>(0);
  auto next_ping = [=] {
    long to = su_big_peer(long(idx), long(peers->size()), rng.get());
    self->send((*peers)[size_t(to)], ping_atom::value);
  };
  return {
      [=](ping_atom) {
        self->send(actor_cast<actor>(self->current_sender()),
                   pong_atom::value);
      },
      [=](pong_atom) {
        if (++*pongs < p)
          next_ping();
        else
          self->send(driver, done_atom::value, *pongs);
      },
      [=](go_atom) { next_ping(); },
  };
}

static void big(actor_system &sys, const su_spec_t *s) {
  long n = su_get(s, "a"), p = su_get(s, "p");
  if (n < 2)
    su_die("big: a must be at least 2");
  scoped_actor self{sys};
  auto driver = actor_cast<actor>(self);
  auto peers = std::make_shared<std::vector<actor>>();
  for (long i = 0; i < n; i++)
    peers->push_back(
        sys.spawn(big_actor, int64_t{i}, peers, int64_t{p}, driver));
  int64_t sum = 0;
  double t0 = su_now();
  for (auto &a : *peers) // peers is complete before the first go
    self->send(a, go_atom::value);
  for (long i = 0; i < n; i++)
    self->receive([&](done_atom, int64_t v) { sum += v; });
  su_result_int(s->name, sys_name, su_now() - t0, sum);
  for (auto &a : *peers)
    anon_send_exit(a, exit_reason::user_shutdown);
  peers->clear(); // the actors hold the vector too
}

// ---------------------------------------------------------------------
// pool: an actor_pool of w workers, round robin; at most 256 tasks in
// flight.

behavior worker_actor(event_based_actor *) {
  return {[](int64_t x) { return 2 * x + 1; }};
}

static void pool(actor_system &sys, const su_spec_t *s) {
  long w = su_get(s, "w"), n = su_get(s, "n");
  scoped_actor self{sys};
  auto pool = actor_pool::make(
      sys.dummy_execution_unit(), size_t(w),
      [&] { return sys.spawn(worker_actor); }, actor_pool::round_robin());
  int64_t sum = 0, sent = 0, got = 0;
  double t0 = su_now();
  for (; sent < n && sent < 256; sent++)
    self->send(pool, sent);
  while (got < n) {
    self->receive([&](int64_t v) { sum += v; });
    got++;
    if (sent < n)
      self->send(pool, sent++);
  }
  su_result_int(s->name, sys_name, su_now() - t0, sum);
  anon_send_exit(pool, exit_reason::user_shutdown);
}

// ---------------------------------------------------------------------
// memory: n idle actors

behavior idle_actor(event_based_actor *) {
  return {[](int64_t) {}};
}

static void memory(actor_system &sys, const su_spec_t *s) {
  long n = su_get(s, "n");
  std::vector<actor> a;
  a.reserve(size_t(n));
  auto first = sys.spawn(idle_actor);
  long before = su_rss_kib();
  for (long i = 0; i < n; i++)
    a.push_back(sys.spawn(idle_actor));
  long kib = su_rss_kib() - before;
  su_result_int(s->name, sys_name, double(kib), long(a.size()));
  for (auto &x : a)
    anon_send_exit(x, exit_reason::user_shutdown);
  anon_send_exit(first, exit_reason::user_shutdown);
}

// ---------------------------------------------------------------------

int main(int argc, char **argv) {
  su_args_t args;
  su_parse_args(argc, argv, &args);
  struct {
    const char *name;
    void (*fn)(actor_system &, const su_spec_t *);
  } workloads[] = {
      {"pingpong", pingpong}, {"counting", counting}, {"fjthrput", fjthrput},
      {"ring", ring},         {"big", big},           {"pool", pool},
      {"mutex", mutex},       {"memory", memory},
  };
  actor_system_config cfg;
  actor_system sys{cfg};
  for (int i = 0; i < args.nspecs; i++) {
    bool found = false;
    for (auto &w : workloads)
      if (strcmp(w.name, args.specs[i].name) == 0) {
        found = true;
        for (int r = 0; r < args.rounds; r++) {
          w.fn(sys, &args.specs[i]);
          sys.await_all_actors_done();
        }
      }
    if (!found)
      su_die("unknown workload '%s'", args.specs[i].name);
  }
  return 0;
}
