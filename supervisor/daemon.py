"""berth-supervisor: containerd's gRPC API on a unix socket, over SQLite records and shims.

    berth-supervisor --address unix:///run/berth/supervisor.sock --state /var/lib/berth/supervisor
                     --root /run/berth [--runtime lowrt|runc|crun|PATH] [--debug]

On start it re-adopts the shims of tasks it recorded (they outlive it), then serves. SIGTERM or
SIGINT stop it; the shims and their containers keep running.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger("supervisor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="berth-supervisor", description=__doc__.split("\n")[0])
    p.add_argument("--address", default="unix:///run/berth/supervisor.sock",
                   help="unix:///PATH to listen on")
    p.add_argument("--state", default="/var/lib/berth/supervisor",
                   help="directory for the database (supervisor.db)")
    p.add_argument("--root", default="/run/berth",
                   help="directory for bundles, shim sockets and runtime state")
    p.add_argument("--runtime", default="lowrt",
                   help="default OCI runtime: lowrt, runc, crun or an absolute path")
    p.add_argument("--shim", default=None, help=argparse.SUPPRESS)  # berth-shim binary
    p.add_argument("--debug", action="store_true", help="log at debug level")
    return p.parse_args(argv)


def socket_path(address: str) -> str:
    if address.startswith("unix://"):
        return address[len("unix://"):]
    if address.startswith("/"):
        return address
    raise SystemExit(f'berth-supervisor: --address "{address}": want unix:///PATH')


async def serve(args: argparse.Namespace) -> None:
    import grpc

    from protos.berth.services.streams.v1 import streams_pb2_grpc
    from protos.containerd.services.containers.v1 import containers_pb2_grpc
    from protos.containerd.services.events.v1 import events_pb2_grpc
    from protos.containerd.services.introspection.v1 import introspection_pb2_grpc
    from protos.containerd.services.leases.v1 import leases_pb2_grpc
    from protos.containerd.services.namespaces.v1 import namespace_pb2_grpc
    from protos.containerd.services.tasks.v1 import tasks_pb2_grpc
    from protos.containerd.services.version.v1 import version_pb2_grpc
    from supervisor import runtimes, shims
    from supervisor.containers import Containers
    from supervisor.errors import SupervisorError
    from supervisor.events import Exchange
    from supervisor.services import containers, events, leases, namespaces, streams, tasks, version
    from supervisor.store import Store
    from supervisor.tasks import Tasks

    _watch_children_with_pidfds()
    path = socket_path(args.address)
    state, root = Path(args.state), Path(args.root)
    state.mkdir(parents=True, exist_ok=True, mode=0o711)
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    try:
        runtimes.resolve(args.runtime, None, args.runtime, "--runtime")
    except SupervisorError as e:
        raise SystemExit(f"berth-supervisor: {e.message}") from None
    shim_binary = args.shim or runtimes.find_program("berth-shim")
    if not shim_binary:
        raise SystemExit("berth-supervisor: berth-shim not found next to the interpreter or on PATH")

    store = Store(state / "supervisor.db")
    exchange = Exchange(store)
    ctrs = Containers(store, exchange, args.runtime)
    layout = shims.Layout(root)
    task_logic = Tasks(store, exchange, ctrs, layout, shim_binary)
    await task_logic.recover()

    class LogCalls(grpc.aio.ServerInterceptor):
        """--debug: one line per call (method and namespace), unknown methods included."""

        async def intercept_service(self, continuation, details):
            md = dict(details.invocation_metadata or ())
            log.debug("call %s ns=%s", details.method, md.get("containerd-namespace", "-"))
            return await continuation(details)

    server = grpc.aio.server(interceptors=[LogCalls()] if args.debug else [], options=[("grpc.max_receive_message_length", 64 << 20),
                                      ("grpc.max_send_message_length", 64 << 20)])
    version_pb2_grpc.add_VersionServicer_to_server(version.VersionServicer(), server)
    introspection_pb2_grpc.add_IntrospectionServicer_to_server(
        version.IntrospectionServicer(store.server_uuid()), server)
    namespace_pb2_grpc.add_NamespacesServicer_to_server(
        namespaces.NamespacesServicer(namespaces.Namespaces(store, exchange)), server)
    containers_pb2_grpc.add_ContainersServicer_to_server(containers.ContainersServicer(ctrs), server)
    tasks_pb2_grpc.add_TasksServicer_to_server(tasks.TasksServicer(task_logic), server)
    events_pb2_grpc.add_EventsServicer_to_server(events.EventsServicer(exchange), server)
    leases_pb2_grpc.add_LeasesServicer_to_server(leases.LeasesServicer(store), server)
    streams_pb2_grpc.add_StreamsServicer_to_server(streams.StreamsServicer(task_logic), server)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server.add_insecure_port(f"unix://{path}")
    await server.start()
    os.chmod(path, 0o660)
    log.info("berth-supervisor serving on unix://%s (state %s, root %s, runtime %s)",
             path, state, root, args.runtime)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    exchange.close()
    await server.stop(grace=1.0)
    await task_logic.close()
    store.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _watch_children_with_pidfds() -> None:
    """Python 3.11's default child watcher starts a thread per subprocess (one per task: its
    `berth-shim start`) to wait for it; with pidfds the event loop waits for them itself.
    (Python 3.12 does this by default and deprecates the choice.)"""
    if sys.version_info >= (3, 12) or not hasattr(asyncio, "PidfdChildWatcher"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:   # a kernel without pidfds (before 5.3): keep the threads
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("grpc").setLevel(logging.INFO)
    if not args.debug:
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
