"""The timing norms: three rings, prompt first words, holds and dead air, interruptions, the ending.

All of them judge what `audit.measure.timing` measured from the audio; the thresholds are the rules'
parameters in `configs/default.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.judge.checks.base import CallContext, Outcome, check
from audit.phrases import Phrase, says
from audit.measure.timing import Silence
from audit.records import Evidence, Interval
from audit.textnorm import normalize


# The evidence of a missing thanks is the hold and this long after it (s): the agent's return,
# where the thanks was due, so the reviewer hears the hold end and what the agent said instead.
THANKS_DUE_S = 5.0


def _no_speech(call: CallContext) -> bool:
    return not any(s.intervals for s in call.speech)


@dataclass(frozen=True)
class ThreeRingsParams:
    max_rings: int = field(metadata={"min": 1, "max": 20})


@check("timing.three_rings", ThreeRingsParams)
def three_rings(call: CallContext, params: ThreeRingsParams) -> Outcome:
    """Seed 002: 应在电话铃响三声之内接听. Rings from the ringback heard, else call metadata."""
    timing = call.timing
    if timing.ring_count is None:
        return Outcome("not_measurable", "录音中没有回铃音,元数据也没有振铃和接听时间,无法判断响铃声数")
    waited = timing.answer_s - timing.ring_start_s
    waited_latest = timing.answer_latest_s - timing.ring_start_s
    source = "回铃音" if timing.ring_source == "audio" else "呼叫元数据"
    details = {"ring_count": timing.ring_count, "ring_start_s": round(timing.ring_start_s, 2),
               "answer_s": round(timing.answer_s, 2), "answer_latest_s": round(timing.answer_latest_s, 2),
               "ring_to_answer_s": round(waited, 2), "ring_to_answer_latest_s": round(waited_latest, 2),
               "source": timing.ring_source}
    evidence = (Evidence(max(0.0, timing.ring_start_s), max(0.0, timing.answer_s), "customer",
                         f"响铃{timing.ring_count}声({source})"),)
    # The rings are counted from the bursts heard; only the seconds depend on the answer moment.
    rang = f"{waited:.1f}秒" if timing.answer_exact else f"{waited:.1f}–{waited_latest:.1f}秒"
    if timing.ring_count <= params.max_rings:
        return Outcome("pass", f"响铃{timing.ring_count}声内接听(振铃{rang},{source})",
                       evidence, details)
    return Outcome("fail", f"响铃{timing.ring_count}声才接听(振铃{rang},{source}),"
                           f"超过{params.max_rings}声", evidence, details)


@dataclass(frozen=True)
class FirstWordsParams:
    max_delay_s: float = field(metadata={"min": 0.0, "max": 60.0})


@check("timing.first_words", FirstWordsParams)
def first_words(call: CallContext, params: FirstWordsParams) -> Outcome:
    """The agent speaks first and promptly after answering (Aliyun 非正常接听: >3 s, anchors 1.3).

    Judged on what the recording proves: when only the window the answer lies in is known (the
    ringback rang out, the line did not audibly open, no metadata), the call fails only if even
    the latest possible answer leaves the agent silent too long, and passes only if even the
    earliest does not; in between it is not measurable, and the message says why.
    """
    timing = call.timing
    if _no_speech(call):
        return Outcome("not_measurable", "录音中没有检测到语音")
    assumed = "(录音无振铃信息,以录音开始为接听时刻)" if timing.answer_source == "recording_start" else ""
    if timing.agent_first_words_s is None:
        return Outcome("fail", f"接听后座席始终没有说话{assumed}",
                       (Evidence(timing.answer_latest_s, timing.duration_s, "agent", ""),))
    longest, shortest = timing.first_words_delay_s, timing.first_words_delay_min_s
    first = next((i for i, u in enumerate(call.transcript.utterances) if u.speaker in call.agent_speakers
                  and u.end >= timing.agent_first_words_s), None)
    evidence = (Evidence(timing.answer_s, timing.agent_first_words_s + 2.0, "agent",
                         "" if first is None else call.transcript.utterances[first].text, utterance=first),)
    details = {"answer_s": round(timing.answer_s, 2), "answer_latest_s": round(timing.answer_latest_s, 2),
               "answer_source": timing.answer_source,
               "agent_first_words_s": round(timing.agent_first_words_s, 2),
               "first_words_delay_s": round(longest, 2), "first_words_delay_min_s": round(shortest, 2)}
    limit = f"{params.max_delay_s:g}秒"
    if timing.answer_exact:
        if longest <= params.max_delay_s:
            return Outcome("pass", f"接听后{longest:.1f}秒开口{assumed}", evidence, details)
        return Outcome("fail", f"接听后{longest:.1f}秒座席才开口,超过{limit}{assumed}", evidence, details)
    window = (f"接听时刻只能确定在{timing.answer_s:.1f}–{timing.answer_latest_s:.1f}秒之间"
              f"(最后一声回铃音结束后,线路未见接通信号,也没有元数据)")
    if shortest > params.max_delay_s:
        return Outcome("fail", f"即使按最晚的接听时刻,座席也在{shortest:.1f}秒后才开口,超过{limit};{window}",
                       evidence, details)
    if longest <= params.max_delay_s:
        return Outcome("pass", f"接听后至多{longest:.1f}秒开口;{window}", evidence, details)
    return Outcome("not_measurable", f"{window},座席开口前等待了{shortest:.1f}–{longest:.1f}秒,"
                                     f"无法证明超过{limit}", evidence, details)


@dataclass(frozen=True)
class DeadAirParams:
    max_silence_s: float = field(metadata={"min": 1.0, "max": 600.0})
    # s; agent speech the ASR wrote nothing for that ends this close before a silence may be the
    # announcement (请稍等 at the end of a turn, left out of Whisper's text): unproven, not failed
    unwritten_announcement_s: float = field(metadata={"min": 0.0, "max": 30.0})


@check("timing.dead_air", DeadAirParams)
def dead_air(call: CallContext, params: DeadAirParams) -> Outcome:
    """Unannounced silence (Google CCAI flags >5 s, Contact Lens >3 s; anchors 3.2).

    A silence right after agent speech that the ASR left unwritten may have been announced in
    those words: it is `unsure` (a reviewer listens), and the rule fails on the others alone.
    """
    if _no_speech(call):
        return Outcome("not_measurable", "录音中没有检测到语音")
    long_ones = [s for s in call.timing.silences if not s.is_hold and s.duration > params.max_silence_s]
    details = {"dead_air": [{"start": round(s.start, 2), "end": round(s.end, 2),
                             "duration_s": round(s.duration, 2), "music": s.music} for s in long_ones]}
    if not long_ones:
        return Outcome("pass", f"没有超过{params.max_silence_s:g}秒的未告知静音", details=details)

    def unheard_before(silence: Silence) -> Interval | None:
        """The unwritten agent speech that ends at or just before the silence, if any."""
        return next((i for i in call.unwritten
                     if abs(i.end - silence.start) <= params.unwritten_announcement_s), None)

    sure = [s for s in long_ones if unheard_before(s) is None]
    if not sure:
        unheard = unheard_before(long_ones[0])
        evidence = tuple(Evidence(s.start, s.end, "agent", f"(静音{s.duration:.0f}秒,之前的语音未转写)")
                         for s in long_ones)
        return Outcome("unsure", f"静音前坐席有{unheard.duration:.1f}秒语音未转写出文字({unheard.start:.1f}秒起),"
                       f"可能已告知,无法确认:{len(long_ones)}处静音", evidence, details)
    evidence = tuple(Evidence(s.start, s.end, "agent", f"(静音{s.duration:.0f}秒,未告知客户)")
                     for s in sure)
    total = sum(s.duration for s in sure)
    return Outcome("fail", f"{len(sure)}处未告知的静音,共{total:.0f}秒(未说请您稍等)",
                   evidence, details)


@dataclass(frozen=True)
class HoldOverrunParams:
    grace_s: float = field(metadata={"min": 0.0, "max": 600.0})  # s a hold may last beyond its promise
    grace_share: float = field(metadata={"min": 0.0, "max": 10.0})  # ... at most this share of the promise


@check("timing.hold_overrun", HoldOverrunParams)
def hold_overrun(call: CallContext, params: HoldOverrunParams) -> Outcome:
    """A hold must not outlast what the agent promised (seed 000: 请您稍等1分钟), give or take
    `grace_s`, and a short promise no more than `grace_share` of itself (five seconds promised,
    fourteen waited, is over)."""
    holds = [s for s in call.timing.silences if s.is_hold]
    over = [s for s in holds
            if s.duration > s.promised_s + min(params.grace_s, params.grace_share * s.promised_s)]
    details = {"holds": [{"start": round(s.start, 2), "end": round(s.end, 2),
                          "duration_s": round(s.duration, 2), "promised_s": s.promised_s,
                          "music": s.music} for s in holds]}
    if not over:
        message = f"{len(holds)}次保持均未超过承诺时长" if holds else "通话中没有保持"
        return Outcome("pass", message, details=details)
    evidence = tuple(Evidence(s.announcement.start, s.end, "agent", s.announcement.text) for s in over)
    worst = max(over, key=lambda s: s.duration - s.promised_s)
    return Outcome("fail", f"保持{worst.duration:.0f}秒,超过承诺的{worst.promised_s:.0f}秒",
                   evidence, details)


@dataclass(frozen=True)
class HoldThanksParams:
    pass


@check("timing.hold_thanks", HoldThanksParams)
def hold_thanks(call: CallContext, params: HoldThanksParams) -> Outcome:
    """Thank the customer after a hold (seed 000 / BRIEF: 感谢您的耐心等待)."""
    holds = [s for s in call.timing.silences if s.is_hold]
    missing = [s for s in holds if s.thanks is None]
    if not holds:
        return Outcome("pass", "通话中没有保持")
    if not missing:
        return Outcome("pass", "每次保持后都感谢了客户的等待",
                       tuple(Evidence(s.thanks.start, s.thanks.end, "agent", s.thanks.text) for s in holds))
    evidence = tuple(Evidence(s.start, s.end + THANKS_DUE_S, "agent", s.announcement.text) for s in missing)
    return Outcome("fail", f"{len(missing)}次保持后没有感谢客户的耐心等待", evidence)


@dataclass(frozen=True)
class InterruptionParams:
    max_count: int = field(metadata={"min": 0, "max": 100})


@check("timing.interruption", InterruptionParams)
def interruption(call: CallContext, params: InterruptionParams) -> Outcome:
    """Do not interrupt the customer (seed 003: 不随意打断客户; seed 002: 避免打断或催促)."""
    timing = call.timing
    if not timing.two_channel:
        return Outcome("not_measurable", "单声道录音无法区分双方同时说话,无法判断抢话")
    agent, customer = timing.interruptions, timing.customer_interruptions
    details = {
        "count": len(agent),
        "overlap_s": round(sum(o.duration for o in agent), 2),
        "customer_interruptions": [{"start": round(o.start, 2), "end": round(o.end, 2), "text": o.text}
                                   for o in customer],
    }
    evidence = tuple(Evidence(o.start, o.end, "agent", o.text) for o in agent)
    if len(agent) <= params.max_count:
        return Outcome("pass", "座席没有打断客户", evidence, details)
    return Outcome("fail", f"座席打断客户{len(agent)}次,重叠共{details['overlap_s']:.1f}秒",
                   evidence, details)


@dataclass(frozen=True)
class CutOffParams:
    max_end_gap_s: float = field(metadata={"min": 0.0, "max": 60.0})
    closing_window_s: float = field(metadata={"min": 1.0, "max": 300.0})
    closing_phrases: tuple[str, ...]


@check("timing.cut_off", CutOffParams)
def cut_off(call: CallContext, params: CutOffParams) -> Outcome:
    """The agent must not hang up on the customer (seed 001: 员工主动挂线 upheld as a complaint)."""
    timing = call.timing
    if timing.last_speaker is None or timing.last_words_end_s is None:
        return Outcome("not_measurable", "无法确定最后说话的一方")
    phrases = [Phrase.of(p) for p in params.closing_phrases]
    closing = [u for u in call.transcript.utterances
               if u.speaker in call.agent_speakers and u.start >= timing.last_words_end_s - params.closing_window_s
               and says(normalize(u.text).text, phrases)]
    tail = [(i, u) for i, u in enumerate(call.transcript.utterances) if u.end >= timing.last_words_end_s - 5.0]
    gap = timing.end_gap_s
    details = {"last_speaker": timing.last_speaker, "last_words_end_s": round(timing.last_words_end_s, 2),
               "end_gap_s": round(gap, 2), "agent_closing": bool(closing)}
    evidence = tuple(Evidence(u.start, timing.duration_s if i == tail[-1][0] else u.end, u.speaker, u.text,
                              utterance=i) for i, u in tail)
    problems = []
    if timing.last_speaker == "customer" and gap <= params.max_end_gap_s:
        problems.append(f"客户还在说话,{gap:.1f}秒后通话就结束了")
    if call.transcript.source != "none" and not closing:
        problems.append("座席没有结束语就结束了通话")
    if problems:
        return Outcome("fail", ";".join(problems), evidence, details)
    return Outcome("pass", f"座席结束语后正常结束(最后说话:{timing.last_speaker})", evidence, details)
