"""Speech packed into Whisper's 30-second windows, and every time mapped back to the recording."""

import dataclasses
import itertools

import numpy as np
import pytest

from audit.measure.asr import (
    WINDOW_SAMPLES,
    Piece,
    WhisperTranscriber,
    Window,
    pack_windows,
    speech_pieces,
    speech_spans,
    split_at_seams,
    unreached,
)
from audit.configload import load_config
from audit.records import Channel, ChannelSpeech, Interval

RATE = 16000


def seconds(*values: float) -> tuple[int, ...]:
    return tuple(round(v * RATE) for v in values)


def talk(index: int, *intervals: tuple[float, float]) -> ChannelSpeech:
    return ChannelSpeech(Channel(index, ("agent", "customer")[index]), tuple(Interval(a, b) for a, b in intervals))


AGENT, CUSTOMER = talk(0), talk(1)


def test_speech_is_padded_and_short_gaps_are_kept():
    audio = np.ones(60 * RATE, np.float32)
    intervals = (Interval(1.0, 2.0), Interval(2.5, 3.0), Interval(10.0, 12.0), Interval(59.9, 60.0))
    spans = speech_spans(intervals, pad_s=0.2, merge_gap_s=1.0, audio=audio)
    assert spans == [seconds(0.8, 3.2), seconds(9.8, 12.2), seconds(59.7, 60.0)]


def test_merging_stops_at_a_window_and_spans_never_overlap():
    audio = np.ones(60 * RATE, np.float32)
    intervals = (Interval(1.0, 20.0), Interval(20.3, 35.0))
    spans = speech_spans(intervals, pad_s=0.2, merge_gap_s=1.0, audio=audio)
    assert spans == [seconds(0.8, 20.2), seconds(20.2, 35.2)]  # together they would pass 30 s


def test_speech_longer_than_a_window_is_cut_at_its_quietest_point():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(80 * RATE).astype(np.float32)
    audio[round(27.0 * RATE): round(27.01 * RATE)] *= 0.01  # a breath 26.5 s into the turn
    spans = speech_spans((Interval(0.5, 70.0),), pad_s=0.0, merge_gap_s=1.0, audio=audio)
    assert spans[0] == seconds(0.5, 27.0)
    assert all(end - start <= WINDOW_SAMPLES for start, end in spans)
    assert [s for span in spans for s in span] == sorted(s for span in spans for s in span)
    assert spans[0][0] == seconds(0.5)[0] and spans[-1][1] == seconds(70.0)[0]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # no audio lost or repeated


def test_both_channels_are_laid_out_in_the_order_they_spoke():
    audio = np.ones((2, 20 * RATE), np.float32)
    pieces = speech_pieces(audio, (talk(0, (1.0, 2.0), (8.0, 9.0)), talk(1, (4.0, 5.0))), 0.0, 1.0)
    assert [(p.speech.channel.index, p.start, p.end) for p in pieces] == [
        (0, *seconds(1.0, 2.0)), (1, *seconds(4.0, 5.0)), (0, *seconds(8.0, 9.0))]


def test_pieces_are_packed_first_fit_and_never_split():
    spans = [seconds(0, 10), seconds(20, 32), seconds(40, 49), seconds(50, 55), seconds(60, 90)]
    windows = pack_windows([Piece(AGENT, start, end) for start, end in spans])
    assert [[(p.start, p.end) for p in w.pieces] for w in windows] == [
        [spans[0], spans[1], spans[3]], [spans[2]], [spans[4]]]  # the 5 s reply fills window 1
    assert [[p.offset for p in w.pieces] for w in windows] == [[0, 10 * RATE, 22 * RATE], [0], [0]]
    assert [w.samples for w in windows] == [27 * RATE, 9 * RATE, 30 * RATE]


def test_no_speech_makes_no_windows():
    assert pack_windows(speech_pieces(np.zeros((2, RATE), np.float32), (AGENT, CUSTOMER), 0.2, 1.0)) == []


WINDOW = Window((Piece(AGENT, *seconds(1.0, 3.0), 0), Piece(CUSTOMER, *seconds(10.0, 15.0), 2 * RATE)))
FIRST, SECOND = WINDOW.pieces


def test_a_word_maps_back_to_its_recording_time():
    assert WINDOW.place(0.5, 1.0) == (FIRST, 1.5, 2.0)
    assert WINDOW.place(2.5, 2.9) == (SECOND, pytest.approx(10.5, abs=1e-9), pytest.approx(10.9, abs=1e-9))


def test_a_word_over_a_seam_stays_inside_the_piece_holding_its_middle():
    assert WINDOW.place(1.8, 2.4) == (SECOND, 10.0, pytest.approx(10.4, abs=1e-9))
    assert WINDOW.place(1.6, 2.2) == (FIRST, pytest.approx(2.6, abs=1e-9), 3.0)


def test_a_segment_over_a_seam_is_split_between_the_speakers():
    words = [{"word": "你好", "start": 0.5, "end": 1.0}, {"word": "请问", "start": 1.2, "end": 1.9},
             {"word": "我想", "start": 2.1, "end": 2.6}]
    segment = {"text": "你好请问我想", "start": 0.4, "end": 2.6, "words": words,
               "no_speech_prob": 0.1, "avg_logprob": -0.2}
    (first_piece, first), (second_piece, second) = split_at_seams(segment, WINDOW)
    assert first_piece.speech.channel.speaker == "agent"
    assert (first["text"], first["start"], first["end"]) == ("你好请问", 1.5, pytest.approx(2.9))
    assert second_piece.speech.channel.speaker == "customer"
    assert (second["text"], second["start"], second["end"]) == ("我想", pytest.approx(10.1), pytest.approx(10.6))
    assert second["no_speech_prob"] == 0.1


def test_a_segment_within_one_piece_keeps_its_text_and_a_wordless_one_its_span():
    words = [{"word": "您好", "start": 2.2, "end": 2.8}]
    ((_, part),) = split_at_seams({"text": " 您好。", "start": 2.1, "end": 2.9, "words": words}, WINDOW)
    assert (part["text"], part["start"], part["end"]) == (" 您好。", pytest.approx(10.2), pytest.approx(10.8))
    ((_, bare),) = split_at_seams({"text": "嗯", "start": 0.2, "end": 0.6, "words": []}, WINDOW)
    assert (bare["start"], bare["end"]) == (pytest.approx(1.2), pytest.approx(1.6))


@pytest.fixture(scope="module")
def transcriber(tiny_whisper):
    asr = dataclasses.replace(load_config().asr, cpu_batch_windows=2, redecode_rounds=0)
    return WhisperTranscriber(asr, str(tiny_whisper), "cpu")


def test_the_model_hears_only_the_padded_speech_and_its_words_land_in_the_recording(transcriber, monkeypatch):
    """A real decode of two channels on the random model; word timing is pinned to a known place
    in the window so its way back to the recording is checked exactly."""
    import whisper
    import whisper.timing

    rng = np.random.default_rng(1)
    audio = rng.standard_normal((2, 90 * RATE)).astype(np.float32) * 0.1
    speech = (talk(0, (5.0, 7.0), (40.0, 42.0)), talk(1, (10.0, 38.0), (50.0, 60.0), (62.0, 80.0)))
    heard, batches = [], []
    real_mel, real_decode = whisper.log_mel_spectrogram, transcriber.model.decode

    def mel_spy(samples, n_mels, padding, device):
        heard.append(np.asarray(samples).copy())
        assert len(samples) + padding == WINDOW_SAMPLES
        return real_mel(samples, n_mels, padding=padding, device=device)

    def decode_spy(features, options):
        batches.append((len(features), options.temperature))
        assert options.language == "zh" and options.prompt == transcriber.asr.initial_prompt
        return real_decode(features, options)

    def words_at_3_s(segments, **_):
        for segment in segments:
            segment["words"] = [{"word": "好", "start": 3.0, "end": 3.5, "probability": 1.0}]

    monkeypatch.setattr(whisper, "log_mel_spectrogram", mel_spy)
    monkeypatch.setattr(transcriber.model, "decode", decode_spy)
    monkeypatch.setattr(whisper.timing, "add_word_timestamps", words_at_3_s)
    transcript = transcriber.transcribe(audio, speech)

    def cut(channel, start, end):
        return audio[channel, round(start * RATE): round(end * RATE)]

    # first fit in spoken order: the agent's two turns and the customer's 10.4 s share window 1
    assert len(heard) == 3
    np.testing.assert_array_equal(heard[0], np.concatenate([cut(0, 4.8, 7.2), cut(0, 39.8, 42.2),
                                                            cut(1, 49.8, 60.2)]))
    np.testing.assert_array_equal(heard[1], cut(1, 9.8, 38.2))
    np.testing.assert_array_equal(heard[2], cut(1, 61.8, 80.2))
    assert [size for size, temperature in batches if temperature == 0.0] == [2, 1]
    # window time 3.0 s lies in the agent's second piece (laid at 2.4 s), or 3 s into the others
    expected = [("agent", 40.4, 40.9), ("customer", 12.8, 13.3), ("customer", 64.8, 65.3)]
    utterances = transcript.utterances + tuple(d.utterance for d in transcript.dropped)
    assert utterances, "the random model said nothing"
    for utterance in utterances:
        (word,) = utterance.words
        assert any(utterance.speaker == who and (word.start, word.end) == (pytest.approx(a), pytest.approx(b))
                   for who, a, b in expected)
    assert {u.speaker for u in utterances} == {"agent", "customer"}


def _pin_words_at(monkeypatch, transcriber, window_s: float) -> list[np.ndarray]:
    """Every window decoded as one sure segment whose one word is pinned at `window_s`; the audio
    of every window the model is given is returned (appended as it is decoded)."""
    import whisper
    import whisper.timing
    from whisper.decoding import DecodingResult

    heard = []
    real_mel = whisper.log_mel_spectrogram
    tokenizer = transcriber.tokenizer
    tokens = [tokenizer.timestamp_begin, *tokenizer.encode("好"), tokenizer.timestamp_begin + 50]

    def sure_segment(features, options):
        return [DecodingResult(audio_features=f, language="zh", tokens=tokens, text="好", avg_logprob=-0.1,
                               no_speech_prob=0.01, temperature=0.0, compression_ratio=1.0) for f in features]

    monkeypatch.setattr(transcriber.model, "decode", sure_segment)

    def mel_spy(samples, n_mels, padding, device):
        heard.append(np.asarray(samples).copy())
        return real_mel(samples, n_mels, padding=padding, device=device)

    def pinned(segments, **_):
        for segment in segments:
            segment["words"] = [{"word": "好", "start": window_s, "end": window_s + 0.3, "probability": 1.0}]

    monkeypatch.setattr(whisper, "log_mel_spectrogram", mel_spy)
    monkeypatch.setattr(whisper.timing, "add_word_timestamps", pinned)
    return heard


def test_pieces_after_the_last_text_of_a_window_are_decoded_again_the_last_time_alone(transcriber, monkeypatch):
    """Whisper often stops before the end of a packed window: every piece after the last one any
    text came from is packed again, and in the last round decoded alone."""
    rng = np.random.default_rng(2)
    audio = rng.standard_normal((2, 90 * RATE)).astype(np.float32) * 0.1
    speech = (talk(0, (5.0, 7.0), (40.0, 42.0)), talk(1, (10.0, 38.0), (50.0, 60.0), (62.0, 80.0)))
    monkeypatch.setattr(transcriber, "asr", dataclasses.replace(transcriber.asr, redecode_rounds=2))
    heard = _pin_words_at(monkeypatch, transcriber, 0.5)  # text only ever in a window's first piece
    transcript = transcriber.transcribe(audio, speech)

    def cut(channel, start, end):
        return audio[channel, round(start * RATE): round(end * RATE)]

    assert len(heard) == 5
    # round 1: the agent's second turn and the customer's 10.4 s were not reached in window 1
    np.testing.assert_array_equal(heard[3], np.concatenate([cut(0, 39.8, 42.2), cut(1, 49.8, 60.2)]))
    np.testing.assert_array_equal(heard[4], cut(1, 49.8, 60.2))  # round 2: alone
    starts = sorted((u.speaker, round(u.words[0].start, 2))
                    for u in transcript.utterances + tuple(d.utterance for d in transcript.dropped))
    assert starts == [("agent", 5.3), ("agent", 40.3), ("customer", 10.3), ("customer", 50.3),
                      ("customer", 62.3)]


def test_a_window_the_model_left_silent_settles_its_first_piece():
    window = pack_windows([Piece(AGENT, 0, RATE), Piece(CUSTOMER, 2 * RATE, 3 * RATE), Piece(AGENT, 4 * RATE, 5 * RATE)])
    first, second, third = window[0].pieces
    assert unreached(window[0], [], 1.0) == [second, third]
    assert unreached(window[0], [(second, 3.0)], 1.0) == [third]
    assert unreached(window[0], [(third, 5.0), (first, 1.0)], 1.0) == []


def test_the_end_of_a_piece_the_model_stopped_inside_is_decoded_again():
    """natural-eval4 k01: the agent's question (92.1-100.9 s) and, 1.9 s later, the closing
    (102.8-106.7 s) are one piece; Whisper wrote the question and stopped. The closing's speech,
    after the piece's last text, is decoded again from there; a piece whose text reaches its last
    speech, or leaves less than `tail_min_s` of it, is not."""
    agent = talk(0, (92.1, 97.8), (98.2, 100.9), (102.8, 106.7))
    (window,) = pack_windows([Piece(agent, round(90.8 * RATE), round(106.9 * RATE))])
    (piece,) = window.pieces
    (tail,) = unreached(window, [(piece, 95.0), (piece, 100.9)], 1.0)
    assert (tail.speech, tail.start, tail.end, tail.offset) == (agent, round(100.9 * RATE), piece.end, 0)
    assert unreached(window, [(piece, 106.5)], 1.0) == []
    assert unreached(window, [(piece, 100.9)], 4.0) == []  # 3.9 s of speech after the text


def test_a_stretch_the_vad_cut_out_of_a_sentence_is_decoded_with_it():
    """fixtures/real-dev a1_BAC009S0150W0193 as the agent's turn of an 8 kHz call (bench/asr_bench.py):
    the VAD's tune test takes 2.47-4.16 s of 那么直接发放现金会是最有效的方式 for a tone, and
    the sentence comes back as two intervals. With the default padding and merge gap they are one
    piece, the cut-out words with them (a merge gap of 1.0 s decoded 那么直接发放 | 了有效的方式)."""
    asr = load_config().asr
    audio = np.ones(10 * RATE, np.float32)
    spans = speech_spans((Interval(1.22, 2.47), Interval(4.16, 5.33)), asr.clip_pad_s, asr.clip_merge_gap_s, audio)
    assert spans == [seconds(1.02, 5.53)]


class _FakeFasterWhisper:
    def __init__(self):
        self.calls = []

    def transcribe(self, audio, **options):
        self.calls.append(options)
        return iter(()), None


def test_hotwords_reach_both_engines(tiny_whisper):
    """`[asr] hotwords`: faster-whisper's own `hotwords`, and in front of openai-whisper's prompt."""
    from audit.measure.asr import FasterWhisperTranscriber

    config = load_config()
    assert config.asr.hotwords == ()  # off by default (measured no better, see configs/default.toml)
    asr = dataclasses.replace(config.asr, hotwords=("星河通信", "工号"))
    faster = object.__new__(FasterWhisperTranscriber)
    faster.asr, faster.model = asr, _FakeFasterWhisper()
    window = Window((Piece(AGENT, 0, RATE),))
    assert [segments for _, segments in faster._decode_windows(np.zeros((1, RATE), np.float32), [window])] == [[]]
    assert faster.model.calls[0]["hotwords"] == "星河通信 工号"
    assert faster.model.calls[0]["initial_prompt"] == config.asr.initial_prompt
    plain = object.__new__(FasterWhisperTranscriber)
    plain.asr, plain.model = config.asr, _FakeFasterWhisper()
    list(plain._decode_windows(np.zeros((1, RATE), np.float32), [window]))
    assert plain.model.calls[0]["hotwords"] is None
    openai = WhisperTranscriber(asr, str(tiny_whisper), "cpu")
    assert openai.options.prompt == "星河通信 工号 " + config.asr.initial_prompt
    assert WhisperTranscriber(config.asr, str(tiny_whisper), "cpu").options.prompt == config.asr.initial_prompt
