"""The prosody norms: 语速适中 (rate, and adapting to a slow customer) and 语气温和 (no raised voice,
no harsh jumps, not mechanical).

All of them judge what `audit.measure.prosody` measured (`call.prosody`); what counts as raised, a jump or
flat is decided there, under `[prosody]` in the config. These rules say how much of it is too much.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.judge.checks.base import CallContext, Outcome, check
from audit.measure.prosody import Prosody, SpeakerProsody, UtteranceProsody
from audit.records import Evidence


def _agent(call: CallContext) -> tuple[SpeakerProsody | None, str]:
    """The agent's summary, or None and why: only a mono recording without speaker labels has none."""
    agent = call.prosody.speaker("agent")
    return agent, "" if agent else "单声道录音未区分座席和客户(转写也没有标注说话人),无法单独测量座席"


def _agent_utterances(prosody: Prosody) -> list[UtteranceProsody]:
    return [u for u in prosody.utterances if u.speaker == "agent"]


def _said(call: CallContext, measured: UtteranceProsody) -> Evidence:
    return Evidence(measured.start, measured.end, measured.speaker,
                    call.transcript.utterances[measured.index].text, utterance=measured.index)


def _rate_of(measured: UtteranceProsody | SpeakerProsody, source: str) -> float | None:
    return measured.rate_cpm if source == "transcript" else measured.rate_audio_cpm


def _measures(measured: UtteranceProsody, source: str) -> tuple[float, ...]:
    """An utterance's rates (字/分) that a verdict on it must agree with: by transcript characters
    and, where measured, by syllable nuclei too (an ASR word timing a few tenths of a second short
    makes a short turn look fast; the audio does not move with it); the audio alone otherwise."""
    rates = [measured.rate_audio_cpm] + ([measured.rate_cpm] if source == "transcript" else [])
    return tuple(r for r in rates if r is not None)


def _rates(agent: SpeakerProsody, *others: SpeakerProsody) -> tuple[str, float | None]:
    """Characters from the transcript when every speaker has them, else syllable nuclei."""
    if all(s.rate_cpm is not None for s in (agent, *others)):
        return "transcript", agent.rate_cpm
    return "audio", agent.rate_audio_cpm


SOURCE_NAMES = {"transcript": "按转写字数", "audio": "按音频音节"}


@dataclass(frozen=True)
class RateParams:
    min_cpm: float = field(metadata={"min": 30.0, "max": 600.0})
    max_cpm: float = field(metadata={"min": 30.0, "max": 900.0})
    utterance_min_cpm: float = field(metadata={"min": 10.0, "max": 600.0})
    utterance_max_cpm: float = field(metadata={"min": 30.0, "max": 1200.0})
    max_evidence: int = field(metadata={"min": 1, "max": 50})


@check("prosody.rate", RateParams)
def rate(call: CallContext, params: RateParams) -> Outcome:
    """语速适中 (seed 002, 000, 001): the agent's rate inside the band, per call and per utterance."""
    agent, reason = _agent(call)
    if agent is None:
        return Outcome("not_measurable", reason)
    source, value = _rates(agent)
    if value is None:
        return Outcome("not_measurable", "座席语音太少,无法测量语速")
    rated = [u for u in _agent_utterances(call.prosody) if _rate_of(u, source) is not None]
    # one utterance is too fast (slow) only when every measure of it says so
    fast = [u for u in rated if min(_measures(u, source)) > params.utterance_max_cpm]
    slow = [u for u in rated if max(_measures(u, source)) < params.utterance_min_cpm]
    problems = []
    if value > params.max_cpm:
        problems.append(f"座席平均语速{value:.0f}字/分,快于{params.max_cpm:g}字/分")
    elif value < params.min_cpm:
        problems.append(f"座席平均语速{value:.0f}字/分,慢于{params.min_cpm:g}字/分")
    if fast:
        problems.append(f"{len(fast)}句快于{params.utterance_max_cpm:g}字/分")
    if slow:
        problems.append(f"{len(slow)}句慢于{params.utterance_min_cpm:g}字/分")
    too_slow = value < params.min_cpm or (bool(slow) and not fast)
    worst = sorted(rated, key=lambda u: _rate_of(u, source), reverse=not too_slow)
    worst = worst[: params.max_evidence] if problems else []
    details = {
        "source": source,
        "rate_cpm": round(value, 1),
        "transcript_rate_cpm": None if agent.rate_cpm is None else round(agent.rate_cpm, 1),
        "audio_rate_cpm": None if agent.rate_audio_cpm is None else round(agent.rate_audio_cpm, 1),
        "band_cpm": [params.min_cpm, params.max_cpm],
        "worst": [{"utterance": u.index, "start": round(u.start, 2),
                   "rate_cpm": round(_rate_of(u, source), 1)} for u in worst],
    }
    evidence = tuple(_said(call, u) for u in worst)
    how = SOURCE_NAMES[source]
    if problems:
        return Outcome("fail", f"{';'.join(problems)}({how})", evidence, details)
    return Outcome("pass", f"座席语速{value:.0f}字/分,在{params.min_cpm:g}-{params.max_cpm:g}字/分之内({how})",
                   evidence, details)


@dataclass(frozen=True)
class RateVsCustomerParams:
    slow_customer_cpm: float = field(metadata={"min": 30.0, "max": 600.0})
    max_ratio: float = field(metadata={"min": 1.0, "max": 5.0})
    max_evidence: int = field(metadata={"min": 1, "max": 50})


@check("prosody.rate_vs_customer", RateVsCustomerParams)
def rate_vs_customer(call: CallContext, params: RateVsCustomerParams) -> Outcome:
    """根据客户的语速进行适当调整 (seed 002; 001: 放慢语速,让客户跟上节奏): with a slow customer,
    the agent is not much faster than them."""
    agent, reason = _agent(call)
    if agent is None:
        return Outcome("not_measurable", reason)
    customer = call.prosody.speaker("customer")
    if customer is None:
        return Outcome("not_measurable", "没有区分出客户的语音,无法比较语速")
    source, agent_rate = _rates(agent, customer)
    customer_rate = _rate_of(customer, source)
    if agent_rate is None or not customer_rate:  # no customer syllables found: nothing to compare
        return Outcome("not_measurable", "座席或客户的语音太少,无法比较语速")
    ratio = agent_rate / customer_rate
    details = {"source": source, "agent_rate_cpm": round(agent_rate, 1),
               "customer_rate_cpm": round(customer_rate, 1), "ratio": round(ratio, 2)}
    if customer_rate >= params.slow_customer_cpm:
        return Outcome("pass", f"客户语速{customer_rate:.0f}字/分,不算慢;座席{agent_rate:.0f}字/分",
                       details=details)
    if ratio <= params.max_ratio:
        return Outcome("pass", f"客户语速较慢({customer_rate:.0f}字/分),座席{agent_rate:.0f}字/分,已放慢配合",
                       details=details)
    rated = [u for u in _agent_utterances(call.prosody) if _rate_of(u, source) is not None]
    fastest = sorted(rated, key=lambda u: _rate_of(u, source), reverse=True)[: params.max_evidence]
    return Outcome("fail", f"客户语速较慢({customer_rate:.0f}字/分),座席{agent_rate:.0f}字/分,"
                           f"是客户的{ratio:.1f}倍,超过{params.max_ratio:g}倍",
                   tuple(_said(call, u) for u in fastest), details)


@dataclass(frozen=True)
class RaisedVoiceParams:
    max_episodes: int = field(metadata={"min": 0, "max": 100})


@check("prosody.raised_voice", RaisedVoiceParams)
def raised_voice(call: CallContext, params: RaisedVoiceParams) -> Outcome:
    """语气温和 (seed 000: 温和有礼的语气): no sustained speech well above the agent's own level."""
    agent, reason = _agent(call)
    if agent is None:
        return Outcome("not_measurable", reason)
    if agent.level_baseline_dbfs is None:
        return Outcome("not_measurable", "座席语音太短,无法确定其平常音量")
    episodes = [e for e in call.prosody.raised if e.speaker == "agent"]
    details = {
        "baseline_dbfs": round(agent.level_baseline_dbfs, 1),
        "episodes": [{"start": round(e.start, 2), "end": round(e.end, 2), "rise_db": round(e.rise_db, 1),
                      "utterances": list(e.utterances)} for e in episodes],
    }
    if len(episodes) <= params.max_episodes:
        return Outcome("pass", f"座席没有明显提高音量(平常{agent.level_baseline_dbfs:.0f}dBFS)",
                       details=details)
    evidence = []
    for episode in episodes:
        held = [call.prosody.utterances[i] for i in episode.utterances]
        evidence += [_said(call, u) for u in held] or [Evidence(episode.start, episode.end, "agent", "")]
    loudest = max(e.rise_db for e in episodes)
    return Outcome("fail", f"座席{len(episodes)}次提高音量,最多比其平常音量高{loudest:.0f}dB",
                   tuple(evidence), details)


@dataclass(frozen=True)
class HarshJumpParams:
    max_jumps: int = field(metadata={"min": 0, "max": 100})


@check("prosody.harsh_jump", HarshJumpParams)
def harsh_jump(call: CallContext, params: HarshJumpParams) -> Outcome:
    """语气温和, not harsh (seed 000, 002): no sudden rise in loudness, or in loudness and pitch,
    from one of the agent's utterances to the next (Aliyun 能量检测 jump mode, anchors 1.3)."""
    agent, reason = _agent(call)
    if agent is None:
        return Outcome("not_measurable", reason)
    leveled = [u for u in _agent_utterances(call.prosody) if u.level_dbfs is not None]
    if len(leveled) < 2:
        return Outcome("not_measurable", "座席不足两句话,无法比较前后音量")
    jumps = [j for j in call.prosody.jumps if j.speaker == "agent"]
    details = {"jumps": [{"before": j.before, "after": j.after, "start": round(j.start, 2),
                          "level_rise_db": round(j.level_rise_db, 1),
                          "pitch_rise_st": None if j.pitch_rise_st is None else round(j.pitch_rise_st, 1)}
                         for j in jumps]}
    if len(jumps) <= params.max_jumps:
        return Outcome("pass", "座席前后语句的音量和音高没有骤升", details=details)
    evidence = tuple(_said(call, call.prosody.utterances[j.after]) for j in jumps)
    biggest = max(j.level_rise_db for j in jumps)
    return Outcome("fail", f"座席{len(jumps)}次语气骤变,音量比上一句最多高{biggest:.0f}dB",
                   evidence, details)


@dataclass(frozen=True)
class MonotoneParams:
    opening_window_s: float = field(metadata={"min": 1.0, "max": 300.0})
    max_monotone_share: float = field(metadata={"min": 0.0, "max": 1.0})


@check("prosody.monotone", MonotoneParams)
def monotone(call: CallContext, params: MonotoneParams) -> Outcome:
    """避免机械、冷漠的语调 (seed 002; 001: 语气平平): the opening is not flat, and most of the
    agent's longer turns (the explanations) are not flat either."""
    agent, reason = _agent(call)
    if agent is None:
        return Outcome("not_measurable", reason)
    judged = [u for u in _agent_utterances(call.prosody) if u.monotone is not None]
    if not judged:
        return Outcome("not_measurable", "座席没有足够长的语句,无法判断语调")
    flat = [u for u in judged if u.monotone]
    opening = next((u for u in _agent_utterances(call.prosody) if u.end >= call.answer_s), None)
    opening_flat = (opening is not None and opening.monotone is True
                    and opening.start <= call.answer_by_s + params.opening_window_s)
    share = len(flat) / len(judged)
    details = {"judged": len(judged), "monotone": [u.index for u in flat], "share": round(share, 2),
               "opening_monotone": opening_flat}
    problems = []
    if opening_flat:
        problems.append(f"开场白语调平淡(音高起伏仅{opening.pitch_range_st:.1f}个半音)")
    if share > params.max_monotone_share:
        problems.append(f"{len(flat)}/{len(judged)}句较长的话语调平淡")
    if not problems:
        return Outcome("pass", f"座席语调有起伏({len(flat)}/{len(judged)}句较长的话平淡)", details=details)
    return Outcome("fail", ";".join(problems), tuple(_said(call, u) for u in flat), details)
