"""One Whisper model per device, shared by all of a run's worker processes.

With a GPU, every worker loading its own model would keep one copy per worker in GPU memory (the
small model alone takes about 1 GB; large takes 3-10) and the workers would queue for the same
device anyway. Instead one model process per GPU holds the model and only transcribes; the
workers do everything else (decoding, voice activity, timing, prosody, checks) on the CPUs and send
each call's audio and speech intervals to whichever model process is free. With a large model on a
CPU-only machine, the same arrangement keeps one copy in memory instead of one per worker
(`[asr] share_model = "always"`).

A model process that dies (the GPU's driver failing, the OOM killer) costs only the call it was
transcribing, which fails with the reason; the process is started again for the calls after it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray

import numpy as np

from audit.measure.asr import AsrUnavailable, resolve_device
from audit.config import AsrConfig
from audit.records import ChannelSpeech, Transcript

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 600.0  # loading a large model from a cold disk can take minutes
POLL_S = 1.0  # how often a waiting process checks that the process it waits for is still there


class TranscriptionFailed(Exception):
    """The model process could not transcribe this call; the message says why."""


def model_devices(device: str, share: str, workers: int) -> list[str]:
    """The devices to run a shared model process on, or [] when each worker keeps its own model.

    `share` is `[asr] share_model`: "auto" shares on CUDA (one model per GPU, whatever the number
    of workers: workers loading their own would all land on the first GPU); "always" shares on the
    CPU too; "never" never shares. A single worker keeps its model in process.
    """
    if share == "never" or workers < 2:
        return []
    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        import torch

        return [resolved] if ":" in resolved else [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [resolved] if share == "always" else []


@dataclass(frozen=True)
class ServiceHandle:
    """What a worker needs to reach the model processes (picklable into spawned workers)."""

    requests: Queue
    replies: tuple[Queue, ...]
    next_reply: Synchronized  # hands each worker its own reply queue
    model_name: str
    engine: str
    device: str


class RemoteTranscriber:
    """Stands in for a `Transcriber` in a worker: the same `transcribe`, run by a model process."""

    shared = True  # the run summary's `asr.shared_model`

    def __init__(self, handle: ServiceHandle):
        self.handle = handle
        self.model_name = handle.model_name
        self.engine = handle.engine
        self.device = handle.device
        self._reply: int | None = None
        self._sent = 0

    def transcribe(self, audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...]) -> Transcript:
        handle = self.handle
        if self._reply is None:
            with handle.next_reply.get_lock():
                self._reply = handle.next_reply.value % len(handle.replies)
                handle.next_reply.value += 1
        self._sent += 1
        ticket = (os.getpid(), self._sent)
        handle.requests.put((self._reply, ticket, audio_16k, speech))
        parent = os.getppid()
        while True:
            try:
                answered, (ok, value) = handle.replies[self._reply].get(timeout=POLL_S)
            except queue.Empty:
                if os.getppid() != parent:  # the run is gone; nobody will answer
                    raise TranscriptionFailed("the audit run stopped while this call waited for the model")
                continue
            if answered == ticket:  # replies owed to a dead predecessor on this queue are dropped
                break
        if not ok:
            raise TranscriptionFailed(value)
        return value


class ModelService:
    """The model processes of one run, and a watcher that restarts any that dies."""

    def __init__(self, context: SpawnContext, asr: AsrConfig, model: str | None, devices: list[str],
                 workers: int, threads: int):
        self._context = context
        self._asr = asr
        self._model = model
        self._threads = threads
        requests, self._status = context.Queue(), context.Queue()
        replies = tuple(context.Queue() for _ in range(workers))
        self._busy: list[SynchronizedArray] = []
        self._processes = []
        self._stopping = threading.Event()
        for device in devices:
            self._busy.append(context.Array("q", [-1, 0, 0]))  # reply queue, ticket of the call in hand
            self._processes.append(self._start(device, len(self._busy) - 1, requests, replies))
        names = [self._ready() for _ in devices]  # (model name, engine) of each
        self.handle = ServiceHandle(requests, replies, context.Value("q", 0), *names[0],
                                    ",".join(devices))
        self._devices = devices
        self._watcher = threading.Thread(target=self._watch, name="model-service-watch", daemon=True)
        self._watcher.start()

    def _start(self, device: str, number: int, requests: Queue, replies: tuple[Queue, ...]):
        process = self._context.Process(
            target=_serve, name=f"whisper-{device}", daemon=True,
            args=(self._asr, self._model, device, self._threads, requests, replies, self._busy[number],
                  self._status, os.getpid()))
        process.start()
        return process

    def _ready(self) -> tuple[str, str]:
        try:
            ok, value = self._status.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            self.close()
            raise AsrUnavailable(f"the Whisper model process did not start within {READY_TIMEOUT_S:.0f} s") from None
        if not ok:
            self.close()
            raise AsrUnavailable(value)
        return value

    def _watch(self) -> None:
        """Answer for the call a dead model process had in hand, and start the process again."""
        while not self._stopping.wait(POLL_S):
            for number, process in enumerate(self._processes):
                if process.is_alive() or self._stopping.is_set():
                    continue
                in_hand = self.busy(number)
                if in_hand is not None:
                    reply, pid, sent = in_hand
                    self.handle.replies[reply].put(((pid, sent), (False, (
                        f"the Whisper model process on {self._devices[number]} died "
                        f"(exit code {process.exitcode}) while transcribing this call"))))
                log.warning("the Whisper model process on %s died (exit code %s); starting it again",
                            self._devices[number], process.exitcode)
                self._busy[number][:] = [-1, 0, 0]
                self._processes[number] = self._start(self._devices[number], number,
                                                      self.handle.requests, self.handle.replies)
                try:
                    self._ready()
                except AsrUnavailable as error:
                    log.error("%s", error)
                    return

    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def busy(self, number: int) -> tuple[int, int, int] | None:
        """The reply queue and ticket of the call model process `number` has in hand, if any."""
        reply, pid, sent = self._busy[number][:]
        return None if reply < 0 else (reply, pid, sent)

    def close(self) -> None:
        self._stopping.set()
        if hasattr(self, "_watcher"):
            self._watcher.join()
        requests = self.handle.requests if hasattr(self, "handle") else None
        for process in self._processes:
            if requests is not None and process.is_alive():
                requests.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()

    def __enter__(self) -> ModelService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(asr: AsrConfig, model: str | None, device: str, threads: int, requests: Queue,
           replies: tuple[Queue, ...], busy: SynchronizedArray, status: Queue, parent: int) -> None:
    """(model process) Load the model, then transcribe calls until told to stop or orphaned."""
    import torch

    from audit.measure.asr import load_transcriber

    torch.set_num_threads(threads)
    try:
        transcriber = load_transcriber(asr, model, device)
    except AsrUnavailable as error:
        status.put((False, str(error)))
        return
    status.put((True, (transcriber.model_name, transcriber.engine)))
    while True:
        try:
            request = requests.get(timeout=POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if request is None:
            return
        reply, ticket, audio_16k, speech = request
        busy[:] = [reply, *ticket]
        try:
            answer = (True, transcriber.transcribe(audio_16k, speech))
        except Exception as error:  # one call's odd audio must not take the model down
            log.exception("transcription failed")
            answer = (False, f"transcription failed: {type(error).__name__}: {error}")
        replies[reply].put((ticket, answer))
        busy[:] = [-1, 0, 0]
