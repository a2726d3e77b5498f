"""Transcribe the speech of a call with Whisper, packed into Whisper's 30-second windows.

Whisper always decodes 30-second windows. The speech the VAD found on each channel (padded, short
gaps kept so no word is cut) is laid end to end, both sides in the order they spoke, into as few
windows as possible: ringing, holds, music and silence cost nothing, and a two-channel call costs
its speech time, not twice its length. Every piece of a window remembers where it came from (which
channel, which samples), so every segment and word time is mapped back to the recording exactly (a
piecewise offset map) and gets its speaker from its channel; text that runs over the seam between
two pieces is split there, so no utterance spans audio the model never heard.

Two engines run the same weights: openai-whisper (PyTorch, the default) and faster-whisper
(CTranslate2, int8 on a CPU). With openai-whisper, windows go to `model.decode` in batches rather
than through `whisper.transcribe`: transcribe cannot
batch, encodes a window again for every fallback temperature, and decodes a window a second time
from its last word whenever the window does not end on a timestamp (most full, packed windows do
not). Here every window is encoded once and decoded once per temperature it needs (whisper's own
fallback rule), and its words are timed with whisper's own `add_word_timestamps` on the same encoded
audio (whisper would run the encoder a second time for it). Whisper often stops before the end of
a full, packed window; the pieces it did not reach are packed and decoded again
(`[asr] redecode_rounds`), the last time each alone. faster-whisper
decodes window by window with its own `transcribe`, with the same fallback rule and thresholds.

Output Whisper is known to invent (subtitle boilerplate, an echo of the prompt, repetition loops,
guesses it is unsure of word by word, as on tones and music, text with no speech under it) is dropped before any check sees it, and kept in the record with the reason.
"""

from __future__ import annotations

import abc
import bisect
import dataclasses
import logging
import re
import zlib
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np

from audit.config import AsrConfig
from audit.frames import SAMPLE_RATE
from audit.measure.models import canonical, is_ct2_folder, load_openai_whisper, locate, models_dir, reference, split_reference
from audit.records import ChannelSpeech, DroppedText, Interval, Transcript, Utterance, Word
from audit.textnorm import normalize, normalize_phrase, to_simplified

log = logging.getLogger(__name__)

WINDOW_S = 30.0  # Whisper decodes 30-second windows
WINDOW_SAMPLES = int(WINDOW_S * SAMPLE_RATE)
MEL_HOP = 160  # samples per mel frame (whisper.audio.HOP_LENGTH)
SECONDS_PER_TIMESTAMP = 0.02  # one timestamp token step
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # whisper.transcribe's default schedule
QUIET_FRAME = 160  # 10 ms frames, to find where to cut speech longer than a window
CUT_SEARCH_SAMPLES = 5 * SAMPLE_RATE  # ... searched over the last 5 s that still fit


class AsrUnavailable(Exception):
    """The Whisper model cannot be loaded (unknown name, missing weights, no network, bad file)."""


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AsrUnavailable(f"--device {device} was asked for but no CUDA GPU is available")
    return device


# --- packing speech into windows -----------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """Samples [start, end) of one channel of the recording, laid at sample `offset` of a window."""

    speech: ChannelSpeech
    start: int
    end: int
    offset: int = 0

    @property
    def length(self) -> int:
        return self.end - self.start

    def to_recording(self, window_s: float) -> float:
        return window_s + (self.start - self.offset) / SAMPLE_RATE


@dataclass(frozen=True)
class Window:
    """Up to 30 s of speech: pieces of the recording laid end to end, each knowing its channel."""

    pieces: tuple[Piece, ...]

    @property
    def samples(self) -> int:
        return self.pieces[-1].offset + self.pieces[-1].length

    def audio(self, audio_16k: np.ndarray) -> np.ndarray:
        return np.concatenate([audio_16k[p.speech.channel.index, p.start: p.end] for p in self.pieces])

    def place(self, start_s: float, end_s: float) -> tuple[Piece, float, float]:
        """The piece a span of window time belongs to (the one holding its middle), and the span
        in recording time, kept inside that piece so it never reaches audio the model did not hear."""
        middle = (start_s + end_s) / 2 * SAMPLE_RATE
        piece = self.pieces[max(0, bisect.bisect_right([p.offset for p in self.pieces], middle) - 1)]
        low, high = piece.offset / SAMPLE_RATE, (piece.offset + piece.length) / SAMPLE_RATE
        start, end = (min(max(t, low), high) for t in (start_s, end_s))
        return piece, piece.to_recording(start), piece.to_recording(end)


def speech_spans(intervals: tuple[Interval, ...], pad_s: float, merge_gap_s: float,
                 audio: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges of one channel to transcribe: speech widened by `pad_s`, neighbours closer
    than `merge_gap_s` joined with the gap kept (a pause inside a sentence stays in context), and
    none longer than a window."""
    gap = round(merge_gap_s * SAMPLE_RATE)
    spans: list[tuple[int, int]] = []
    for interval in intervals:
        start = max(0, round((interval.start - pad_s) * SAMPLE_RATE))
        end = min(len(audio), round((interval.end + pad_s) * SAMPLE_RATE))
        if spans and start - spans[-1][1] <= gap and end - spans[-1][0] <= WINDOW_SAMPLES:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((max(start, spans[-1][1]) if spans else start, end))
    return [cut for span in spans for cut in _fit_window(span, audio)]


def _fit_window(span: tuple[int, int], audio: np.ndarray) -> list[tuple[int, int]]:
    """A span longer than a window (a long turn with no pause the VAD split on), cut at its
    quietest 10 ms near each window length."""
    start, end = span
    cuts = []
    while end - start > WINDOW_SAMPLES:
        cut = _quietest_point(audio, start + WINDOW_SAMPLES - CUT_SEARCH_SAMPLES, start + WINDOW_SAMPLES)
        cuts.append((start, cut))
        start = cut
    return cuts + [(start, end)]


def _quietest_point(audio: np.ndarray, low: int, high: int) -> int:
    frames = audio[low: high].reshape(-1, QUIET_FRAME).astype(np.float64)
    return low + int(np.argmin(np.sum(frames ** 2, axis=1))) * QUIET_FRAME


def speech_pieces(audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...], pad_s: float,
                  merge_gap_s: float) -> list[Piece]:
    """Every channel's spans to transcribe, in the order they were spoken."""
    pieces = [Piece(channel, start, end)
              for channel in speech
              for start, end in speech_spans(channel.intervals, pad_s, merge_gap_s,
                                             audio_16k[channel.channel.index])]
    return sorted(pieces, key=lambda p: (p.start, p.speech.channel.index))


def pack_windows(pieces: list[Piece]) -> list[Window]:
    """Pieces packed first-fit, in the order given: each goes into the first window with room for
    it, so no piece is split between windows, a short reply fills a gap an earlier window left,
    and within a window the two sides of the dialogue follow each other as they were spoken."""
    laid: list[list[Piece]] = []
    used: list[int] = []
    for piece in pieces:
        index = next((i for i, full in enumerate(used) if full + piece.length <= WINDOW_SAMPLES), len(used))
        if index == len(used):
            laid.append([])
            used.append(0)
        laid[index].append(dataclasses.replace(piece, offset=used[index]))
        used[index] += piece.length
    return [Window(tuple(window)) for window in laid]


def split_at_seams(segment: dict, window: Window) -> list[tuple[Piece, dict]]:
    """A decoded segment (window time) in recording time: one part per piece its words fall in,
    each with the piece it came from (and so its speaker)."""
    words = segment.get("words") or []
    if not words:
        piece, start, end = window.place(segment["start"], segment["end"])
        return [(piece, {**segment, "start": start, "end": end, "words": []})]
    placed = [(window.place(w["start"], w["end"]), w) for w in words]
    parts = [
        (piece, [{**word, "start": start, "end": end} for (_, start, end), word in group])
        for piece, group in groupby(placed, key=lambda item: item[0][0])
    ]
    return [
        (piece, {**segment, "start": part[0]["start"], "end": part[-1]["end"], "words": part,
                 "text": segment["text"] if len(parts) == 1 else "".join(w["word"] for w in part)})
        for piece, part in parts
    ]


def unreached(window: Window, heard: list[tuple[Piece, float]], tail_min_s: float) -> list[Piece]:
    """What Whisper did not reach in a window, to decode again: the pieces after the last one any
    text came from (it often ends a full, packed window early), and the end of a piece it stopped
    inside: from the piece's last text on (`heard`: each piece with the end of a text from it, in
    recording time, s) when voice activity starting after that text lasts `tail_min_s` or more.
    A piece with no text before one with text was heard and judged silent. When nothing came back
    at all, the first piece is taken as heard: every round settles at least one piece of every
    window."""
    last = max((window.pieces.index(piece) for piece, _ in heard), default=0)
    ends: dict[int, float] = {}
    for piece, end in heard:
        index = window.pieces.index(piece)
        ends[index] = max(ends.get(index, end), end)
    tails = []
    for index, end in sorted(ends.items()):
        piece = window.pieces[index]
        low, high = max(end, piece.start / SAMPLE_RATE), piece.end / SAMPLE_RATE
        intervals = piece.speech.intervals  # in time order: found by bisection, a long call stays linear
        after = 0.0
        for interval in intervals[bisect.bisect_left(intervals, low, key=lambda i: i.start):]:
            if interval.start >= high:
                break
            after += min(interval.end, high) - interval.start
        if after >= tail_min_s:
            tails.append(dataclasses.replace(piece, start=round(low * SAMPLE_RATE), offset=0))
    return tails + list(window.pieces[last + 1:])


def _batches(windows: list[Window], size: int) -> list[list[Window]]:
    return [windows[i: i + size] for i in range(0, len(windows), size)]


# --- decoding ------------------------------------------------------------------------------------


class Transcriber(abc.ABC):
    """One loaded Whisper model (of either engine) and the settings to run it on call audio.

    The engines share everything but the decoding of a window: the packing of speech into
    windows, the mapping of segment and word times back to the recording, the hallucination
    filters and the simplified-Chinese text.

    Parameters
    ----------
    asr : AsrConfig
        The `[asr]` settings.
    model : str or None
        A model name or path (see `audit.measure.models.locate`); default `[asr] model`.
    device : str or None
        "auto", "cpu", "cuda" or "cuda:N"; default `[asr] device`.
    """

    engine: str  # one of audit.measure.models.ENGINES

    def __init__(self, asr: AsrConfig, model: str | None = None, device: str | None = None):
        self.asr = asr
        name = model or asr.model
        self.device = resolve_device(device or asr.device)
        target = locate(name, self.engine, models_dir(asr.models_dir))
        # names the model in summaries, the skip key and every transcript, however it was spelled
        self.model_name = reference(self.engine, canonical(target))
        self.model_label = f"{self.engine}:{canonical(target)}"
        try:
            self._load(target)
        except AsrUnavailable:
            raise
        except Exception as error:  # RuntimeError, URLError, OSError, pickle and conversion errors
            raise AsrUnavailable(f"cannot load Whisper model {name!r} ({self.engine}): {error}") from None
        self._blocklist = tuple(p for p in (normalize_phrase(b) for b in asr.blocklist) if p)
        self._prompt = normalize_phrase(asr.initial_prompt)
        self._repeat = re.compile(r"(.{1,16}?)\1{%d,}" % asr.max_repeats)

    @abc.abstractmethod
    def _load(self, target: str) -> None:
        """Load the model `target` (a path or a name, see `audit.measure.models.locate`) on `self.device`."""

    @abc.abstractmethod
    def _reset_sampling(self) -> None:
        """Seed the sampling of the fallback temperatures."""

    @abc.abstractmethod
    def _decode_windows(self, audio_16k: np.ndarray, batch: list[Window]):
        """(window, its decoded segments in window seconds) for each of these windows."""

    def transcribe(self, audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...]) -> Transcript:
        pieces = speech_pieces(audio_16k, speech, self.asr.clip_pad_s, self.asr.clip_merge_gap_s)
        if not pieces:
            return Transcript(source="none", utterances=())
        # The fallback temperatures sample; a fixed seed per call makes a call's transcript depend
        # on its audio only, not on which worker or model process ran it or what ran there before.
        self._reset_sampling()
        kept: list[Utterance] = []
        dropped: list[DroppedText] = []
        rounds = self.asr.redecode_rounds
        for round_ in range(rounds + 1):
            # The last time, each piece the model has not yet reached is decoded alone.
            windows = pack_windows(pieces) if round_ == 0 or round_ < rounds else [
                Window((dataclasses.replace(piece, offset=0),)) for piece in pieces]
            pieces = []
            for batch in _batches(windows, self.batch_windows):
                for window, segments in self._decode_windows(audio_16k, batch):
                    placed = list(self._placed(window, segments))
                    for _, utterance, reason in placed:
                        (dropped.append(DroppedText(utterance, reason)) if reason else kept.append(utterance))
                    pieces += unreached(window, [(piece, utterance.end) for piece, utterance, _ in placed],
                                        self.asr.redecode_tail_min_s)
            if not pieces:
                break
        kept.sort(key=lambda u: (u.start, u.end))
        return Transcript(source="whisper", utterances=tuple(kept), dropped=tuple(dropped),
                          model=self.model_label)

    def _placed(self, window: Window, segments: list[dict]):
        """The segments of a window (window time) as utterances in recording time, each with the
        piece it came from and the reason it is dropped or ""."""
        for segment in segments:
            for piece, part in split_at_seams(segment, window):
                utterance = _utterance(part, piece.speech.channel.speaker)
                yield piece, utterance, self._hallucination(part, utterance, piece.speech.intervals)

    def _judged_non_speech(self, no_speech_prob: float, avg_logprob: float) -> bool:
        return no_speech_prob > self.asr.no_speech_threshold and avg_logprob < self.asr.logprob_threshold

    def _hallucination(self, segment: dict, utterance: Utterance, speech: tuple[Interval, ...]) -> str:
        """Why this segment is not believable as speech, or '' when it is."""
        text = normalize(utterance.text).text
        if not text:
            return "no text"
        if any(phrase in text for phrase in self._blocklist):
            return "known subtitle/boilerplate text"
        if self._prompt and (self._prompt in text or (
                len(text) >= self.asr.prompt_echo_min_chars and text in self._prompt)):
            return "echo of the initial prompt"
        if self._repeat.search(text) or _compression_ratio(text) > self.asr.compression_ratio_threshold:
            return "repetition loop"
        if self._judged_non_speech(segment["no_speech_prob"], segment["avg_logprob"]):
            return "model judged it non-speech"
        sure = [w["probability"] for w in segment.get("words") or () if "probability" in w]
        if sure and float(np.mean(sure)) < self.asr.min_word_probability:
            return "unsure guess (low word probabilities)"
        duration = max(utterance.end - utterance.start, 1e-3)
        if overlap_s(utterance.start, utterance.end, speech) / duration < self.asr.min_speech_overlap:
            return "no speech under the text"
        return ""


class WhisperTranscriber(Transcriber):
    """The openai-whisper engine (PyTorch): windows decoded in batches, fp16 on CUDA."""

    engine = "openai-whisper"

    def _load(self, target: str) -> None:
        import torch
        from whisper.decoding import DecodingOptions
        from whisper.tokenizer import get_tokenizer

        asr = self.asr
        self.model = load_openai_whisper(target, self.device)
        fp16 = self.device.startswith("cuda")
        self.dtype = torch.float16 if fp16 else torch.float32
        self.batch_windows = asr.cuda_batch_windows if fp16 else asr.cpu_batch_windows
        self.tokenizer = get_tokenizer(self.model.is_multilingual, num_languages=self.model.num_languages,
                                       language=asr.language, task="transcribe")
        # The prompt goes with every window: windows are independent (no conditioning on text).
        # Hotwords go in front of it (openai-whisper has no hotwords of its own).
        prompt = " ".join((*asr.hotwords, asr.initial_prompt)).strip()
        self.options = DecodingOptions(task="transcribe", language=asr.language, prompt=prompt or None, fp16=fp16)

    def _reset_sampling(self) -> None:
        import torch

        torch.manual_seed(0)

    def _decode_windows(self, audio_16k: np.ndarray, batch: list[Window]):
        import torch
        from whisper.timing import add_word_timestamps

        mels = [self._mel(window.audio(audio_16k)) for window in batch]
        with torch.no_grad():
            features = self.model.embed_audio(torch.stack(mels))  # encoded once, for every use below
        for index, (window, mel, result) in enumerate(zip(batch, mels, self._decode(features))):
            segments = _segments(result, self.tokenizer, window.samples / SAMPLE_RATE)
            if not self._judged_non_speech(result.no_speech_prob, result.avg_logprob):
                add_word_timestamps(segments=segments, model=_Encoded(self.model, features[index: index + 1]),
                                    tokenizer=self.tokenizer, mel=mel, num_frames=window.samples // MEL_HOP,
                                    last_speech_timestamp=0.0)
            yield window, segments

    def _mel(self, audio: np.ndarray):
        """Log-mel of one window, zero-padded to 30 s as Whisper was trained."""
        import whisper

        mel = whisper.log_mel_spectrogram(audio, self.model.dims.n_mels,
                                          padding=WINDOW_SAMPLES - len(audio), device=self.model.device)
        return mel.to(self.dtype)

    def _decode(self, features):
        """Decode a batch of encoded windows, each again at the next temperature while whisper's
        own rule says it failed (a repetition loop or an unsure guess, unless the window is silence)."""
        asr = self.asr
        results = [None] * len(features)
        todo = list(range(len(features)))
        for temperature in FALLBACK_TEMPERATURES:
            options = dataclasses.replace(self.options, temperature=temperature,
                                          beam_size=asr.beam_size if asr.beam_size > 1 and temperature == 0 else None)
            for index, result in zip(todo, self.model.decode(features[todo], options)):
                results[index] = result
            todo = [i for i in todo if self._needs_fallback(results[i])]
            if not todo:
                break
        return results

    def _needs_fallback(self, result) -> bool:
        asr = self.asr
        failed = (result.compression_ratio > asr.compression_ratio_threshold
                  or result.avg_logprob < asr.logprob_threshold)
        return failed and not self._judged_non_speech(result.no_speech_prob, result.avg_logprob)


class _Encoded:
    """The model with one window's audio already encoded. Whisper's word timing runs the whole
    model on the window's mel again (encoder included) to read the decoder's cross-attention; given
    this, it runs the decoder only, on the features the transcript was decoded from."""

    def __init__(self, model, features):
        self._model, self._features = model, features

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def __call__(self, mel, tokens):
        return self._model.decoder(tokens, self._features)


class FasterWhisperTranscriber(Transcriber):
    """The faster-whisper engine (CTranslate2): int8 on a CPU, float16 on CUDA by default.

    Each window is decoded by faster-whisper's own `transcribe` (one window is one 30-s chunk to
    it), with whisper's fallback rule and thresholds, the same prompt (and `[asr] hotwords`) on
    every window and word timestamps on. A window it judges silence (the no-speech rule) yields no segment at all, so
    unlike the openai-whisper engine it leaves nothing in the dropped texts for it.
    """

    engine = "faster-whisper"
    batch_windows = 1  # faster-whisper's transcribe takes one window at a time

    def _load(self, target: str) -> None:
        import torch
        from faster_whisper import WhisperModel, available_models

        asr = self.asr
        path = Path(target)
        if not is_ct2_folder(path) and target not in available_models():
            raise AsrUnavailable(f"the faster-whisper engine needs a CTranslate2 model folder "
                                 f"(model.bin, config.json) or a model name, not {target!r}")
        cuda = self.device.startswith("cuda")
        _, _, index = self.device.partition(":")
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every window at INFO
        self.model = WhisperModel(target, device="cuda" if cuda else "cpu", device_index=int(index or 0),
                                  compute_type=asr.cuda_compute_type if cuda else asr.cpu_compute_type,
                                  cpu_threads=torch.get_num_threads())

    def _reset_sampling(self) -> None:
        import ctranslate2

        ctranslate2.set_random_seed(0)

    def _decode_windows(self, audio_16k: np.ndarray, batch: list[Window]):
        asr = self.asr
        for window in batch:
            segments, _ = self.model.transcribe(
                window.audio(audio_16k), language=asr.language, task="transcribe",
                beam_size=asr.beam_size, best_of=1, temperature=list(FALLBACK_TEMPERATURES),
                compression_ratio_threshold=asr.compression_ratio_threshold,
                log_prob_threshold=asr.logprob_threshold, no_speech_threshold=asr.no_speech_threshold,
                condition_on_previous_text=False, initial_prompt=asr.initial_prompt or None,
                hotwords=" ".join(asr.hotwords) or None,
                without_timestamps=False, word_timestamps=True, vad_filter=False)
            yield window, [_faster_segment(s) for s in segments]


def load_transcriber(asr: AsrConfig, model: str | None = None, device: str | None = None) -> Transcriber:
    """The transcriber of the engine `model` names (`[engine:]model`, see `audit.measure.models`), by
    default `[asr] engine` and `[asr] model`."""
    engine, name = split_reference(model or asr.model, asr.engine)
    kind = WhisperTranscriber if engine == "openai-whisper" else FasterWhisperTranscriber
    return kind(asr, name, device)


def _faster_segment(segment) -> dict:
    """A faster-whisper segment as the dict the openai-whisper engine's segments are (window seconds)."""
    return {"start": segment.start, "end": max(segment.end, segment.start), "text": segment.text,
            "words": [{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                      for w in segment.words or ()],
            "no_speech_prob": segment.no_speech_prob, "avg_logprob": segment.avg_logprob}


def _segments(result, tokenizer, content_s: float) -> list[dict]:
    """The decoded tokens as segments (text between timestamp tokens), in window seconds."""
    segments: list[dict] = []
    text: list[int] = []
    start = 0.0
    for token in result.tokens:
        if token < tokenizer.eot:
            text.append(token)
        elif token >= tokenizer.timestamp_begin:
            time = min((token - tokenizer.timestamp_begin) * SECONDS_PER_TIMESTAMP, content_s)
            if text:
                segments.append(_segment(text, start, time, result, tokenizer))
                text = []
            start = time
    if text:
        segments.append(_segment(text, start, content_s, result, tokenizer))
    return segments


def _segment(tokens: list[int], start: float, end: float, result, tokenizer) -> dict:
    """A segment as whisper.transcribe returns it (`seek` 0: times are window seconds)."""
    return {"seek": 0, "start": start, "end": max(end, start), "tokens": tokens,
            "text": tokenizer.decode(tokens), "no_speech_prob": result.no_speech_prob,
            "avg_logprob": result.avg_logprob}


def _compression_ratio(text: str) -> float:
    """Whisper's own loop measure: repetitive text compresses far better than speech does."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def _utterance(segment: dict, speaker: str) -> Utterance:
    words = tuple(
        Word(float(w["start"]), float(w["end"]), to_simplified(w["word"]).strip(),
             float(w["probability"]) if "probability" in w else None)
        for w in segment.get("words") or ()
        if w["word"].strip()
    )
    start = words[0].start if words else float(segment["start"])
    end = words[-1].end if words else float(segment["end"])
    return Utterance(speaker, start, max(end, start), to_simplified(segment["text"]).strip(), words)


def overlap_s(start: float, end: float, intervals: tuple[Interval, ...]) -> float:
    return sum(max(0.0, min(end, i.end) - max(start, i.start)) for i in intervals)
