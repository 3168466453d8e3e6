"""The harness's Python gRPC server: any clusterer's `predict` served with grpcio, as
Palmieri 2019 served scikit-learn and linfa's Python wrapper.

    python -m bench.serving.python_server WORKDIR/case.json --model model.json
        [--port P] [--cpus 0,1]

It loads the case's implementation, serves `Predict` with the centroids the harness fitted
(`load`, then `predict`, on every request's points), listens on 127.0.0.1 (on another free
port when P is taken), prints `LISTENING <port>` once it accepts requests, and serves until
it is killed. grpcio's defaults, as the article's server: a pool of 10 handler threads (the
size grpcio's own examples use), and TCP_NODELAY, which gRPC's core sets on every socket.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from concurrent import futures
from pathlib import Path

HANDLER_THREADS = 10
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """The kernel kills this process when the case's worker dies, however it dies."""
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request took effect
        sys.exit(3)


def serve(case_file: Path, model_file: Path, port: int, announce) -> None:
    import grpc
    import numpy as np

    from bench import plugins
    from bench.execution import threads
    from bench.records import Case
    from bench.scenarios import scenario_for
    from bench.serving import protocol

    case = Case.from_json(json.loads(case_file.read_text(encoding="utf-8")))
    threads.limit_environment(case.threads)
    implementation = plugins.load_plugin(case.source, case.implementation, case.model)
    threads.apply_to_frameworks(case.threads)
    scenario = scenario_for(case.scenario, case.profile, case.overrides)
    clusterer = implementation(scenario, case.seed, case.device)
    centroids = np.asarray(json.loads(model_file.read_text())["centroids"], dtype=np.float64)
    _, services = protocol.protocol()

    class Predictor(services.KMeansServicer):
        def Predict(self, request, context):
            try:
                x = protocol.points_array(request, centroids.shape[1])
            except ValueError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return protocol.labels(clusterer.predict(clusterer.load(x), centroids))

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=HANDLER_THREADS),
        # Without it gRPC shares a port already taken by another server (SO_REUSEPORT).
        options=[("grpc.so_reuseport", 0)],
    )
    services.add_KMeansServicer_to_server(Predictor(), server)
    bound = _listen(server, port)
    server.start()
    print(f"LISTENING {bound}", file=announce, flush=True)
    announce.close()
    server.wait_for_termination()


def _listen(server, port: int) -> int:
    """Listen on 127.0.0.1:`port`, or on a free port when that one is taken."""
    try:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    return bound or server.add_insecure_port("127.0.0.1:0")


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m bench.serving.python_server")
    parser.add_argument("case", type=Path, help="the case's case.json")
    parser.add_argument("--model", type=Path, required=True, help="the fitted centroids (JSON)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpus", default="", help="cores to run on, e.g. 0,1 (default: all)")
    args = parser.parse_args(argv)
    if args.cpus:  # before any library starts a thread: every thread inherits it
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    # stdout is the harness's pipe, for the one line that announces the port; whatever the
    # implementation prints goes to the case's log instead.
    announce = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    serve(args.case, args.model, args.port, announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
