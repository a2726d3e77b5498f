"""The night on a Ray cluster (`audit run --ray`): the same per-call work in Ray actors, every
result recorded by the run's own process (the driver) exactly as on one machine.

Why it is built this way:
- Each call is audited by `audit.run.work.audit_job`, the function the local workers run, in an
  `Auditor` actor that loads the config, the VAD, the word dictionary and (without GPUs) its own
  Whisper once; so a call's record is the same wherever it was audited.
- With GPUs, one `ModelActor` per GPU (`num_gpus=1`) holds the model and only transcribes; the
  auditors (one per CPU) do decoding, voice activity, timing, prosody and checks and send each
  call's speech to a model actor on their node: the shared-model arrangement of
  `audit.measure.asr_service`, spread over nodes. `[asr] share_model = "always"` does the same on a
  CPU-only cluster (one model actor per node).
- Only the driver writes: SQLite takes one writer, and the driver already holds the output
  folder's lock, plans the run (skip, `--force`, `--retry-failed`) and writes each call's record
  and row in its own transaction as results come back (`audit.run.batch`). A driver killed at any
  moment loses only the calls in flight; Ray ends the actors it owned.
- Bounded work: each auditor has at most `[cluster] calls_per_auditor` calls queued, so the
  driver holds no more in flight than the cluster can take (backpressure), whatever the night's
  size. Recordings are read by the actors from their path (each node needs the same paths); only
  the job (path, id, metadata) travels to them and only the record comes back.
- An actor that dies (its process killed, its node lost) costs only its calls: each is tried again
  alone on a new actor, and one that kills that actor too is recorded as failed with the reason.

Ray is imported by this module only, and this module only when a run asks for a cluster.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from typing import Callable

import numpy as np
import ray
from ray.exceptions import RayActorError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from audit.measure.asr import AsrUnavailable
from audit.measure.asr_service import TranscriptionFailed
from audit.config import AsrConfig, Config
from audit.run.pipeline import AsrChoice, Job, load_models
from audit.privacy import worker_logging
from audit.records import ChannelSpeech, Transcript
from audit.run.work import ClusterError, Outcome, audit_job

log = logging.getLogger(__name__)


def _node_label() -> str:
    return f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"


@ray.remote
class ModelActor:
    """One Whisper model on one GPU (or a node's CPUs), transcribing for the auditors."""

    def __init__(self, asr: AsrConfig, model: str | None, device: str, threads: int):
        import torch

        from audit.measure.asr import load_transcriber

        torch.set_num_threads(threads)
        self.node = _node_label()
        try:
            self.transcriber = load_transcriber(asr, model, device)
            self.error = None
        except AsrUnavailable as error:
            self.transcriber, self.error = None, f"on {self.node}: {error}"

    def info(self) -> tuple[bool, tuple[str, str, str] | str]:
        """(True, (model name, engine, device)) once loaded, else (False, why not)."""
        if self.transcriber is None:
            return False, self.error
        return True, (self.transcriber.model_name, self.transcriber.engine, self.transcriber.device)

    def transcribe(self, audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...]):
        try:
            return True, self.transcriber.transcribe(audio_16k, speech)
        except Exception as error:  # one call's odd audio must not take the model down
            log.exception("transcription failed")
            return False, f"transcription failed: {type(error).__name__}: {error}"


class RayTranscriber:
    """Stands in for a `Transcriber` in an auditor: the same `transcribe`, run by a model actor."""

    shared = True  # the run summary's `asr.shared_model`

    def __init__(self, actor, model_name: str, engine: str, device: str):
        self.actor, self.model_name, self.engine, self.device = actor, model_name, engine, device

    def transcribe(self, audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...]) -> Transcript:
        try:
            ok, value = ray.get(self.actor.transcribe.remote(audio_16k, speech))
        except RayActorError as error:  # Ray starts the model actor again for the next call
            raise TranscriptionFailed(f"the Whisper model actor ({self.device}) died while transcribing "
                                      f"this call: {_first_line(error)}") from None
        if not ok:
            raise TranscriptionFailed(value)
        return value


@ray.remote
class Auditor:
    """Audits calls one after another with `audit_job`; its models are loaded once, here."""

    def __init__(self, config: Config, mode: str, model: str | None, device: str | None,
                 transcriber: RayTranscriber | None, whisper_error: str | None):
        worker_logging(config.privacy.mask_outputs)
        self.config, self.node, self.error = config, _node_label(), None
        if transcriber is not None:
            self.asr = AsrChoice(mode, transcriber)
        elif whisper_error is not None:
            self.asr = AsrChoice.without_whisper(mode, AsrUnavailable(whisper_error))
        else:
            try:
                if mode != "sidecar":
                    import torch

                    torch.set_num_threads(1)  # one CPU per auditor
                self.asr = AsrChoice.prepare(mode, config, model, device)
            except AsrUnavailable as error:  # only with --asr whisper: the run stops, naming the node
                self.asr, self.error = None, f"on {self.node}: {error}"
                return
        load_models(config)

    def describe(self) -> dict:
        """How this actor transcribes (`AsrChoice.describe`), its node, and why it cannot, if so."""
        return {"node": self.node, "error": self.error, "asr": self.asr.describe() if self.asr else None}

    def sees(self, path: str) -> bool:
        """Whether this actor's node can see `path` (the recordings are read where they lie)."""
        return os.path.exists(path)

    def audit(self, job: Job) -> Outcome:
        return audit_job(job, self.config, self.asr, node=self.node)


class RayExecutor:
    """A run's actors on a Ray cluster; `run` audits calls there and hands each outcome back to
    the driver's `record` (see the module docstring)."""

    def __init__(self, config: Config, address: str, mode: str, model: str | None, device: str | None):
        started = time.perf_counter()
        self.config, self.address = config, address
        self.owns_ray = not ray.is_initialized()  # a test or a host program may have connected
        if self.owns_ray:
            try:
                if address != "auto":
                    _probe(address)  # ray.init waits for an unreachable address for good
                ray.init(address=address, logging_level=logging.WARNING)
            except Exception as error:  # Ray raises ConnectionError, ValueError or its own errors
                raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {_first_line(error)}; "
                                   "start one with `ray start --head` (see README: Scale out on Ray)"
                                   ) from None
        self.models: list = []
        self.slots: list[dict] = []  # one per auditor: its handle, how to start it again, its node
        try:
            self._start(mode, model, device)
        except BaseException:
            self.close()
            raise
        self.workers = len(self.slots)
        gpus = sum(int(n["Resources"].get("GPU", 0)) for n in self._nodes)
        self.cluster = {"ray": address, "nodes": len(self._nodes), "auditors": len(self.slots),
                        "model_actors": len(self.models), "gpus": gpus,
                        "calls_per_auditor": config.cluster.calls_per_auditor,
                        "setup_s": round(time.perf_counter() - started, 2)}
        log.info("Ray: %d auditors and %d model actors on %d nodes", len(self.slots), len(self.models),
                 len(self._nodes))

    def _start(self, mode: str, model: str | None, device: str | None) -> None:
        self._nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= 1]
        if not self._nodes:
            raise ClusterError(f"the Ray cluster at {self.address!r} has no node with a CPU to audit on")
        device = device or self.config.asr.device
        share = self.config.asr.share_model
        gpus = sum(int(n["Resources"].get("GPU", 0)) for n in self._nodes)
        on_gpu = mode != "sidecar" and share != "never" and device != "cpu" and gpus > 0
        on_cpu = mode != "sidecar" and share == "always" and not on_gpu
        by_node, whisper_error = self._start_models(model, on_gpu, on_cpu, mode)
        self._start_auditors(mode, model, device, by_node, int(on_cpu), whisper_error)

    def _start_models(self, model: str | None, on_gpu: bool, on_cpu: bool, mode: str):
        """The model actors (one per GPU, or with `on_cpu` one per node), by node, each as the
        `RayTranscriber` an auditor uses; or none, with why when they could not load the model."""
        by_node: dict[str, list] = {}
        for node in self._nodes:
            if on_gpu:  # the GPU does the work; its CPUs stay with the auditors
                count, where, threads = int(node["Resources"].get("GPU", 0)), "cuda", 2
                options = {"num_cpus": 0, "num_gpus": 1}
            else:  # on a CPU the model does nearly all the work
                count, where, threads = int(on_cpu), "cpu", int(node["Resources"]["CPU"])
                options = {"num_cpus": 1}
            actors = [ModelActor.options(max_restarts=-1, scheduling_strategy=_on(node), **options)
                      .remote(self.config.asr, model, where, threads) for _ in range(count)]
            self.models.extend(actors)
            by_node[node["NodeID"]] = actors
        loaded = ray.get([actor.info.remote() for actor in self.models])
        whisper_error = next((value for ok, value in loaded if not ok), None)
        if whisper_error is not None:
            if mode == "whisper":
                raise AsrUnavailable(f"the Whisper model actor cannot load the model {whisper_error}")
            for actor in self.models:
                ray.kill(actor)
            self.models = []
            return {}, whisper_error
        transcribers = iter([RayTranscriber(actor, *info) for actor, (_, info) in zip(self.models, loaded)])
        return {node: [next(transcribers) for _ in actors] for node, actors in by_node.items()}, None

    def _start_auditors(self, mode: str, model: str | None, device: str | None, by_node: dict,
                        cpus_for_models: int, whisper_error: str | None) -> None:
        """The auditors, one per CPU a node offers (less its model actor's), each with a model
        actor of its node (else of any node) when there are any; then what they all agree on."""
        everywhere = [transcriber for transcribers in by_node.values() for transcriber in transcribers]
        for node in self._nodes:
            near = by_node.get(node["NodeID"]) or everywhere
            cpus = int(node["Resources"]["CPU"])
            count = self.config.cluster.auditors_per_node or max(1, cpus - cpus_for_models)
            for number in range(count):
                transcriber = near[number % len(near)] if near else None
                spec = (_on(node), (self.config, mode, model, device, transcriber, whisper_error))
                self.slots.append({"spec": spec, "actor": self._auditor(spec), "node": None})
        described = ray.get([slot["actor"].describe.remote() for slot in self.slots])
        for slot, description in zip(self.slots, described):
            slot["node"] = description["node"]
        failed = [d["error"] for d in described if d["error"]]
        if failed:
            raise AsrUnavailable(failed[0])
        self.asr = self._agreed([d["asr"] for d in described], [d["node"] for d in described])

    @staticmethod
    def _auditor(spec):
        placed, args = spec
        return Auditor.options(num_cpus=1, scheduling_strategy=placed).remote(*args)

    @staticmethod
    def _agreed(descriptions: list[dict], nodes: list[str]) -> dict:
        """The run's ASR as every auditor has it; nodes that disagree (one loads the model, another
        does not) would give records that depend on where a call ran, so the run stops."""
        def key(asr: dict) -> tuple:
            return asr["mode"], asr["whisper_model"], asr["engine"], asr["whisper_error"] is None

        first = descriptions[0]
        odd = [(node, asr) for node, asr in zip(nodes, descriptions) if key(asr) != key(first)]
        if odd:
            node, asr = odd[0]
            raise ClusterError(
                f"the nodes transcribe differently: {nodes[0]} uses {first['whisper_model'] or 'sidecars'} "
                f"({first['whisper_error'] or 'loaded'}), {node} uses {asr['whisper_model'] or 'sidecars'} "
                f"({asr['whisper_error'] or 'loaded'}); every node needs the same package and models")
        devices = sorted({asr["device"] for asr in descriptions if asr["device"]})
        return first | {"device": ",".join(devices) or None}

    def run(self, todo: list[Job], record: Callable[[Outcome], None]) -> None:
        """Audit `todo` on the auditors, at most `calls_per_auditor` queued on each, and hand
        every outcome to `record` as it arrives."""
        if not todo:
            return
        self._check_paths(todo[0])
        depth = self.config.cluster.calls_per_auditor
        pending, suspects = deque(todo), deque()
        flight: dict = {}  # object ref -> (job, slot number, the slot's actor, tried alone)
        load = [0] * len(self.slots)
        while pending or suspects or flight:
            for number in range(len(self.slots)):
                if suspects:  # a suspect runs alone on an idle actor; the others drain first
                    if load[number] == 0:
                        self._submit(suspects.popleft(), number, True, flight, load)
                    continue
                while pending and load[number] < depth:
                    self._submit(pending.popleft(), number, False, flight, load)
            (ready,), _ = ray.wait(list(flight), num_returns=1)
            job, number, actor, alone = flight.pop(ready)
            load[number] -= 1
            node = self.slots[number]["node"]
            try:
                outcome = ray.get(ready)
            except RayTaskError as error:  # not the call's audit (that catches everything): its job
                outcome = Outcome(job, "failed", reason=f"internal error: {_first_line(error)}", node=node)
            except RayError as error:  # the actor died (killed, out of memory, its node lost)
                if self.slots[number]["actor"] is actor:
                    log.warning("the Ray auditor on %s died (%s); starting another", node, _first_line(error))
                    self._replace(number)
                if alone:
                    record(Outcome(job, "failed", node=node, reason=(
                        "the Ray actor auditing this recording died, also when the call was tried "
                        f"again alone on a new actor ({_first_line(error)})")))
                else:
                    suspects.append(job)
                continue
            record(outcome)

    def _submit(self, job: Job, number: int, alone: bool, flight: dict, load: list[int]) -> None:
        actor = self.slots[number]["actor"]
        flight[actor.audit.remote(job)] = (job, number, actor, alone)
        load[number] += 1

    def _replace(self, number: int) -> None:
        slot = self.slots[number]
        ray.kill(slot["actor"])
        slot["actor"] = self._auditor(slot["spec"])

    def _check_paths(self, job: Job) -> None:
        """Stop before any call when a node cannot see the recordings where the driver sees them
        (it would record every call it took as failed)."""
        first_on_node = {slot["node"]: slot["actor"] for slot in reversed(self.slots)}
        path = os.path.realpath(job.path)
        if not os.path.exists(path):  # gone since the plan: its audit says so, as on one machine
            return
        answers = ray.get([actor.sees.remote(path) for actor in first_on_node.values()])
        blind = [node for node, seen in zip(first_on_node, answers) if not seen]
        if blind:
            raise ClusterError(f"{', '.join(blind)} cannot read {path}: every node needs the "
                               "recordings at the same path (a shared or mounted folder)")

    def close(self) -> None:
        """End this run's actors (Ray would end them with the driver anyway) and, when this run
        connected to Ray, disconnect."""
        for actor in [slot["actor"] for slot in self.slots] + self.models:
            ray.kill(actor)
        if self.owns_ray:
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _on(node: dict) -> NodeAffinitySchedulingStrategy:
    """Place an actor on `node`, or elsewhere when the node is gone or full (its replacements too)."""
    return NodeAffinitySchedulingStrategy(node["NodeID"], soft=True)


def _probe(address: str, timeout_s: float = 10.0) -> None:
    """Raise OSError unless something listens at `address` (`ray://host:port` or `host:port`)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    socket.create_connection((host, int(port)), timeout=timeout_s).close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
