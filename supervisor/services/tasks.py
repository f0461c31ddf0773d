"""containerd.services.tasks.v1.Tasks over supervisor.tasks.Tasks."""
from __future__ import annotations

import time

from google.protobuf import empty_pb2

from protos.containerd.runc.options import oci_pb2
from protos.containerd.services.tasks.v1 import tasks_pb2 as tpb, tasks_pb2_grpc
from protos.containerd.types import metrics_pb2
from protos.containerd.types.task import task_pb2
from supervisor import convert, filters
from supervisor.errors import NotImplementedByServer, SupervisorError
from supervisor.metrics import stats_to_metrics
from supervisor.services import namespace, unary
from supervisor.tasks import Tasks, TaskState

_STATUS = {name: i for i, name in enumerate(convert.STATUS_NAMES)}


def process_message(st: TaskState) -> task_pb2.Process:
    return task_pb2.Process(
        container_id=st.container_id, id=st.id, pid=st.pid,
        status=_STATUS.get(st.status, task_pb2.UNKNOWN), stdin=st.stdin, stdout=st.stdout,
        stderr=st.stderr, terminal=st.terminal, exit_status=st.exit_status,
        exited_at=convert.ns_to_timestamp(st.exited_at))


def _delete_response(id: str, result: tuple[int, int, int]) -> tpb.DeleteResponse:
    pid, status, exited_at = result
    return tpb.DeleteResponse(id=id, pid=pid, exit_status=status,
                              exited_at=convert.ns_to_timestamp(exited_at))


class TasksServicer(tasks_pb2_grpc.TasksServicer):
    def __init__(self, tasks: Tasks):
        self.t = tasks

    @unary
    async def Create(self, request, context):
        pid = await self.t.create(namespace(context), request.container_id, rootfs=list(request.rootfs),
                                  stdin=request.stdin, stdout=request.stdout, stderr=request.stderr,
                                  terminal=request.terminal)
        return tpb.CreateTaskResponse(container_id=request.container_id, pid=pid)

    @unary
    async def Start(self, request, context):
        pid = await self.t.start(namespace(context), request.container_id, request.exec_id)
        return tpb.StartResponse(pid=pid)

    @unary
    async def Delete(self, request, context):
        result = await self.t.delete(namespace(context), request.container_id)
        return _delete_response(request.container_id, result)

    @unary
    async def DeleteProcess(self, request, context):
        result = await self.t.delete_process(namespace(context), request.container_id, request.exec_id)
        return _delete_response(request.exec_id, result)

    @unary
    async def Get(self, request, context):
        st = await self.t.get(namespace(context), request.container_id, request.exec_id)
        return tpb.GetResponse(process=process_message(st))

    @unary
    async def List(self, request, context):
        states = await self.t.list(namespace(context))
        return tpb.ListTasksResponse(tasks=[process_message(s) for s in states])

    @unary
    async def Kill(self, request, context):
        await self.t.kill(namespace(context), request.container_id, request.signal,
                          exec_id=request.exec_id, all=request.all)
        return empty_pb2.Empty()

    @unary
    async def Exec(self, request, context):
        await self.t.exec(namespace(context), request.container_id, request.exec_id, request.spec,
                          terminal=request.terminal, stdin=request.stdin, stdout=request.stdout,
                          stderr=request.stderr)
        return empty_pb2.Empty()

    @unary
    async def ResizePty(self, request, context):
        await self.t.resize_pty(namespace(context), request.container_id, request.width,
                                request.height, request.exec_id)
        return empty_pb2.Empty()

    @unary
    async def CloseIO(self, request, context):
        await self.t.close_io(namespace(context), request.container_id, request.exec_id,
                              stdin=request.stdin)
        return empty_pb2.Empty()

    @unary
    async def Pause(self, request, context):
        await self.t.pause(namespace(context), request.container_id)
        return empty_pb2.Empty()

    @unary
    async def Resume(self, request, context):
        await self.t.resume(namespace(context), request.container_id)
        return empty_pb2.Empty()

    @unary
    async def ListPids(self, request, context):
        procs = await self.t.pids(namespace(context), request.container_id)
        out = tpb.ListPidsResponse()
        for p in procs:
            info = out.processes.add(pid=p.pid)
            if p.exec_id:
                info.info.CopyFrom(convert.pack(oci_pb2.ProcessDetails(exec_id=p.exec_id)))
        return out

    @unary
    async def Checkpoint(self, request, context):
        raise NotImplementedByServer(f"checkpoint of task {request.container_id}: "
                                     "berth-supervisor does not checkpoint tasks")

    @unary
    async def Update(self, request, context):
        await self.t.update(namespace(context), request.container_id, request.resources)
        return empty_pb2.Empty()

    @unary
    async def Metrics(self, request, context):
        ns = namespace(context)
        flt = filters.parse(request.filters)
        out = tpb.MetricsResponse()
        for st in await self.t.list(ns):
            if not flt.match(filters.mapping_adaptor({"id": st.container_id, "namespace": ns})):
                continue
            collected = time.time_ns()
            try:
                stats = await self.t.stats(ns, st.container_id)
            except SupervisorError:
                continue  # stopped or gone meanwhile, as containerd skips it
            out.metrics.append(metrics_pb2.Metric(
                timestamp=convert.ns_to_timestamp(collected), id=st.container_id,
                data=convert.pack(stats_to_metrics(stats))))
        return out

    @unary
    async def Wait(self, request, context):
        status, exited_at = await self.t.wait(namespace(context), request.container_id, request.exec_id)
        return tpb.WaitResponse(exit_status=status, exited_at=convert.ns_to_timestamp(exited_at))
