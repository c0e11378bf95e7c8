"""The terminal progress reporter: a bar on a terminal, plain lines otherwise, silent on request."""

from __future__ import annotations

import io

import pytest

from robomd_diagnoser.progress import EtaClock, ProgressReporter, format_duration


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_format_duration() -> None:
    assert format_duration(None) == "?"
    assert format_duration(9.6) == "0:10"
    assert format_duration(75) == "1:15"
    assert format_duration(3725) == "1:02:05"


def test_eta_counts_only_progress_seen_while_watching() -> None:
    clock = Clock()
    eta = EtaClock(clock)
    assert eta.eta(5, 25) is None  # a resumed run: 5 done before we looked
    clock.t = 10.0
    assert eta.eta(5, 25) is None
    clock.t = 20.0
    assert eta.eta(10, 25) == pytest.approx(60.0)  # 5 rollouts in 20 s -> 15 more in 60 s
    assert eta.eta(25, 25) == 0.0


def test_not_a_tty_prints_one_line_every_n_rollouts_and_the_last() -> None:
    out, clock = io.StringIO(), Clock()
    rep = ProgressReporter(7, "campaign lift", stream=out, every=3, clock=clock)
    for done in range(8):
        clock.t = 2.0 * done
        rep.update(done, failures=done // 2, aborted=1 if done > 4 else 0)
    rep.close()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == [
        "0/7 rollouts", "3/7 rollouts", "6/7 rollouts", "7/7 rollouts"]
    assert lines[1] == "campaign lift: 3/7 rollouts, 1 failures, 0 aborted, ETA 0:08"
    assert lines[-1].endswith("3 failures, 1 aborted, ETA 0:00")
    assert "\r" not in out.getvalue()


def test_not_a_tty_close_prints_where_it_stopped() -> None:
    out = io.StringIO()
    rep = ProgressReporter(10, "c", stream=out, every=5)
    rep.update(0, 0)
    rep.update(2, 1)
    rep.close()
    assert out.getvalue().splitlines()[-1].startswith("c: 2/10 rollouts, 1 failures")
    rep.close()  # idempotent
    assert len(out.getvalue().splitlines()) == 2


def test_tty_draws_a_bar_with_failures() -> None:
    out = Tty()
    rep = ProgressReporter(4, "campaign lift", stream=out)
    for done in range(5):
        rep.update(done, failures=min(done, 2))
    rep.close()
    text = out.getvalue()
    assert "\r" in text and "4/4" in text and "failures=2" in text and "rollout" in text


def test_no_progress_is_silent_on_a_tty_and_off_it() -> None:
    for out in (Tty(), io.StringIO()):
        rep = ProgressReporter(3, "c", stream=out, enabled=False)
        for done in range(4):
            rep.update(done, 1)
        rep.close()
        assert out.getvalue() == ""
        assert rep.done == 3 and rep.failures == 1


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every=0"):
        ProgressReporter(3, "c", every=0)
