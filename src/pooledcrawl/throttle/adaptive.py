"""The adaptive per-domain controller: learn the rate a target accepts, then hold just under it.

Why a rate and not only a concurrency: rate limiters reject fast. A 429 comes
back long before a normal page, so a client that overshoots with concurrency
alone turns the excess straight into 429s. This controller paces requests at a
learned rate (requests/second) and sizes the in-flight cap from it with Little's
Law (rate x measured latency x headroom).

How the rate is learned:

* **Slow start.** Until the first 429 the domain is not paced: concurrency starts
  at ``start`` and grows by ``slow_start`` every control window in which it was
  the bottleneck (a window is about one round trip of the slot).
* **Decrease.** The first 429 of a window switches to pacing at the rate just
  measured, cut by the share of 429s seen since the last cut and by
  ``backoff``. Further 429s from requests sent before the cut, or within one
  window of it, are the same signal and are not acted on again.
* **Probe.** Every clean window in which the pacer was the bottleneck adds
  ``probe`` x the rate where 429s began. Far beyond that rate the step grows
  (the limit has moved up), and so does it after a long clean stretch
  (:class:`~pooledcrawl.throttle.probing.CleanRun`), so a raised limit, or one
  set too low by a cold start's refusals, is found again quickly.
* **Hints first.** ``Retry-After`` (on 429 and 503) pauses the whole domain, with
  a little jitter and a cap. ``RateLimit``/``RateLimit-Policy`` and
  ``X-RateLimit-*`` set the rate directly; 429s despite them scale it down.
* **Shut out.** When requests sent after a cut, at the lower rate, are refused
  too (or a ``Retry-After`` says so), the server has not asked for a slower pace
  but shut the door: a window's quota is spent, or a penalty box is closed. The
  domain then sends single probes, ever further apart, until one gets through
  (now and then after a quiet gap instead, doubled each time: a penalty box
  without ``Retry-After`` opens only to a client that kept quiet long enough).
  The cycle this closes gives the limiter away: its successes were the quota and
  its length (to the end of the refusals) the window, so the pace resumes just
  under quota / window, and the last window before the block is the measure,
  never a burst measured over less. Steps up after a block are as rare as a
  block is long, since each one that overshoots buys another.
* **Concurrency limits.** A 503 answered far faster than a page is a limiter's
  refusal (nginx ``limit_conn``): the number in flight then caps the in-flight
  limit, which is raised again now and then.

Pure: fed events and a clock, it never sleeps and does no I/O. The policy owns
a few collaborators, each pure too: :class:`~pooledcrawl.throttle.shutout.ShutOut`
(probes while shut out, and the pace a block's end resumes at), with its
:class:`~pooledcrawl.throttle.quiet.QuietSchedule` (a penalty box's quiet time);
:class:`~pooledcrawl.throttle.window.WindowLearner` (successes over time, the
window and quota learned from them); :class:`~pooledcrawl.throttle.spacing.SpacingDetector`
(a server that judges gaps, not the rate); and a stats
:class:`~pooledcrawl.throttle.timeline.Timeline`.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from pooledcrawl.throttle.config import AdaptiveConfig
from pooledcrawl.throttle.hints import RateHint, parse_rate_hints, retry_after_from_headers
from pooledcrawl.throttle.probing import CleanRun
from pooledcrawl.throttle.shutout import ShutOut
from pooledcrawl.throttle.spacing import SpacingDetector
from pooledcrawl.throttle.timeline import Timeline
from pooledcrawl.throttle.window import SHORTEST_WINDOW, WindowLearner

__all__ = ["AdaptiveConfig", "AdaptivePolicy"]

TOO_MANY_REQUESTS = 429
SERVICE_UNAVAILABLE = 503

#: Slowest pace the controller goes down to (one request a minute).
_MIN_RATE = 1.0 / 60.0
#: Rate growth per round trip between the first 429 and the second.
_PACED_GROWTH = 1.25
#: A paced control window holds at least this many requests.
_WINDOW_SENDS = 2.0
#: Round trip assumed when 429s come before any page did.
_UNKNOWN_RTT = 1.0
#: How much faster probing gets per unit of distance below the last cut's rate (the
#: cut may have been too deep) and above it (the limit may have moved up). Above it
#: is slower: a server's burst allowance hides an overshoot for a while.
_PROBE_CURVE_BELOW = 20.0
_PROBE_CURVE_ABOVE = 5.0
#: Responses looked at for rate-limit fields before only sampling them.
_HINT_SNIFF = 64
#: Seconds a rate hint stays authoritative after the last response that carried one.
_HINT_FRESH = 5.0
#: Refusals in a row, of requests sent after a cut, that mean the server is shutting
#: the client out (a spent window, a penalty box) rather than asking it to slow down.
_BLOCK_STREAK = 3
#: A 503 answered in under this share of the usual latency is a limiter's refusal
#: (nginx ``limit_conn``), not a struggling backend.
_FAST_REFUSAL = 0.5
#: Requests between two steps up of the pace: at a low rate a round trip holds too
#: few to tell whether the last step fitted, and each misfit costs a refusal.
_STEP_SENDS = 20.0
#: Seconds between steps up of a learned concurrency cap.
_CONC_PROBE = 5.0
#: Cuts, each within a second of the last, after which the rate they measured is
#: taken as the ceiling all the same.
_PROVISIONAL_CUTS = 3
#: Once spaced, a refused send that kept its distance reached the server a little
#: closer than it left (a late event loop, the server's millisecond clock): the
#: rate is trimmed by this share of what was accepted, not cut by ``backoff``.
_SPACED_BACKOFF = 0.97
#: ... and only once such refusals pass this share of the sends since the last cut.
_SPACED_TOLERANCE = 0.01
#: Once spaced, refusals under this share of the sends since the last cut only trim
#: the pace; more are a rate over the limit, measured by what got through.
_SPACED_OVER = 0.1
#: Once spaced, refusals up to this share mean a pace under twice the limit (a
#: gap-judging server refuses every other request of such a pace).
_SPACED_HALF = 0.5
#: Once spaced, a lone refusal since the last cut is taken over this many sends at
#: least: one a few sends after a trim is jitter, not a 10% excess ...
_SPACED_SAMPLE = 50
#: ... and fewer refusals than this since the last cut are no measure of an excess
#: however few the sends.
_SPACED_COUNT = 2
#: Once spaced, steps up are this share of the usual: refusals come and go with the
#: server's jitter at any pace near the limit, and each step that wins a trim back
#: sooner buys the next refusal sooner.
_SPACED_STEP = 0.5
#: A boosted step (after a long clean stretch, probing.py) adds this share of the
#: pace at most: an overshoot costs the refusals of one window.
_MAX_STEP = 0.05
#: ... and, above the pace the last cut was made from, this many usual steps at most.
_BOOST_ABOVE = 2.0
#: Sends since the last cut before a lone refusal counts as sporadic ...
_SPORADIC_SENDS = 200
#: ... at a pace under the rate where refusals began, or up to this far above it if
#: refusals so far fell on sends that came close to the one before (a bucket with a
#: burst held at its limit refuses close and far sends alike); a lone refusal after a
#: climb far past it is a limit found (a token bucket's burst has run out), not jitter.
_SPORADIC_ABOVE = 1.25
#: Catching up after a late wake-up, sends are still this share of an interval apart.
_CATCH_UP_GAP = 0.5


class AdaptivePolicy:
    """One slot's controller; implements :class:`~pooledcrawl.throttle.base.ConcurrencyPolicy`."""

    def __init__(
        self,
        config: AdaptiveConfig | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = cfg = config or AdaptiveConfig()
        self._max = cfg.max
        self._wall_clock = wall_clock  # only to read HTTP-dates and Unix-time resets
        self._rng = rng or random.Random()
        self._limit = min(cfg.start, cfg.max)
        # rate control
        self._paced = False
        self._rate = 0.0  # requests/s once paced
        self._ceiling = 0.0  # rate at which 429s began (last cut)
        self._cut_at = -math.inf
        self._since_cut_sends = 0
        self._since_cut_429 = 0
        self._hint_scale = 1.0  # < 1 after 429s despite the server's own hint
        self._hint_at = -math.inf
        # pacing
        self._next_send = 0.0
        self._paused_until = 0.0
        # shut out: what a block teaches (window limiters, penalty boxes)
        self._shut = ShutOut()
        self._streak = 0  # refusals in a row of requests sent after the last cut
        self._streak_sent = -math.inf
        self._conc_cap = 0  # in flight when a limiter refused with a fast 503; 0: none
        self._conc_at = 0.0
        self._windows = WindowLearner()  # the cycle since the last block, what it taught
        self._growth_gate = 0.0  # seconds between steps up of the pace
        self._grown_at = -math.inf
        self._clean_rate = 0.0  # the rate before the last step up that was clean
        self._over_clean = False  # spaced: cut to the clean rate, no clean step since
        self._last_send = -math.inf
        # spacing: a server that judges gaps (see spacing.py)
        self._spacing = SpacingDetector()
        self._clean_run = CleanRun()  # steps up since the last cut (probing.py)
        self._cut_from = 0.0  # the pace the last cut (or trim) was made from
        self.blocks = 0
        # measurement
        self._latency: float | None = None  # EWMA of non-throttled responses
        self._min_latency: float | None = None
        self._inflight = 0
        self._window_start: float | None = None
        self._w_sends = 0
        self._w_peak = 0
        self._w_429 = 0
        self._w_trouble = 0  # errors and 5xx: hold, don't grow
        self._prev_sends = 0
        self._prev_span = 0.0
        self._measured_rate = 0.0
        # stats
        self.status_counts: Counter[int] = Counter()
        self.bad_hints = 0
        self._responses = 0
        self._sends_hints = False
        self.cuts = 0
        self.pauses = 0
        self._t0: float | None = None
        self._timeline = Timeline()

    # ---- answers -------------------------------------------------------------------
    def limit(self) -> int:
        return 1 if self._shut.since is not None else self._limit

    def ready_at(self) -> float:
        if self._shut.since is not None:
            probe = self._shut.probe_at
            return probe if probe > self._paused_until else self._paused_until
        rate = self._pace
        spacing = self._spacing
        if spacing.spaced and rate:
            # a full interval from the last send, whenever that went: no catch-up,
            # less how late the event loop usually is, so the pace is kept on average
            spaced = self._last_send + 1.0 / rate - spacing.late
            return spaced if spaced > self._paused_until else self._paused_until
        if not rate:
            return self._paused_until
        paced = self._next_send - self.config.burst / rate
        # a catch-up goes at twice the pace at most, never as a bunch: a server
        # that judges gaps refuses a bunch at any rate
        spread = self._last_send + _CATCH_UP_GAP / rate
        if spread > paced:
            paced = spread
        return paced if paced > self._paused_until else self._paused_until

    @property
    def _pace(self) -> float:
        """Requests/s the pacer holds to; 0.0 for none.

        Slow start is not paced by the learned rate, but while it still grows, its
        sends are spread at ``slow_start`` x the in-flight cap per round trip: a
        window's worth sent at once would meet a token bucket as one burst.
        """
        if self._paced:
            return self._rate
        latency = self._latency
        if latency is None or self._limit >= self._max:
            return 0.0
        return self.config.slow_start * self._limit / max(latency, 1e-3)

    @property
    def rate(self) -> float | None:
        """The pacing rate, or None while the domain is not paced (slow start)."""
        return self._rate if self._paced else None

    @property
    def window(self) -> float:
        """The control window: about one round trip of the slot, and long enough to
        hold a few paced requests (a window with one request in it measures nothing)."""
        window = self.config.min_window
        latency = self._latency
        if latency is not None and latency > window:
            window = latency
        if self._paced and self._rate * window < _WINDOW_SENDS:
            window = _WINDOW_SENDS / self._rate
        return window

    # ---- events --------------------------------------------------------------------
    def on_send(self, now: float) -> None:
        if self._t0 is None:
            self._t0 = now
        if self._windows.cycle_start is None:
            self._windows.cycle_start = now
        if self._shut.since is not None:
            # one probe at a time, ever further apart: a spent window ends on its own,
            # a penalty box only once the client has been quiet for a while
            self._shut.probe_sent(now)
        self._roll(now)
        self._inflight += 1
        self._w_sends += 1
        self._since_cut_sends += 1
        if self._inflight > self._w_peak:
            self._w_peak = self._inflight
        rate = self._pace
        self._spacing.on_send(now, self._last_send, rate, self._paced)
        self._last_send = now
        if rate:
            # GCRA: the theoretical send time advances by one interval per request;
            # ready_at() lets a request go up to `burst` intervals early, so a late
            # wake-up is caught up, while an idle domain banks no more than that.
            next_send = self._next_send
            self._next_send = (next_send if next_send > now else now) + 1.0 / rate

    def on_sent(self, now: float) -> None:
        """The request handed out last has left (the engine calls this once the
        event loop has moved on from it). A spaced pace counts its interval from
        here: a stall between hand-out and write must delay the next send too."""
        if self._spacing.spaced and now > self._last_send:
            self._last_send = now

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None:
        if self._t0 is None:
            self._t0 = now - latency
        self._roll(now)
        if self._inflight > 0:
            self._inflight -= 1
        self.status_counts[status] += 1
        t0 = self._t0 if self._t0 is not None else now
        second = int(now - t0)
        timeline = self._timeline
        if second != timeline.second:
            timeline.flush(second, self._limit, self._row_rate())
        timeline.count(status)
        throttled = status == TOO_MANY_REQUESTS
        retry_after: float | None = None
        sent_at = now - latency
        if status in (TOO_MANY_REQUESTS, SERVICE_UNAVAILABLE):
            retry_after, bad_retry_after = retry_after_from_headers(headers, self._wall_clock)
            self.bad_hints += bad_retry_after
            fast = self._fast(latency)
            throttled = throttled or retry_after is not None or fast
            if status == SERVICE_UNAVAILABLE and fast and retry_after is None:
                # a concurrency limit (nginx limit_conn) answered at once: it had
                # about as many of ours in flight as we have now, this one aside
                cap = max(1, self._inflight)
                self._conc_cap = cap if not self._conc_cap else min(self._conc_cap, cap)
                self._conc_at = now
        elif status < 400:
            self._on_success(now, sent_at)
        if not throttled:
            if status >= 500:
                self._w_trouble += 1
            elif latency > 0:
                if self._min_latency is None or latency < self._min_latency:
                    self._min_latency = latency
                previous = self._latency
                self._latency = (
                    latency if previous is None else previous + 0.1 * (latency - previous)
                )
        hint: RateHint | None = None
        self._responses += 1
        if headers and (
            self._sends_hints
            or status >= 400
            or self._responses <= _HINT_SNIFF
            or not self._responses % _HINT_SNIFF
        ):
            # Most servers send no rate-limit fields: after a few responses without
            # any, only errors and one response in _HINT_SNIFF are looked at.
            hint, bad = parse_rate_hints(headers, self._wall_clock)
            self.bad_hints += bad
            if hint is not None or bad:
                self._sends_hints = True
        if throttled:
            self._on_throttled(now, sent_at, retry_after)
        if hint is not None:
            self._on_hint(now, hint)
        self._resize()

    def on_error(self, now: float, latency: float) -> None:
        self._roll(now)
        if self._inflight > 0:
            self._inflight -= 1
        self._w_trouble += 1

    # ---- control -------------------------------------------------------------------
    def _fast(self, latency: float) -> bool:
        usual = self._latency
        return usual is not None and latency < _FAST_REFUSAL * usual

    def _on_success(self, now: float, sent_at: float) -> None:
        blocked = self._shut.since
        if blocked is not None and sent_at >= blocked:
            self._unblock(now, sent_at)
            return
        self._windows.on_success(now, sent_at)
        if sent_at >= self._cut_at:
            self._streak = 0

    def _on_throttled(self, now: float, sent_at: float, retry_after: float | None) -> None:
        if retry_after is not None and retry_after > 0:
            self._pause(now, retry_after)
            if self._shut.since is not None:
                self._shut.retry_after(now + retry_after)
        if self._shut.since is not None:
            self._shut.refused(sent_at, self._paused_until)
            return  # a probe refused: the schedule already waits longer next time
        spacing = self._spacing
        bunched = spacing.was_bunched(sent_at)
        if sent_at < self._cut_at:
            return  # sent before the last cut: part of the signal already acted on
        if (
            self._paced
            and not spacing.spaced
            and retry_after is None
            and spacing.judges_gaps(sent_at)
            and not self._shuts_out()
        ):
            self._space()
        if retry_after is not None and retry_after > 0:
            self._block(now)
            self._shut.told_until(now + retry_after)
            return
        if bunched and self._paced:
            # Refused for coming right after another (nginx limit_req without a
            # burst refuses that at any rate): the spacing was wrong, not the rate.
            # (Not in slow start, which sends every page's links at once: a spent
            # window refuses such bunches too, and a slow answer costs a round
            # trip of them at full speed.)
            return
        if (
            self._paced
            # a server that judges gaps does not shut anyone out
            and (not spacing.spaced or self._shuts_out())
            and sent_at >= self._streak_sent + 0.5 / max(self._rate, _MIN_RATE)
        ):
            # only refusals sent apart count: one bunch of sends is one sample
            self._streak += 1
            self._streak_sent = sent_at
            if self._streak >= _BLOCK_STREAK:
                # requests sent after the cut, at the lower rate, are refused too:
                # the server is not asking for a slower pace, it has shut the door
                self._block(now)
                return
        self._since_cut_429 += 1
        self._w_429 += 1
        if now < self._cut_at + self.window:
            return  # one cut per window: a burst of 429s is one signal
        cfg = self.config
        lone = spacing.spaced and self._since_cut_429 == 1
        share = min(
            self._since_cut_429 / max(self._since_cut_sends, _SPACED_SAMPLE if lone else 1), 0.9
        )
        if share <= _SPACED_TOLERANCE and (spacing.spaced or self._sporadic()):
            # A refusal now and then, long after the last cut, at a pace that was
            # clean all that while: sends that reached the server closer than they
            # left (the event loop, the server's own clock), which a slower pace
            # would not space better, but a pace without catch-ups does. The window
            # is not clean, so the pace stops growing.
            self._space()
            return
        if not self._paced:
            # Leaving unpaced slow start. The 429 may say more about a burst than about
            # a rate (unpaced sends come in bursts), so stay in slow start, paced from
            # half the rate just measured; the next 429 sets the ceiling.
            if self._latency is None:
                # Only 429s so far, so no round trip to size a rate from: pace at what
                # got through in one (assumed) second.
                rate = max((self._since_cut_sends - self._since_cut_429) / _UNKNOWN_RTT, 1.0)
            else:
                # What the in-flight cap allows per round trip, unless sends were far
                # fewer (a crawl's first pages are few: the 429 was about a burst).
                measured = min(self._limit / self._latency, 2.0 * self._current_send_rate(now))
                rate = measured * min(0.5, 1.0 - share)
            self._rate = max(rate, _MIN_RATE)
            self._next_send = now
            self._paced = True
            self._cut(now)
            return
        before = self._rate
        self._cut_from = before
        # What the server let through since the last cut: where 429s begin. Counted
        # too, as the pacer may not have kept its rate (the bucket was empty, say).
        accepted = before * (1.0 - share)
        elapsed = now - self._cut_at
        if elapsed > 0:
            counted = (self._since_cut_sends - self._since_cut_429) / elapsed
            accepted = max(accepted, min(counted, before))
        trim = spacing.spaced and (share < _SPACED_OVER or self._since_cut_429 < _SPACED_COUNT)
        if trim:
            # a few refusals of a gap-judging server do not measure an excess
            accepted = before
        elif (
            spacing.spaced
            and share <= _SPACED_HALF
            and not self._over_clean
            and self._clean_rate > accepted
        ):
            # A gap-judging server lets every other request of a pace over its limit
            # (and under twice it) through: half the pace got through, which is no
            # measure of the limit; it lies between the last clean pace and this one.
            # (Once until the next clean step: a limit that fell below that pace is
            # measured.)
            accepted = min(self._clean_rate, before)
            self._over_clean = True
        rate = accepted * (_SPACED_BACKOFF if spacing.spaced else cfg.backoff)
        if self._ceiling == 0.0 and not spacing.spaced:
            # Leaving slow start: the last window was clean at about half this rate.
            # (Not when the refusals just showed a gap-judging server: they were
            # about the spacing, and a pace now spaced is not too fast by half.)
            rate = min(rate, 0.5 * before)
        if self._hinted(now):
            self._hint_scale = max(self._hint_scale * rate / before, 0.05)
        if self._ceiling or elapsed >= SHORTEST_WINDOW or self.cuts >= _PROVISIONAL_CUTS:
            # What was accepted over less than a second (the shortest common
            # window) is no ceiling, at first: the pace keeps growing from the cut.
            # A spaced trim is deliberate and small: probing resumes from it at the
            # usual step, not at the faster one meant for a cut that went too deep
            # (which would win the trim back within two steps, and refuse again).
            self._ceiling = rate if trim else accepted
        self._rate = max(rate, _MIN_RATE)
        self._cut(now)

    def _space(self) -> None:
        """Pace without catch-ups from now on. The rate where refusals began was
        set by refusals of bunched sends, not by the rate: it is searched for again
        (refusals under :data:`_SPACED_TOLERANCE` no longer cut)."""
        if not self._spacing.spaced:
            self._spacing.spaced = True
            self._ceiling = 0.0

    def _sporadic(self) -> bool:
        """Whether a refusal is a lone one, long after the last cut, at a pace under
        the one where refusals began, or a little over it from a server whose
        refusals so far fell on close sends, and that has shown no window and no
        penalty box. Near its limit a gap-judging server refuses a few at any pace
        on a busy machine, on both sides of the rate where refusals began, and a 10%
        cut at each held the pace far under it. A bucket with a burst refuses close
        and far sends alike, a window limiter and a penalty box shut the client out
        (a cut is due), and a refusal far above the ceiling is a limit found."""
        return bool(
            0.0 < self._rate < _SPORADIC_ABOVE * self._ceiling
            and (self._rate < self._ceiling or self._spacing.favours_close())
            and not self._shuts_out()
            and self._since_cut_sends >= _SPORADIC_SENDS
        )

    def _shuts_out(self) -> bool:
        """Whether the server has shown a window or a penalty box: a limiter that
        shuts a client out, which no spacing of sends keeps open."""
        return bool(self._windows.window or self._shut.quiet.quiet)

    def _block(self, now: float) -> None:
        """Stop sending but for single probes, until one gets through."""
        self._shut.begin(now, self._paused_until, self._windows)
        self._streak = 0
        if self._paced:
            self._windows.refused(self._rate)
        self.blocks += 1

    def _unblock(self, now: float, sent_at: float) -> None:
        """A probe got through: resume at the pace the block taught (see
        :meth:`~pooledcrawl.throttle.shutout.ShutOut.end`)."""
        resume = self._shut.end(
            now,
            sent_at,
            self._windows,
            min_window=self.config.min_window,
            t0=self._t0,
            clean_rate=self._clean_rate if self._paced else 0.0,
        )
        if resume.gate is not None:
            self._growth_gate = resume.gate
        windowed = resume.windowed
        self._paced = True
        self._rate = max(resume.rate, _MIN_RATE)
        if windowed or self._ceiling:
            self._ceiling = self._rate if windowed else min(self._ceiling, self._rate)
        # after a quiet gap the block may as well have been a window that ended in
        # it: the pace resumed is a guess, not a rate known to be clean
        self._clean_rate = 0.0 if resume.quiet else self._rate
        self._next_send = now
        self._grown_at = now
        self._cut(now)
        self.cuts -= 1  # a block is counted in `blocks`, not as a cut

    def _cut(self, now: float) -> None:
        self._clean_run.reset()
        self._cut_at = now
        self._since_cut_sends = 0
        self._since_cut_429 = 0
        self._streak = 0
        self.cuts += 1

    def _pause(self, now: float, seconds: float) -> None:
        cfg = self.config
        delay = min(seconds, cfg.retry_after_cap)
        jitter = self._rng.uniform(0.0, min(1.0, cfg.retry_after_jitter * delay))
        until = now + min(delay + jitter, cfg.retry_after_cap)
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1

    def _on_hint(self, now: float, hint: RateHint) -> None:
        if hint.exhausted:
            assert hint.reset is not None
            self._pause(now, hint.reset)
            return
        rate = hint.rate
        if rate is None or rate <= 0:
            return
        self._hint_at = now
        if not self._paced:
            self._paced = True
            self._next_send = now
        self._rate = max(rate * self._hint_scale, _MIN_RATE)
        self._ceiling = self._rate

    def _hinted(self, now: float) -> bool:
        """Whether the server's own rate hints are recent enough to follow."""
        return now - self._hint_at < max(_HINT_FRESH, 10.0 * self.window)

    def _roll(self, now: float) -> None:
        """Close the control window if it is over, and grow if it was clean and full."""
        start = self._window_start
        if start is None:
            self._window_start = now
            return
        span = now - start
        if span < self.config.min_window or span < self.window:  # the first test is cheap
            return
        self._end_window(now, span)
        self._resize()
        self._prev_sends, self._prev_span = self._w_sends, span
        self._measured_rate = self._w_sends / span
        self._window_start = now
        self._w_sends = self._w_429 = self._w_trouble = 0
        self._w_peak = self._inflight

    def _end_window(self, now: float, span: float) -> None:
        cfg = self.config
        start = self._window_start
        start_before_cut = start is not None and start < self._cut_at
        if self._w_429 or self._w_trouble * 2 > self._w_sends or now < self._paused_until:
            return
        if self._shut.since is not None:
            return
        if span > 2.0 * self.window:
            return  # the domain was idle: nothing learned
        if not self._paced:
            floor = self._min_latency
            if floor is not None and self._latency is not None and self._latency > 2 * floor:
                # Round trips twice the shortest seen: requests queue somewhere (the
                # server, or a client already at full CPU), so more in flight would
                # not go faster; it would only put more in the way of the first 429.
                return
            if self._w_peak >= self._limit:
                self._limit = min(
                    max(self._limit + 1, int(self._limit * cfg.slow_start)), self._max
                )
            return
        if self._hinted(now):
            self._hint_scale = min(1.0, self._hint_scale + cfg.probe)
            return
        if self._w_sends < 0.8 * self._rate * span and self._w_peak < self._limit:
            return  # the pacer was not the bottleneck: a higher rate would not be used
        if start_before_cut:
            return
        searching = self._ceiling == 0.0
        gate = self._growth_gate if searching else max(self._growth_gate, _STEP_SENDS / self._rate)
        if now - self._grown_at < gate:
            return  # a window limiter only tells within its window whether a pace fits
        self._grown_at = now
        self._clean_rate = self._rate
        self._over_clean = False
        if self._conc_cap and now - self._conc_at > _CONC_PROBE:
            self._conc_cap += 1  # the server may allow more in flight now
            self._conc_at = now
        # Careful near the rate where 429s began, faster away from it: below it the
        # last cut may have been too deep, above it the limit has moved up.
        ceiling = self._ceiling
        if ceiling == 0.0:
            # Paced after a first 429 that may have been a burst: find the ceiling at
            # +25% per round trip, so it is overshot by 25% at most.
            self._clean_rate = self._rate
            self._rate *= _PACED_GROWTH
            return
        distance = self._rate / ceiling - 1.0
        curve = _PROBE_CURVE_ABOVE * distance if distance > 0 else -_PROBE_CURVE_BELOW * distance
        # a long clean stretch says the limit is further up (probing.py); not for a
        # window limiter, which tells only at its window's end
        boost = 1.0 if self._growth_gate or self._shuts_out() else self._clean_run.step()
        if boost > _BOOST_ABOVE and self._rate > self._cut_from:
            # past the pace refused last, a bucket's burst may hide an overshoot
            # for a while: the steps grow less there
            boost = _BOOST_ABOVE
        if boost == 1.0 and self._spacing.spaced:
            boost = _SPACED_STEP
        step = cfg.probe * ceiling * (1.0 + curve) * boost
        self._rate += min(step, _MAX_STEP * self._rate) if boost > 1.0 else step
        self._rate = max(self._rate, self._windows.toward_hi(self._rate))
        if self._latency is not None:
            self._rate = min(self._rate, 2.0 * self._max / self._latency)

    def _current_send_rate(self, now: float) -> float:
        start = self._window_start if self._window_start is not None else now
        span = (now - start) + self._prev_span
        sends = self._w_sends + self._prev_sends
        return sends / span if span > 0 else float(sends) / self.window

    def _resize(self) -> None:
        if not self._paced:
            return
        latency = self._latency if self._latency is not None else self.window
        need = math.ceil(self._rate * latency * self.config.headroom)
        top = min(self._conc_cap or self._max, self._max)
        self._limit = max(1, min(need, top))
        if self._conc_cap and self._rate * latency > 2 * top:
            self._rate = 2 * top / latency  # the cap binds: a higher pace means nothing

    # ---- eviction ------------------------------------------------------------------
    def memo(self) -> tuple[float, ...]:
        """What this controller learned, in a few floats: a broad crawl drops idle
        domains' controllers and builds them again from this when work returns."""
        return (
            float(self._limit),
            self._rate if self._paced else 0.0,
            self._ceiling,
            -1.0 if self._latency is None else self._latency,
            self._paused_until,
            self._next_send,
            self._hint_scale,
        )

    def restore(self, memo: tuple[float, ...]) -> None:
        """Continue from :meth:`memo`: the learned rate, cap, pause and pacing hold."""
        limit, rate, ceiling, latency, paused_until, next_send, hint_scale = memo
        self._limit = max(1, min(int(limit), self._max))
        self._paced = rate > 0.0
        self._rate = rate
        self._ceiling = ceiling
        self._latency = None if latency < 0 else latency
        self._paused_until = paused_until
        self._next_send = next_send
        self._hint_scale = hint_scale

    # ---- stats ---------------------------------------------------------------------
    def _row_rate(self) -> float | None:
        return round(self._rate, 1) if self._paced else None

    def snapshot(self) -> dict[str, Any]:
        timeline = self._timeline.rows(self._limit, self._row_rate())
        return {
            "concurrency": self._limit,
            "rate": round(self._rate, 2) if self._paced else None,
            "send_rate": round(self._measured_rate, 1),
            "latency_ms": None if self._latency is None else round(self._latency * 1000, 1),
            "cuts": self.cuts,
            "pauses": self.pauses,
            "blocks": self.blocks,
            "spaced": self._spacing.spaced,
            "window_s": round(self._windows.window, 2) if self._windows.window else None,
            "quiet_s": round(self._shut.quiet.quiet, 2) if self._shut.quiet.quiet else None,
            "bad_hints": self.bad_hints,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "timeline": timeline,
        }
