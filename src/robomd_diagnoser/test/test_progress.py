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


def test_other_units_and_figures_show_beside_the_count() -> None:
    out, clock = io.StringIO(), Clock()
    with ProgressReporter(3, "embed train", stream=out, every=1, unit="epoch",
                          clock=clock) as rep:
        for epoch in range(1, 4):
            clock.t = 5.0 * epoch
            rep.update(epoch, loss=f"{1 / epoch:.2f}")
    lines = out.getvalue().splitlines()
    assert lines[0] == "embed train: 1/3 epochs, loss 1.00, ETA ?"
    assert lines[1] == "embed train: 2/3 epochs, loss 0.50, ETA 0:05"
    assert lines[-1] == "embed train: 3/3 epochs, loss 0.33, ETA 0:00"


def test_long_commands_report_through_the_reporter(tmp_path) -> None:
    """A sweep without a terminal prints plain progress lines with its failures, not a bar."""
    import contextlib

    from diagnosis_fixtures import NAMES, catalog

    from robomd_diagnoser.jobs import RolloutJob
    from robomd_diagnoser.pools import InProcessPool
    from robomd_diagnoser.store import RolloutStore
    from robomd_diagnoser.sweep import run_jobs
    from robomd_diagnoser.table_world import TableWorld

    rates = {n: 1.0 if n == NAMES[0] else 0.0 for n in NAMES}
    jobs = [RolloutJob(f"{name}-{i}", (name,), i, 10) for i in range(12)
            for name in (NAMES[0], NAMES[1])]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), RolloutStore(tmp_path / "r.sqlite") as store:
        pool = InProcessPool(TableWorld(catalog(), rates), close_world=True)
        try:
            assert run_jobs(store, pool, jobs, progress=True) == 24
        finally:
            pool.close()
    lines = err.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "rollouts: 0/24 rollouts", "rollouts: 10/24 rollouts", "rollouts: 20/24 rollouts",
        "rollouts: 24/24 rollouts"]
    assert lines[-1].startswith("rollouts: 24/24 rollouts, 12 failures, 0 aborted")
    assert "\r" not in err.getvalue()
