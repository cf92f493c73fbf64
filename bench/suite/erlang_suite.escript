#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% bench/suite/erlang_suite.escript - the suite's workloads on Erlang/OTP.
%%
%% Plain processes, spawn and !, selective receive: the way the Erlang
%% book writes actors, no OTP behaviours in the timed paths (a gen_server
%% call adds a monitor and a reference per message).
%%
%%   --mode local (system "erlang"): every process in one BEAM; messages
%%       are copies between heaps of one OS process.
%%   --mode dist (system "erlang-dist"): a second BEAM (peer, started
%%       here over loopback TCP with Erlang distribution) hosts the actors
%%       the driver talks to, so that every message of pingpong, counting,
%%       fjthrput, pool and mutex crosses between OS processes, and ring
%%       and big alternate their actors between the two nodes. This is
%%       the cross-process comparison for troupe's process actors.
%%
%% Same command line and RESULT lines as every program of the suite
%% (bench/suite/suite.h); workloads and checks: bench/suite/README.md.
-module(erlang_suite).
-mode(compile).
-export([main/1, pong/0, counter/1, ring_actor/1, big_wait/2, worker/0,
         idle/0]).

main(Args) ->
    {Mode, Rounds, Specs} = parse(Args, local, 1, []),
    {Sys, Peer} = start(Mode),
    try
        [run(Sys, Peer, Spec) || Spec <- Specs, _ <- lists:seq(1, Rounds)]
    after
        stop(Peer)
    end,
    halt(0).

parse(["--mode", "local" | T], _, R, S) -> parse(T, local, R, S);
parse(["--mode", "dist" | T], _, R, S) -> parse(T, dist, R, S);
parse(["--rounds", N | T], M, _, S) -> parse(T, M, list_to_integer(N), S);
parse([Spec | T], M, R, S) ->
    [Name | Rest] = string:split(Spec, ":"),
    KVs = [begin [K, V] = string:split(KV, "="), {K, list_to_integer(V)} end
           || KV <- string:lexemes(lists:flatten(Rest), ","), KV =/= ""],
    parse(T, M, R, [{Name, KVs} | S]);
parse([], M, R, S) -> {M, R, lists:reverse(S)}.

get(KVs, K) ->
    case lists:keyfind(K, 1, KVs) of
        {_, V} when V >= 1 -> V;
        _ -> fail("parameter ~s missing or below 1", [K])
    end.

fail(Fmt, Args) ->
    io:format(standard_error, "erlang_suite: " ++ Fmt ++ "~n", Args),
    halt(1).

%% dist: this node and a peer, both on loopback; the peer gets this
%% module's code (an escript's module is in memory only).
start(local) -> {"erlang", node()};
start(dist) ->
    os:cmd("epmd -daemon"),
    Name = list_to_atom("suite" ++ os:getpid() ++ "@127.0.0.1"),
    {ok, _} = net_kernel:start([Name, longnames]),
    {ok, Peer, Node} = peer:start_link(#{
        name => "suitepeer" ++ os:getpid(), host => "127.0.0.1",
        longnames => true, connection => 0}),
    {ok, [_ | _] = Sections} =
        escript:extract(escript:script_name(), [compile_source]),
    {source, Beam} = lists:keyfind(source, 1, Sections),
    {module, ?MODULE} = erpc:call(Node, code, load_binary,
                                  [?MODULE, "erlang_suite", Beam]),
    {"erlang-dist", {Peer, Node}}.

stop({Peer, _Node}) -> peer:stop(Peer);
stop(_) -> ok.

%% Where actor i runs: here, or in dist mode on the peer for the "far"
%% ones.
far({_, Node}) -> Node;
far(Local) -> Local.
alternate(Peer, I) when I rem 2 =:= 1 -> far(Peer);
alternate(_, _) -> node().

now_s() -> erlang:monotonic_time(nanosecond) / 1.0e9.

result(Name, Sys, Secs, Check) ->
    io:format("RESULT ~s ~s ~.6f ~s~n", [Name, Sys, Secs, Check]).

run(Sys, Peer, {Name, KV}) ->
    case workload(Name, KV, Peer, Sys) of
        {Number, Check} -> result(Name, Sys, Number, Check);
        skip -> ok
    end.

%% ---------------------------------------------------------------------

workload("pingpong", KV, Peer, _) ->
    N = get(KV, "n"),
    Pong = spawn(far(Peer), ?MODULE, pong, []),
    T0 = now_s(),
    Got = ping(Pong, N, 0),
    Secs = now_s() - T0,
    Pong ! stop,
    {Secs, integer_to_list(Got)};
workload("counting", KV, Peer, _) ->
    N = get(KV, "n"),
    Counter = spawn(far(Peer), ?MODULE, counter, [0]),
    Self = self(),
    T0 = now_s(),
    spawn_link(fun() -> Self ! {count, produce(Counter, N)} end),
    receive {count, C} -> ok end,
    Secs = now_s() - T0,
    Counter ! stop,
    {Secs, integer_to_list(C)};
workload("fjthrput", KV, Peer, _) ->
    K = get(KV, "k"), N = get(KV, "n"),
    Ws = [spawn(far(Peer), ?MODULE, counter, [0]) || _ <- lists:seq(1, K)],
    T0 = now_s(),
    fork(Ws, N),
    Sum = lists:sum([count(W) || W <- Ws]),
    Secs = now_s() - T0,
    [W ! stop || W <- Ws],
    {Secs, integer_to_list(Sum)};
workload("ring", KV, Peer, _) ->
    R = get(KV, "r"), T = get(KV, "t"),
    As = list_to_tuple([spawn(alternate(Peer, I), ?MODULE, ring_actor,
                              [self()]) || I <- lists:seq(0, R - 1)]),
    [element(I + 1, As) ! {link, element((I + 1) rem R + 1, As), I}
     || I <- lists:seq(0, R - 1)],
    T0 = now_s(),
    element(1, As) ! {tok, T, 0},
    receive {done, Hops, Pos} -> ok end,
    Secs = now_s() - T0,
    [A ! stop || A <- tuple_to_list(As)],
    {Secs, integer_to_list(Hops) ++ ":" ++ integer_to_list(Pos)};
workload("big", KV, Peer, _) ->
    A = get(KV, "a"), P = get(KV, "p"),
    As = list_to_tuple([spawn(alternate(Peer, I), ?MODULE, big_wait,
                              [self(), I]) || I <- lists:seq(0, A - 1)]),
    [X ! {init, As, P} || X <- tuple_to_list(As)],
    T0 = now_s(),
    [X ! go || X <- tuple_to_list(As)],
    Sum = lists:sum([receive {done, V} -> V end || _ <- lists:seq(1, A)]),
    Secs = now_s() - T0,
    [X ! stop || X <- tuple_to_list(As)],
    {Secs, integer_to_list(Sum)};
workload("pool", KV, Peer, _) ->
    W = get(KV, "w"), N = get(KV, "n"),
    Ws = list_to_tuple([spawn(far(Peer), ?MODULE, worker, [])
                        || _ <- lists:seq(1, W)]),
    T0 = now_s(),
    Sum = pool(Ws, 0, N, 0, 0),
    Secs = now_s() - T0,
    [X ! stop || X <- tuple_to_list(Ws)],
    {Secs, integer_to_list(Sum)};
workload("mutex", KV, Peer, _) ->
    T = get(KV, "t"), N = get(KV, "n"),
    Counter = spawn(far(Peer), ?MODULE, counter, [0]),
    Self = self(),
    T0 = now_s(),
    [spawn_link(fun() -> produce(Counter, N), Self ! synced end)
     || _ <- lists:seq(1, T)],
    [receive synced -> ok end || _ <- lists:seq(1, T)],
    Total = count(Counter),
    Secs = now_s() - T0,
    Counter ! stop,
    {Secs, integer_to_list(Total)};
workload("memory", KV, Peer, _) when is_atom(Peer) ->
    N = get(KV, "n"),
    First = spawn(?MODULE, idle, []),
    garbage_collect(),
    Before = rss_kib(),
    Ps = [spawn(?MODULE, idle, []) || _ <- lists:seq(1, N)],
    Kib = rss_kib() - Before,
    Alive = length([P || P <- Ps, is_process_alive(P)]),
    [P ! stop || P <- [First | Ps]],
    {float(Kib), integer_to_list(Alive)};
workload(Name, _, _, Sys) ->
    io:format("SKIP ~s ~s (not written for this mode)~n", [Name, Sys]),
    skip.

%% ---------------------------------------------------------------------

ping(_, 0, Got) -> Got;
ping(Pong, N, Got) ->
    Pong ! {ping, self()},
    receive pong -> ping(Pong, N - 1, Got + 1) end.

pong() ->
    receive
        {ping, From} -> From ! pong, pong();
        stop -> ok
    end.

counter(C) ->
    receive
        inc -> counter(C + 1);
        {get, From} -> From ! {count, C}, counter(C);
        stop -> ok
    end.

count(Counter) ->
    Counter ! {get, self()},
    receive {count, C} -> C end.

%% n incs then a get: the counter has seen this sender's incs by then.
produce(Counter, 0) -> count(Counter);
produce(Counter, N) -> Counter ! inc, produce(Counter, N - 1).

fork(_, 0) -> ok;
fork(Ws, N) -> [W ! inc || W <- Ws], fork(Ws, N - 1).

%% a ring actor learns its neighbour first (tokens wait in the mailbox
%% meanwhile: selective receive).
ring_actor(Driver) ->
    receive {link, Next, Idx} -> ring_loop(Driver, Next, Idx) end.

ring_loop(Driver, Next, Idx) ->
    receive
        {tok, 0, Hops} ->
            Driver ! {done, Hops, Idx}, ring_loop(Driver, Next, Idx);
        {tok, Left, Hops} ->
            Next ! {tok, Left - 1, Hops + 1}, ring_loop(Driver, Next, Idx);
        stop -> ok
    end.

%% big: the same pseudo-random peers as every other system (suite.h).
big_wait(Driver, Idx) ->
    receive {init, Peers, P} -> ok end,
    receive go -> ok end,
    big_loop(big_ping({Driver, Idx, Peers, P, 0, Idx + 1})).

big_ping({Driver, Idx, Peers, P, Pongs, Rng}) ->
    Rng1 = (Rng * 6364136223846793005 + 1442695040888963407)
        band 16#FFFFFFFFFFFFFFFF,
    N = tuple_size(Peers),
    To = (Idx + 1 + (Rng1 bsr 33) rem (N - 1)) rem N,
    element(To + 1, Peers) ! {ping, self()},
    {Driver, Idx, Peers, P, Pongs, Rng1}.

big_loop({Driver, Idx, Peers, P, Pongs, Rng} = S) ->
    receive
        {ping, From} -> From ! pong, big_loop(S);
        pong when Pongs + 1 < P ->
            big_loop(big_ping({Driver, Idx, Peers, P, Pongs + 1, Rng}));
        pong ->
            Driver ! {done, Pongs + 1},
            big_loop({Driver, Idx, Peers, P, Pongs + 1, Rng});
        stop -> ok
    end.

worker() ->
    receive
        {task, From, X} -> From ! {result, 2 * X + 1}, worker();
        stop -> ok
    end.

%% at most 256 tasks in flight, dealt round robin.
pool(_, N, N, 0, Sum) -> Sum;
pool(Ws, Sent, N, InFlight, Sum) when Sent < N, InFlight < 256 ->
    element(Sent rem tuple_size(Ws) + 1, Ws) ! {task, self(), Sent},
    pool(Ws, Sent + 1, N, InFlight + 1, Sum);
pool(Ws, Sent, N, InFlight, Sum) ->
    receive {result, V} -> pool(Ws, Sent, N, InFlight - 1, Sum + V) end.

idle() -> receive stop -> ok end.

rss_kib() ->
    {ok, Statm} = file:read_file("/proc/self/statm"),
    [_, Rss | _] = string:lexemes(binary_to_list(Statm), " \n"),
    list_to_integer(Rss) * 4.
