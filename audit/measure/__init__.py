"""Measuring: what the recording holds, as typed records and no judgement.

`decode` (audio and metadata), `speech` (voice activity per channel), `asr` / `asr_service` /
`models` / `ct2convert` (Whisper transcripts and the weights), `sidecar` and `agreement` (given
transcripts and whether they fit the audio), `terms` and `turns` (key terms read by sound,
Whisper's pieces joined), `ringback` and `timing` (rings, answer, holds, overlaps, the ending),
`acoustics` and `prosody` (rate, level, pitch per utterance and speaker).
"""
