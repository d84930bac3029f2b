"""Online diarization on the separated streams: who spoke when, with one label per person, live.

Each tracked talker's stream gets its own VAD. When a speech segment on a track has lasted ``label_after_s`` (or
ends sooner), its audio so far is embedded (Resemblyzer) and given a speaker label, combining

- the voice: cosine similarity to each known speaker's running centroid (enrolled people have fixed names);
- spatial continuity: a bonus for the speaker this track already carried, and for speakers last heard from
  this direction recently, so a talker keeps the label through pauses, movement and track crossings;

and a new label ``spk<N>`` is created when nobody is similar enough. Overlapping speech on two tracks gets both
labels. Closed segments refine the speaker's centroid. ``embeddings=False`` labels by track only (no torch).
Labels of a segment are final when emitted; the label delay is ``label_after_s`` plus the VAD onset.

Enrolled people are recognised two ways. Directly, when a segment's embedding is close to the enrolment
(``enrolled_threshold``). And relatively: a clean close-talk enrolment and a reverberant beam of the same person
are often no closer than two different people through the same room (and learned speakers can mix two voices
the embeddings confuse). So each track also keeps its own voice (the mean embedding of its segments), and once
tracks have enough speech, the track whose voice is clearly the closest to an enrolment (``identify_floor``,
``identify_margin`` over the runner-up track; one voice alone has no runner-up and is not identified) is
*identified* as that person: from then on its segments carry the name (in :meth:`OnlineDiarizer.speaking_tracks`
from their first words), a ``speaker_identified`` event says so, and :meth:`OnlineDiarizer.final_label` names its
earlier segments too. A segment on an identified track whose own voice is below ``identify_floor`` to the
enrolment, or that comes from farther than ``identify_place_deg`` from the person's place (where the recent voices
most like theirs come from), is labelled as usual instead: the tracker can hand a track to another person near the
same direction. A segment whose track moves on within it (someone beside the talker takes over without a pause)
is split there (``split_moved_deg``; where someone else was heard a moment ago, not where a talker walks), so the
other voice gets a label of its own. A person heard by name keeps it when the tracker gives them a new track after
a pause: a new segment on a track within ``direction_deg`` of where they were last heard, within
``direction_memory_s``, or at their place, is identified at once (``speaker_identified`` with ``"by":
"direction"``) unless a track identified as them is speaking, or it is away from their place.
Tracks in :attr:`OnlineDiarizer.playback_tracks` (set by the :class:`~farfield.frontend.Frontend`
from the target policy's playback zones) are never identified.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from ._validate import check_sample_rate, check_settings
from .geometry import azimuth_difference_deg, mean_azimuth_deg
from .vad import FLOOR_RISE_DB_S, NoiseFloor, frame_powers, make_vad


@dataclass(frozen=True)
class SpeakerSegment:
    """A labelled speech segment (seconds, input time)."""

    speaker: str
    start_s: float
    end_s: float
    track_id: int


@dataclass(frozen=True)
class Event:
    """A timestamped event: ``speech_start``, ``speech_end``, ``new_speaker``, ``speaker_identified``,
    ``target_changed``, ``barge_in``."""

    time_s: float
    type: str
    speaker: str | None = None
    track_id: int | None = None
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"time_s": round(self.time_s, 3), "type": self.type}
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if self.track_id is not None:
            d["track_id"] = self.track_id
        d.update(self.detail)
        return d


@dataclass
class _Speaker:
    name: str
    centroid: np.ndarray | None
    weight: float
    enrolled: bool
    azimuth_deg: float | None = None
    last_s: float = -1e9


@dataclass
class _TrackState:
    start_sample: int
    vad: object
    audio: deque  # the newest ``max_buffer`` samples of the (gated) stream, as numpy chunks
    audio_start: int  # input sample of the first sample held in ``audio``
    audio_len: int = 0  # samples held in ``audio``
    speaker: str | None = None  # the last label this track carried
    seg_labelled: bool = False
    seg_speaker: str | None = None  # label of the open segment (None: not labelled yet, or leakage)
    azimuth_deg: float = 0.0
    voice: np.ndarray | None = None  # duration-weighted sum of the embeddings of its closed segments
    voice_s: float = 0.0
    directions: deque = field(default_factory=deque)  # (time s, azimuth deg) of its rows while a segment is open
    segment_place: float | None = None  # where the open segment began: its mean direction over its first second
    spoke_at: int | None = None  # the newest input sample seen while its VAD heard speech


_DETECTION_MEMORY_S = 3.0  # longer than a VAD hangover plus the detection hold plus the streams' latency
_PLACE_MEMORY_S = 60.0  # an enrolled person's place: from the voices of the segments of this long,
_PLACE_COSINE_SCALE = 0.05  # ... each weighted by exp((its cosine - the best one) / this): the voices most like theirs
_PLACE_RECENT_S = 20.0  # ... and by exp(-its age / this): a person who moved speaks from their new place
_SPLIT_PLACE_S = 1.0  # a segment's place: the mean of its track's directions over its first second
_SPLIT_RECENT_S = 0.5  # ... against their mean over the last half second (the selector's place rules, the same)
_ROOM_FLOOR_FRAME_S = 0.02  # the room's noise floor: from the power of frames this long of the streams' ungated audio
#   (rising at most FLOOR_RISE_DB_S, as the energy VAD's own floor)
_SPOKE_LATELY_S = 5.0  # dominance_speech_only: a stream whose VAD heard speech this recently can mask the others


class OnlineDiarizer:
    """Streaming diarization over the per-track streams of a :class:`~farfield.frontend.Frontend`.

    Args:
        sample_rate: Hz of the streams.
        embeddings: use speaker embeddings (needs torch + resemblyzer); ``False``: one speaker per track.
        encoder: a :class:`~farfield.embed.SpeakerEncoder` to share (created on first use otherwise).
        vad: ``"auto"``, ``"silero"`` or ``"energy"`` (per track). A new track's energy VAD starts its noise floor
            at the room's, the quietest the streams' ungated audio has been (a track is born on speech, so its
            own first frames are no floor, and the leakage gate may silence every pause it has).
        label_after_s: label a segment once it has lasted this long.
        threshold: minimum combined score (cosine + bonuses) to reuse a speaker label.
        enrolled_threshold: minimum cosine of a segment to an enrolment for the person's name on its own (the
            direct path; a track's voice is compared too, see ``identify_floor``). A name given this way is carried
            to the person's next tracks by direction, so one segment decides a lot: in a real-voice room of the
            target benchmark another talker's 0.8 s segment reached 0.703 and took the name for 11 s of target
            time. 0.75 instead of 0.7, on the target benchmark's 112 rooms (seeds 5-11, both voice sets; one run
            each): that room lost its 11.3 s of wrong target time, one espeak room named its addressee 2.7 s later,
            and the other 110 gave the same figures to the digit; the enrolled policy's target time right, seeds 5-8,
            85.6 -> 91.1 %, held out 97.4 % either way (``benchmarks/EXPERIMENTS.md``, Target selection).
        track_bonus, direction_bonus: spatial-continuity bonuses; direction_deg, direction_memory_s: when the
            direction bonus applies. direction_bonus 0.15 (was 0.08) was chosen on the 20 held-out scenes below
            (meeting / factory DER 0.155 / 0.49 -> 0.108 / 0.39; 0.25 gives the same meetings, 0.41 factory).
        max_buffer_s: audio kept per track for embedding.
        forget_after_s: a track whose stream has stopped this long is dead: its open segment is closed and its
            state freed (a :class:`~farfield.frontend.Frontend` gives every live track a stream in every block).
        dominance_db: a track's stream counts as silent in a block where it is this far below the loudest
            stream (what it holds then is the other talker leaking through the beam's sidelobes). Overlapping
            talkers get both labels when their streams are within this margin. 2 dB was chosen on scenes apart
            from the benchmark's (meeting / factory DER 0.40 / 0.43 at 4 dB, 0.30 / 0.38 at 2 dB).
        identify_floor, identify_margin, identify_min_s: the relative recognition of enrolled people (see
            above): the closest track with at least ``identify_min_s`` of speech, at cosine ``identify_floor`` or
            more, and ``identify_margin`` above every other such track; once identified, a segment on it below
            ``identify_floor`` is not the person's.
        identify_place_deg: nor is a segment on an identified track that comes from farther than this from the
            person's place: the direction around which (within this) lie the segments of the last 60 s whose
            voices are most like theirs (each weighted by its length, by ``exp((cosine - best cosine) / 0.05)``
            and by ``exp(-age / 20 s)``, so a person who moved is found at the new place). Two talkers closer
            than the array's beam often share a track; their segments' cosines to the enrolment overlap across
            rooms but not within one. 10 deg: the enrolled policy's target time right on the benchmark's rooms
            79.0 -> 89.7 %, held out 85.3 -> 95.7 % (``benchmarks/EXPERIMENTS.md``). ``None``: off.
        detection_hold_s: a track's stream also counts as silent unless the localizer detected the track (a
            :class:`~farfield.track.TrackRow` with ``detected``) within this many seconds; a track that only
            coasts through a pause, or is only kept by weak detections, hears leakage. SRP-PHAT peaks separate
            talkers far better than the beams' levels on small arrays. ``None``: off. 0.1 s was chosen on 20
            scenes apart from the benchmark's (meeting / factory DER 0.24 / 0.48 off, 0.155 / 0.49 at 0.1 s).
            With the gate on, a segment also ends at the track's last detection within it, not when the hold
            runs out after it (benchmark DER, meetings 4.3 -> 4.2 %, factory halls 37.1 -> 38.1 %, all of it
            in one hall that scores over 100 % either way; the gaze policy's share of target time on the
            addressee while they speak rose in each of the 8 sets of rooms and voices, 92.8 -> 94.2 % pooled).
        end_fall_db_s: with the gate on, a segment's end also moves back over a final run of its track's
            detections whose power (the track rows' ``power_db``) falls this fast or faster, in dB per second:
            a talker who has stopped is still detected while the localizer's average of the cross-spectra fades
            (at most 36 dB/s with its default 0.12 s time constant), so such a run holds no new sound from the
            track. ``None``: off. 18 dB/s (half the fastest fade) was chosen on a replay of the gaze policy's
            segments (``benchmarks/EXPERIMENTS.md``); in the benchmark's reruns the gaze policy's share of target
            time on the addressee while they speak rose 94.2 -> 95.3 % (seeds 5-8 pooled), about as much of their
            speech was cut as of others' sound, and DER went 4.2 -> 4.2 % (meetings), 38.1 -> 38.6 % (factory).
        split_moved_deg: a segment is split where its track moves on within it: when the track speaks (the mean
            of its directions over the last 0.5 s) farther than this from where the segment began (their mean over
            its first second), and someone other than the segment's speaker was heard within ``direction_deg`` of
            it in the last ``direction_memory_s``, the segment ends at the first of those updates that far away and
            a new one, labelled afresh, starts there. The tracker can hand a talking track to someone beside the
            talker who takes over without a pause, and the segment would carry the first talker's label (an
            enrolled name too) to its end; a talker who walks to where nobody was heard keeps their segment (split
            without that condition, DER on 8 living rooms where everyone walks went 77.6 -> 80.2 %). 10 deg, as the
            target selector's place rules. ``None``: off.
        dominance_speech_only: the leakage gate (``dominance_db``) compares a stream only with the loudest of
            the streams whose VAD heard speech in the last 5 s, not with a machine's, fan's or conveyor's beam,
            which can be louder than a talker's all along (a worker alone in a warehouse lost 35 % of their speech
            to it in one room). Off by default: DER meetings 4.2 -> 4.6 %, factory halls 38.6 -> 35.1 %,
            warehouses 36.6 -> 31.2 %, but living rooms with a TV where everyone walks 77.6 -> 82.0 %
            (``benchmarks/EXPERIMENTS.md``, Diarization).
    """

    def __init__(self, sample_rate: int, *, embeddings: bool = True, encoder=None, vad: str = "auto",
                 label_after_s: float = 0.8, threshold: float = 0.6, enrolled_threshold: float = 0.75,
                 track_bonus: float = 0.12, direction_bonus: float = 0.15, direction_deg: float = 20.0,
                 direction_memory_s: float = 10.0, max_buffer_s: float = 20.0, dominance_db: float = 2.0,
                 detection_hold_s: float | None = 0.1, identify_floor: float = 0.5, identify_margin: float = 0.05,
                 identify_min_s: float = 2.0, identify_place_deg: float | None = 10.0, forget_after_s: float = 1.0,
                 end_fall_db_s: float | None = 18.0, split_moved_deg: float | None = 10.0,
                 dominance_speech_only: bool = False) -> None:
        self.sample_rate = check_sample_rate(sample_rate)
        check_settings("OnlineDiarizer", label_after_s=label_after_s, direction_deg=direction_deg,
                       direction_memory_s=direction_memory_s, max_buffer_s=max_buffer_s, dominance_db=dominance_db,
                       identify_min_s=identify_min_s, forget_after_s=forget_after_s, track_bonus=track_bonus,
                       direction_bonus=direction_bonus, identify_margin=identify_margin)
        check_settings("OnlineDiarizer", low=-1.0, high=1.0, enrolled_threshold=enrolled_threshold,
                       identify_floor=identify_floor)
        check_settings("OnlineDiarizer", low=-1.0, high=2.0, threshold=threshold)  # cosine + bonuses
        if detection_hold_s is not None:
            check_settings("OnlineDiarizer", detection_hold_s=detection_hold_s)
        if end_fall_db_s is not None:
            check_settings("OnlineDiarizer", end_fall_db_s=end_fall_db_s)
        if identify_place_deg is not None:
            check_settings("OnlineDiarizer", high=180.0, identify_place_deg=identify_place_deg)
        if split_moved_deg is not None:
            check_settings("OnlineDiarizer", high=180.0, split_moved_deg=split_moved_deg)
        self.embeddings = bool(embeddings)
        self._encoder = encoder
        self.vad_kind = vad
        self.label_after = int(label_after_s * sample_rate)
        self.threshold, self.enrolled_threshold = float(threshold), float(enrolled_threshold)
        self.track_bonus, self.direction_bonus = float(track_bonus), float(direction_bonus)
        self.direction_deg, self.direction_memory_s = float(direction_deg), float(direction_memory_s)
        self.max_buffer = int(max_buffer_s * sample_rate)
        self.forget_after = int(forget_after_s * sample_rate)
        self._dominance = 10 ** (-dominance_db / 10)
        self.detection_hold_s = None if detection_hold_s is None else float(detection_hold_s)
        self.end_fall_db_s = None if end_fall_db_s is None else float(end_fall_db_s)
        self.identify_floor, self.identify_margin = float(identify_floor), float(identify_margin)
        self.identify_min_s = float(identify_min_s)
        self.identify_place_deg = None if identify_place_deg is None else float(identify_place_deg)
        self.split_moved_deg = None if split_moved_deg is None else float(split_moved_deg)
        self.dominance_speech_only = bool(dominance_speech_only)
        self.speakers: dict[str, _Speaker] = {}
        self.reset()

    @property
    def encoder(self):
        if self._encoder is None:
            from .embed import SpeakerEncoder

            self._encoder = SpeakerEncoder()
        return self._encoder

    def reset(self) -> None:
        """Forget tracks and learned (not enrolled) speakers."""
        self.speakers = {k: v for k, v in self.speakers.items() if v.enrolled}
        self._tracks: dict[int, _TrackState] = {}
        # the quietest the streams have been (mean-square power of short frames): a new track's energy VAD starts
        # its noise floor here, since a track is born on speech and its own first frames are no floor
        self._room_floor = NoiseFloor(FLOOR_RISE_DB_S)
        self._n_new = 0
        self._block = 0
        self._last_row_block: dict[int, int] = {}
        self._detections: dict[int, deque] = {}  # a track's detections (time s, power dB), last _DETECTION_MEMORY_S
        self._now_sample = 0  # the newest input sample seen in any stream
        self.identified: dict[int, str] = {}  # track -> the enrolled person it was identified as
        self._identified_at: dict[int, float] = {}  # ... and when (s)
        # per enrolled person: (time s, azimuth deg, cosine to their enrolment, seconds) of recent segments
        self._heard_as: dict[str, deque] = {}
        self.playback_tracks: set[int] = set()  # tracks a target policy judged TV / radio: never identified
        self.label_delays_s: list[float] = []

    def enroll(self, name: str, audio: np.ndarray, sample_rate: int) -> None:
        """Register a known person from a few seconds of their (clean) speech; they will be labelled ``name``."""
        if not self.embeddings:
            raise ValueError("enrollment needs embeddings=True")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"speaker name must be non-empty without spaces (it goes into RTTM), got {name!r}")
        x = np.asarray(audio, float).reshape(-1)
        if x.size < sample_rate:
            raise ValueError(f"enrollment audio for {name!r} is {x.size / sample_rate:.2f} s; expected at least 1 s")
        self.speakers[name] = _Speaker(name, self.encoder.embed(x, sample_rate), 1e6, True)

    # -- labelling -------------------------------------------------------------------------------------------
    def _new_name(self) -> str:
        self._n_new += 1
        while f"spk{self._n_new}" in self.speakers:
            self._n_new += 1
        return f"spk{self._n_new}"

    def _assign(self, st: _TrackState, tid: int, audio: np.ndarray, now_s: float, events: list) -> str:
        """Label for a segment on track ``tid``."""
        if not self.embeddings:  # (no enrolment without embeddings, so no identified tracks either)
            name = st.speaker or f"spk{tid}"
            if name not in self.speakers:
                self.speakers[name] = _Speaker(name, None, 0.0, False)
                events.append(Event(now_s, "new_speaker", name, tid))
            return name
        e = self.encoder.embed(audio, self.sample_rate) if np.any(audio) else None
        # an identified track's segment is the person's unless its voice is clearly not theirs, or it comes from
        # away from where their voice is heard best: the tracker can hand a track to someone else near the same
        # direction (two talkers closer than the array's beam)
        if e is not None and self.identify_place_deg is not None:  # the places are only kept while the rule is on
            self._hear_enrolled(e, st.azimuth_deg, now_s, audio.size / self.sample_rate)
        person = self.identified.get(tid)
        away = person is not None and e is not None and self._away_from_place(person, st.azimuth_deg, now_s)
        if person is not None and not away and (e is None or float(e @ self.speakers[person].centroid)
                                                >= self.identify_floor):
            return person
        best, best_score = None, -np.inf
        for sp in self.speakers.values():
            if sp.centroid is None or e is None or (away and sp.name == person):
                continue
            cos = float(np.dot(e, sp.centroid))
            if sp.enrolled:
                score = cos if cos >= self.enrolled_threshold else -np.inf
            else:
                score = cos
            if st.speaker == sp.name:
                score += self.track_bonus
            if self._heard_near(sp, st, now_s):
                score += self.direction_bonus
            if score > best_score:
                best, best_score = sp, score
        if best is not None and best_score >= self.threshold:
            return best.name
        name = self._new_name()
        self.speakers[name] = _Speaker(name, e, 0.0, False)
        events.append(Event(now_s, "new_speaker", name, tid))
        return name

    def _hear_enrolled(self, e: np.ndarray, azimuth_deg: float, now_s: float, seconds: float) -> None:
        """Note a segment's voice ``e`` (from ``azimuth_deg``, ``seconds`` long) against each enrolled person."""
        for sp in self.speakers.values():
            if sp.enrolled:
                heard = self._heard_as.setdefault(sp.name, deque())
                heard.append((now_s, azimuth_deg, float(e @ sp.centroid), seconds))
                while heard[0][0] < now_s - _PLACE_MEMORY_S:
                    heard.popleft()

    def _place(self, person: str, now_s: float) -> float | None:
        """Where ``person`` is (azimuth, degrees): the direction around which (within ``identify_place_deg``) the
        recent segments most like their voice lie; ``None`` when off or before any segment was heard."""
        heard = self._heard_as.get(person)
        if self.identify_place_deg is None or not heard:
            return None
        best = max(h[2] for h in heard)
        az = np.array([h[1] for h in heard])
        w = np.array([d * np.exp((c - best) / _PLACE_COSINE_SCALE - (now_s - t) / _PLACE_RECENT_S)
                      for t, _, c, d in heard])
        near = azimuth_difference_deg(az[:, None], az[None, :]) <= self.identify_place_deg
        around = near[np.argmax(near @ w)]
        return float(np.degrees(np.angle(np.sum(w[around] * np.exp(1j * np.radians(az[around]))))))

    def _away_from_place(self, person: str, azimuth_deg: float, now_s: float) -> bool:
        """Whether ``azimuth_deg`` is farther than ``identify_place_deg`` from ``person``'s place."""
        place = self._place(person, now_s)
        return place is not None and bool(azimuth_difference_deg(azimuth_deg, place) > self.identify_place_deg)

    def _heard_near(self, sp: _Speaker, st: _TrackState, now_s: float) -> bool:
        """Whether speaker ``sp`` was last heard within ``direction_deg`` of track ``st`` less than
        ``direction_memory_s`` before ``now_s``."""
        return (sp.azimuth_deg is not None and now_s - sp.last_s < self.direction_memory_s
                and azimuth_difference_deg(st.azimuth_deg, sp.azimuth_deg) < self.direction_deg)

    def _update_centroid(self, name: str, st: _TrackState, audio: np.ndarray, now_s: float) -> None:
        """A closed segment of ``name`` on a track: refine the speaker's centroid and the track's voice."""
        sp = self.speakers[name]
        sp.azimuth_deg, sp.last_s = st.azimuth_deg, now_s
        if not self.embeddings or audio.size < self.sample_rate:
            return
        e = self.encoder.embed(audio, self.sample_rate)
        w = audio.size / self.sample_rate
        st.voice = e * w if st.voice is None else st.voice + e * w
        st.voice_s += w
        if sp.enrolled:
            return
        c = e if sp.centroid is None else (sp.centroid * sp.weight + e * w)
        sp.centroid = (c / np.linalg.norm(c)).astype(np.float32)
        sp.weight += w

    def _identify(self, now_s: float, events: list) -> None:
        """Relative recognition: each enrolled name goes to the track whose voice is clearly the closest to it."""
        self.identified = {t: n for t, n in self.identified.items() if t not in self.playback_tracks}
        voices = {tid: st.voice / np.linalg.norm(st.voice) for tid, st in self._tracks.items()
                  if st.voice is not None and st.voice_s >= self.identify_min_s and tid not in self.playback_tracks}
        if len(voices) < 2:
            return  # "clearly the closest" needs a runner-up; one voice alone may be a TV before anyone speaks
        for person in (sp for sp in self.speakers.values() if sp.enrolled):
            cos = sorted(((float(np.dot(v, person.centroid)), tid) for tid, v in voices.items()), reverse=True)
            (best, tid), runner_up = cos[0], cos[1][0]
            if best < self.identify_floor or best - runner_up < self.identify_margin:
                continue
            if self.identified.get(tid) is not None:
                continue  # already this person's (or another enrolled person's) track
            events.append(self._name_track(tid, person.name, now_s, {"cosine": round(best, 3)}))

    def _name_track(self, tid: int, name: str, now_s: float, detail: dict) -> Event:
        """Identify track ``tid`` as the enrolled person ``name`` (no other track stays identified as them); returns
        the ``speaker_identified`` event."""
        self.identified = {k: v for k, v in self.identified.items() if v != name}
        self.identified[tid] = name
        self._identified_at = {k: v for k, v in self._identified_at.items() if k in self.identified}
        self._identified_at[tid] = now_s
        return Event(now_s, "speaker_identified", name, tid, detail)

    def _carry_identity(self, tid: int, st: _TrackState, now_s: float, events: list) -> None:
        """A segment starts on a track that is not identified, where an enrolled person was heard by name within
        ``direction_memory_s`` (within ``direction_deg``) or at their place (heard by name within 60 s), not away
        from their place, and no track identified as them speaks now: the tracker lost the person in a pause and
        gave them a new track. It is identified as them at once, so their name (and a target that follows it)
        comes back with their first words instead of after ``identify_min_s`` of speech and a runner-up; its
        segments are still checked against ``identify_floor`` and their place."""
        if not self.embeddings or tid in self.identified or tid in self.playback_tracks:
            return
        speaking = {self.identified[t] for t, s in self._tracks.items() if t in self.identified and s.vad.speaking}
        for sp in self.speakers.values():
            if not sp.enrolled or sp.name in speaking:
                continue
            place = self._place(sp.name, now_s)
            off = None if place is None else azimuth_difference_deg(st.azimuth_deg, place)
            if off is not None and off > self.identify_place_deg:
                continue  # away from their place
            at_place = off is not None and now_s - sp.last_s < _PLACE_MEMORY_S
            if not (at_place or self._heard_near(sp, st, now_s)):
                continue
            previous = next((t for t, n in self.identified.items() if n == sp.name), None)
            events.append(self._name_track(tid, sp.name, now_s, {"by": "direction", "previous_track": previous}))
            return

    def final_label(self, segment: SpeakerSegment) -> SpeakerSegment:
        """``segment`` with the name its track was identified as by now (earlier segments of an identified track
        carry a learned label)."""
        name = self.identified.get(segment.track_id)
        if name is None or name == segment.speaker or segment.start_s >= self._identified_at[segment.track_id]:
            return segment  # labelled after the identification: its label was checked against the name
        return replace(segment, speaker=name)

    def _keep_audio(self, st: _TrackState, x: np.ndarray) -> None:
        """Append ``x`` to the track's audio and drop the oldest samples beyond ``max_buffer``."""
        st.audio.append(np.array(x, dtype=np.float64))  # a copy: the caller may reuse its buffer
        st.audio_len += x.size
        while st.audio_len > self.max_buffer:
            drop = min(st.audio_len - self.max_buffer, st.audio[0].size)
            if drop == st.audio[0].size:
                st.audio.popleft()
            else:
                st.audio[0] = st.audio[0][drop:]
            st.audio_start += drop
            st.audio_len -= drop

    def _segment_audio(self, st: _TrackState, a: int, b: int) -> np.ndarray:
        buf = np.concatenate(st.audio) if st.audio else np.zeros(0)
        lo, hi = max(0, a - st.audio_start), max(0, b - st.audio_start)
        return buf[lo:hi]

    # -- feeding ---------------------------------------------------------------------------------------------
    def process(self, block) -> tuple[list[SpeakerSegment], list[Event]]:
        """Feed one :class:`~farfield.frontend.FrontendBlock`; returns the segments closed and events raised."""
        segments: list[SpeakerSegment] = []
        events: list[Event] = []
        sr = self.sample_rate
        az_now = {}
        for r in block.tracks:
            az_now[r.track_id] = r.azimuth_deg
            st = self._tracks.get(r.track_id)
            if self.split_moved_deg is not None and st is not None and st.vad.speaking:
                st.directions.append((r.time_s, r.azimuth_deg))  # kept only for the split rule
            self._last_row_block[r.track_id] = self._block
            if getattr(r, "detected", True):
                dets = self._detections.setdefault(r.track_id, deque())
                dets.append((r.time_s, r.power_db))
                while dets[0][0] < r.time_s - _DETECTION_MEMORY_S:
                    dets.popleft()
        # leakage gate: a beam also carries the other talkers, attenuated; within a block, a track whose stream
        # is more than ``dominance_db`` below the loudest stream is hearing someone else
        energy = {tid: float(np.mean(chunks[-1][1] ** 2)) for tid, chunks in block.streams.items()}
        for st in self._tracks.values() if self.dominance_speech_only else ():
            if st.vad.speaking:
                st.spoke_at = self._now_sample
        loudest = max((e for tid, e in energy.items() if not self.dominance_speech_only or self._spoke_lately(tid)),
                      default=0.0)
        quietest, block_s = np.inf, 0.0  # of this block's ungated audio: the room's floor
        for tid, chunks in block.streams.items():
            for start, audio in chunks:
                st = self._tracks.get(tid)
                if st is None:
                    st = self._tracks[tid] = _TrackState(start, make_vad(sr, self.vad_kind),
                                                         deque(), start)
                    st.vad.seed_floor(self._room_floor.power)
                if tid in az_now:
                    st.azimuth_deg = az_now[tid]
                before = st.start_sample + st.vad.samples_fed
                x = np.asarray(audio, float)
                if start > before:  # a gap in the stream: silence, so sample times stay right
                    st.vad.process(np.zeros(start - before))
                    self._keep_audio(st, np.zeros(start - before))
                elif start < before:  # samples fed already (a producer that repeats them): only the new ones
                    x = x[before - start:]
                    start = before
                    if x.size == 0:
                        continue
                detected = self._detections.get(tid)
                undetected = (self.detection_hold_s is not None and
                              start / sr - (detected[-1][0] if detected else -1e9) > self.detection_hold_s)
                if (self._block - self._last_row_block.get(tid, -10) > 1 or undetected
                        or energy[tid] < loudest * self._dominance):
                    x = np.zeros_like(x)  # the localizer does not hear this track now, or its beam holds leakage
                else:
                    powers = frame_powers(x, int(round(_ROOM_FLOOR_FRAME_S * sr)))
                    quietest = min(quietest, float(np.min(powers[powers > 0], initial=np.inf)))
                    block_s = max(block_s, x.size / sr)
                self._keep_audio(st, x)
                was_open = st.vad.speaking
                closed = st.vad.process(x)
                end_sample = start + x.size
                for a, b in closed:
                    ga = st.start_sample + a
                    self._end_segment(tid, st, ga, self._end_at_detection(tid, ga, st.start_sample + b),
                                      segments, events)
                if not st.vad.speaking or not was_open or closed:
                    st.directions.clear()  # no segment open, or a new one: its place is still to come
                    st.segment_place = None
                if st.vad.speaking and (not was_open or closed):
                    st.seg_labelled = False
                    self._carry_identity(tid, st, end_sample / sr, events)
                elif st.vad.speaking and self.split_moved_deg is not None:
                    self._split_if_moved(tid, st, end_sample, segments, events)
                s0 = st.vad.segment_start
                if st.vad.speaking and not st.seg_labelled and s0 is not None:
                    ga = st.start_sample + s0
                    if end_sample - ga >= self.label_after:
                        seg_audio = self._segment_audio(st, ga, end_sample)
                        st.seg_speaker = self._assign(st, tid, seg_audio, ga / sr, events)
                        st.seg_labelled = True
                        if st.seg_speaker is not None:
                            st.speaker = st.seg_speaker
                            self.label_delays_s.append((end_sample - ga) / sr)
                            events.append(Event(ga / sr, "speech_start", st.speaker, tid,
                                                {"labelled_at_s": round(end_sample / sr, 3)}))
        if np.isfinite(quietest):
            self._room_floor.update(quietest, block_s)
        self._forget_dead_tracks(block, segments, events)
        self._block += 1
        return segments, events

    def _spoke_lately(self, tid: int) -> bool:
        """Whether track ``tid``'s VAD heard speech in the last ``_SPOKE_LATELY_S`` (a machine's beam never does)."""
        st = self._tracks.get(tid)
        return st is not None and st.spoke_at is not None and (
            self._now_sample - st.spoke_at < _SPOKE_LATELY_S * self.sample_rate)

    def _end_segment(self, tid: int, st: _TrackState, start: int, end: int, segments: list, events: list) -> None:
        """The track's segment ``[start, end)`` (input samples) is over: label it if it is not yet, and emit it."""
        sr = self.sample_rate
        seg_audio = self._segment_audio(st, start, end)
        if not st.seg_labelled:
            st.seg_speaker = self._assign(st, tid, seg_audio, start / sr, events)
            if st.seg_speaker is not None:
                events.append(Event(start / sr, "speech_start", st.seg_speaker, tid))
                self.label_delays_s.append(end / sr - start / sr)
        if st.seg_speaker is not None:
            st.speaker = st.seg_speaker
            self._update_centroid(st.speaker, st, seg_audio, end / sr)
            self._identify(end / sr, events)
            segments.append(SpeakerSegment(st.speaker, start / sr, end / sr, tid))
            events.append(Event(end / sr, "speech_end", st.speaker, tid))
        st.seg_labelled = False
        st.seg_speaker = None

    def _split_if_moved(self, tid: int, st: _TrackState, end_sample: int, segments: list, events: list) -> None:
        """Split the track's open segment where its track has moved on: it speaks (the mean of its directions over
        the last half second) farther than ``split_moved_deg`` from where the segment began (their mean over its
        first second), where someone else was heard a moment ago. The tracker has handed the track to that person,
        who took over without a pause; from the first of those updates that is that far from the place on, it is a
        new segment, labelled afresh."""
        sr = self.sample_rate
        now_s, start_s = end_sample / sr, (st.start_sample + st.vad.segment_start) / sr
        if now_s - start_s < _SPLIT_PLACE_S:
            return
        if st.segment_place is None:
            first = [az for t, az in st.directions if t <= start_s + _SPLIT_PLACE_S]
            st.segment_place = mean_azimuth_deg(first) if first else None
        while st.directions and st.directions[0][0] < now_s - _SPLIT_RECENT_S:
            st.directions.popleft()  # only the last half second is needed after the first second
        if st.segment_place is None or not st.directions or now_s - start_s < _SPLIT_PLACE_S + _SPLIT_RECENT_S:
            return
        if azimuth_difference_deg(mean_azimuth_deg([az for _, az in st.directions]),
                                  st.segment_place) <= self.split_moved_deg:
            return
        if not any(sp.name != st.seg_speaker and self._heard_near(sp, st, now_s) for sp in self.speakers.values()):
            return  # nobody else was heard there: a talker who walks
        at = next(int(round(t * sr)) for t, az in st.directions  # the first of those updates away from the place
                  if azimuth_difference_deg(az, st.segment_place) > self.split_moved_deg)
        for a, b in st.vad.split(at - st.start_sample):
            self._end_segment(tid, st, st.start_sample + a, st.start_sample + b, segments, events)
        st.seg_labelled, st.seg_speaker, st.segment_place = False, None, None

    def speaking_tracks(self) -> dict[int, str | None]:
        """Tracks with speech now: ``{track_id: speaker}``, ``None`` while the segment is not labelled yet (its
        first ``label_after_s``), except on a track identified as an enrolled person that speaks within
        ``direction_deg`` of where that person was last heard by name and not away from their place, which carries
        the name from the first words (farther away, the tracker has more likely handed the track to someone else).
        One speaker can be on two tracks."""
        return {tid: (st.seg_speaker if st.seg_labelled else self._identified_here(tid, st))
                for tid, st in self._tracks.items() if st.vad.speaking}

    def _identified_here(self, tid: int, st: _TrackState) -> str | None:
        """The person track ``tid`` is identified as, if it is where they were last heard by name and at their
        place."""
        name = self.identified.get(tid)
        if name is None:
            return None
        where = self.speakers[name].azimuth_deg
        if ((where is not None and azimuth_difference_deg(st.azimuth_deg, where) >= self.direction_deg)
                or self._away_from_place(name, st.azimuth_deg, self._now_sample / self.sample_rate)):
            return None
        return name

    def flush(self, end_s: float) -> tuple[list[SpeakerSegment], list[Event]]:
        """Close open segments at the end of a recording."""
        segments, events = [], []
        for tid, st in self._tracks.items():
            self._close_track(tid, st, int(end_s * self.sample_rate), segments, events)
        return segments, events

    def _close_track(self, tid: int, st: _TrackState, end_sample: int, segments: list, events: list) -> None:
        """Close the open segment of a track that ends (the recording ends, or the track died)."""
        sr = self.sample_rate
        for a, b in st.vad.flush():
            ga = st.start_sample + a
            gb = self._end_at_detection(tid, ga, min(st.start_sample + b, end_sample))
            if gb <= ga:
                continue
            if not st.seg_labelled:
                st.seg_speaker = self._assign(st, tid, self._segment_audio(st, ga, gb), ga / sr, events)
                if st.seg_speaker is not None:
                    events.append(Event(ga / sr, "speech_start", st.seg_speaker, tid))
            if st.seg_speaker is None:
                continue
            segments.append(SpeakerSegment(st.seg_speaker, ga / sr, gb / sr, tid))
            events.append(Event(gb / sr, "speech_end", st.seg_speaker, tid))

    def _end_at_detection(self, tid: int, start: int, end: int) -> int:
        """A segment ``[start, end)`` (stream samples) of track ``tid`` ends no later than the localizer's last
        detection of the track within it. The detection gate keeps a stream open ``detection_hold_s`` after
        that, to bridge short gaps inside speech, and the localizer's smoothed cross-spectra detect a talker
        until a little after they stop anyway; what the beam holds after the last detection is others'
        leakage, which the VAD may call speech (a TV talking on after the person). The end then moves back over
        a final run of detections whose power falls at ``end_fall_db_s`` or faster: the fading average of a
        talker who has stopped, not new sound. With the gate off (``detection_hold_s=None``) the end is kept."""
        if self.detection_hold_s is None:
            return end
        sr = self.sample_rate
        dets = [(t, p) for t, p in self._detections.get(tid, ()) if start < t * sr <= end]
        if not dets:
            return end  # no detection inside the segment was kept: leave it as the VAD gave it
        k = len(dets) - 1
        if self.end_fall_db_s is not None:
            while k > 0 and dets[k - 1][1] - dets[k][1] >= self.end_fall_db_s * (dets[k][0] - dets[k - 1][0]):
                k -= 1
        return int(round(dets[k][0] * sr))

    def _forget_dead_tracks(self, block, segments: list, events: list) -> None:
        """Tracks whose streams stopped ``forget_after_s`` ago died: close their segments and free their state
        (audio buffer, VAD), so memory stays bounded in a long live run."""
        for chunks in block.streams.values():
            for start, audio in chunks:
                self._now_sample = max(self._now_sample, start + len(audio))
        for tid in [t for t in self._tracks if t not in block.streams]:
            st = self._tracks[tid]
            last = st.start_sample + st.vad.samples_fed
            if self._now_sample - last > self.forget_after:
                self._close_track(tid, st, last, segments, events)
                del self._tracks[tid]
                self._last_row_block.pop(tid, None)
                self._detections.pop(tid, None)
        # rows of tracks that never had a stream: forget them once they can no longer open the gates
        now_s = self._now_sample / self.sample_rate
        for tid in [t for t, b in self._last_row_block.items() if t not in self._tracks and self._block - b > 1]:
            dets = self._detections.get(tid)
            if not dets or dets[-1][0] < now_s - _DETECTION_MEMORY_S:
                self._last_row_block.pop(tid)
                self._detections.pop(tid, None)
