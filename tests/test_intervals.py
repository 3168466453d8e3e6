"""The two-level noise model (rounds inside processes, processes inside a run), the intervals
built on it, the adaptive stop rule, and the simulation that checks the intervals' coverage
at the round counts the profiles use."""

import math

import numpy as np
import pytest

from bench.analysis import coverage, intervals, stopping
from bench.analysis.intervals import Pool, median_interval, ratio_interval, spread
from bench.analysis.stopping import ProcessRun, RoundRule, next_process


def test_a_spread_separates_the_noise_of_processes_from_that_of_rounds():
    # Two processes, their rounds 1 % apart, their means 10 % apart.
    groups = [[1.0, 1.01, 0.99], [1.1, 1.111, 1.089]]
    item = spread(groups)
    assert item.n == 6 and item.processes == 2
    assert item.within == pytest.approx(1e-4, rel=0.05)
    assert item.between == pytest.approx(math.log(1.1) ** 2 / 2, rel=0.05)
    assert item.between_df == 1
    # one round per process: the levels cannot be told apart
    assert spread([[1.0], [1.1]]).between_df == 0
    assert math.isnan(spread([[1.0], [1.1]]).between)


def test_the_pool_weights_cases_by_what_they_tell_about_processes():
    rng = np.random.default_rng(0)

    def case(between: float, within: float) -> intervals.Spread:
        return spread(
            [list(np.exp(rng.normal(rng.normal(0, between), within, 2))) for _ in range(2)]
        )

    calm = [case(0.02, 0.002) for _ in range(40)]
    noisy = [case(0.02, 0.2) for _ in range(4)]  # rounds so noisy they hide their processes
    pooled = Pool.of(calm + noisy)
    assert math.sqrt(pooled.variance) == pytest.approx(0.02, rel=0.3)
    assert 10 < pooled.df <= 44
    assert Pool.of([]).df == 0 and math.isnan(Pool.of([]).variance)


def test_the_noise_between_processes_widens_an_interval_that_rounds_alone_would_narrow():
    steady_rounds = [[1.0, 1.001, 0.999], [1.05, 1.051, 1.049]]  # processes disagree by 5 %
    alone = median_interval([steady_rounds[0] + steady_rounds[1]])  # as if one process
    both = median_interval(steady_rounds)
    assert both.half_width > alone.half_width
    assert both.between_included
    # one process and nobody else's processes: the label says what the interval leaves out
    one = median_interval([[1.0, 1.01, 0.99]])
    assert not one.between_included and one.label == intervals.ONE_PROCESS_LABEL
    # ... the run's other cases supply it
    others = Pool.of([spread(steady_rounds)] * 5)
    assert median_interval([[1.0, 1.01, 0.99]], others).between_included


def test_a_ratio_interval_counts_both_sides_and_says_when_it_excludes_one():
    slow = [[2.0, 2.02, 1.98], [2.04, 2.05, 2.03]]
    fast = [[1.0, 1.01, 0.99], [1.02, 1.03, 1.01]]
    ratio = ratio_interval(slow, fast)
    assert ratio.estimate == pytest.approx(2.0, rel=0.02)
    assert ratio.significant and ratio.low > 1.5
    same = ratio_interval(fast, [[1.01, 1.0, 1.02], [0.99, 1.0, 1.01]])
    assert same.finite and not same.significant
    assert not ratio_interval([[2.0]], [[1.0]]).finite  # one round a side: no interval


def test_the_stop_rule_spreads_the_minimum_over_the_processes_first():
    rule = RoundRule(processes=2, min_rounds=5, max_rounds=12, target=0.05, budget_s=100)
    assert next_process(rule, [], 0.0).rounds == 3
    first = ProcessRun((1.0, 1.0, 1.0), 5.0)
    assert next_process(rule, [first], 5.0).rounds == 2


def test_the_stop_rule_stops_at_the_target_and_asks_for_more_when_short_of_it():
    rule = RoundRule(processes=2, min_rounds=4, max_rounds=12, target=0.05, budget_s=100)
    precise = [ProcessRun((1.0, 1.001), 3.0), ProcessRun((1.0005, 0.9995), 3.0)]
    others = Pool.of([spread([[1.0, 1.001], [1.002, 1.0]])] * 20)
    decision = next_process(rule, precise, 6.0, others)
    assert decision.rounds == 0 and decision.stopped == stopping.TARGET
    assert decision.interval.half_width <= 0.05
    noisy = [ProcessRun((1.0, 1.3), 3.0), ProcessRun((0.8, 1.1), 3.0)]
    more = next_process(rule, noisy, 6.0, others)
    assert 1 <= more.rounds <= 8 and not more.stopped


def test_the_stop_rule_keeps_to_the_maximum_and_the_budget():
    noisy = [ProcessRun((1.0, 1.3), 3.0), ProcessRun((0.8, 1.1), 3.0)]
    at_most_four = RoundRule(processes=2, min_rounds=4, max_rounds=4, target=0.05, budget_s=100)
    assert next_process(at_most_four, noisy, 6.0).stopped == stopping.FIXED
    up_to_six = RoundRule(processes=2, min_rounds=4, max_rounds=6, target=0.05, budget_s=100)
    history = [*noisy, ProcessRun((1.0, 1.2), 3.0)]
    assert next_process(up_to_six, history, 9.0).stopped == stopping.MAX_ROUNDS
    # the last process took 3 s, 1.1 s of it besides its rounds; a round takes about 1.05 s
    tight = RoundRule(processes=2, min_rounds=4, max_rounds=12, target=0.05, budget_s=7)
    assert next_process(tight, noisy, 5.0).stopped == stopping.BUDGET  # 1.1 + 1.05 > 2
    assert next_process(tight, noisy, 4.0).rounds == 1  # 1.1 + 1.05 <= 3, but not 2 rounds


RUNS, CASES = 40, 30  # 1 200 simulated cases, 600 ratios per rule: a few seconds each


@pytest.mark.parametrize(
    "rule",
    [r for r in coverage.profile_rules() if r.processes > 1],
    ids=lambda rule: ", ".join(coverage.profile_rules()[rule][:2]),
)
def test_the_intervals_cover_95_percent_at_the_round_counts_the_profiles_use(rule):
    """Each profile's rule, run as `bench run` runs it (adaptive rounds, the run's noise
    pooled), on simulated cases whose noise differs from case to case and whose rounds are
    now and then disturbed. 1 200 cases give the coverage to about +-0.6 %."""
    result = coverage.coverage(rule, runs=RUNS, cases=CASES, seed=1)
    assert result.medians == RUNS * CASES
    assert result.median_coverage >= 0.94, result.median_coverage
    assert result.ratio_coverage >= 0.94, result.ratio_coverage
    assert rule.min_rounds <= min(result.rounds) and max(result.rounds) <= rule.max_rounds


def test_the_simulation_catches_an_interval_that_leaves_the_processes_out():
    """The check has teeth: rounds of one process, and no other case's processes to learn
    from (what every run did before a case had several processes), cover far less than 95 %
    once processes differ."""
    one_process = RoundRule(processes=1, min_rounds=3, max_rounds=3)
    model = coverage.NoiseModel(between=(0.02, 0.06))
    result = coverage.coverage(one_process, model, runs=20, cases=CASES, seed=1)
    assert result.median_coverage < 0.85


def test_a_speed_up_inside_the_noise_keeps_its_estimate_and_says_not_significant():
    from bench.report.format import fmt_speedup, speedup_parts

    # 2.44x slower at the median, but the interval allows 3x slower to 2.4x faster
    wide = intervals.Interval(1 / 2.44, 0.32, 2.38, between_included=True)
    words, interval = speedup_parts(wide)
    assert words == "0.41×, not significant"
    assert interval == "0.32–2.38, 95 % CI"  # speed-ups, as the column's header
    assert fmt_speedup(wide, "torch") == "0.41× vs torch, not significant (0.32–2.38, 95 % CI)"
    slower = intervals.Interval(1 / 2.44, 1 / 2.8, 1 / 2.1)
    assert speedup_parts(slower) == ("2.44×\xa0slower", "2.10–2.80, 95 % CI")
    faster = intervals.Interval(2.31, 2.1, 2.52)
    assert fmt_speedup(faster, "torch") == "2.31×\xa0faster than torch (2.10–2.52, 95 % CI)"
    one_process = intervals.Interval(2.31, 2.1, 2.52, between_included=False)
    assert speedup_parts(one_process)[1] == "2.10–2.52, 95 % CI of one process's rounds"
    assert speedup_parts(intervals.Interval(2.0))[1] == "too few rounds for a CI"
