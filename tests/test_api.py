import numpy as np
import pytest

from bench.api import BatchSampler, PluginError, Trainer, _validate, kmeans_shift_tolerance


def test_shuffled_epochs_visit_every_example_once_with_a_short_last_batch():
    sampler = BatchSampler(n=10, batch_size=4, sampling="shuffled-epochs", seed=1)
    first_epoch = [sampler.next() for _ in range(3)]
    assert [len(b) for b in first_epoch] == [4, 4, 2]
    assert sorted(np.concatenate(first_epoch)) == list(range(10))
    second = np.concatenate([sampler.next() for _ in range(3)])
    assert sorted(second) == list(range(10)) and sampler.epoch == 2
    assert not np.array_equal(np.concatenate(first_epoch), second)


def test_samplers_are_deterministic_for_a_seed():
    a = BatchSampler(100, 10, "with-replacement", seed=7)
    b = BatchSampler(100, 10, "with-replacement", seed=7)
    for _ in range(5):
        batch = a.next()
        assert batch.shape == (10,) and batch.max() < 100
        np.testing.assert_array_equal(batch, b.next())


def test_full_batch_is_every_example_in_order():
    assert list(BatchSampler(5, 2, "full-batch", seed=0).next()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="unknown sampling"):
        BatchSampler(5, 2, "random", seed=0)


def test_kmeans_tolerance_is_scikit_learns_rule():
    x = np.array([[0.0, 0.0], [2.0, 4.0]])
    assert kmeans_shift_tolerance(x, 1e-4) == pytest.approx(1e-4 * (1.0 + 4.0) / 2)


def _declare(**attributes):
    return type("Plugin", (Trainer,), attributes)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"model": "mlp", "framework": "x"}, "declare `name"),
        ({"name": "Bad Name", "model": "mlp", "framework": "x"}, "lowercase words"),
        ({"name": "ok", "model": "rnn", "framework": "x"}, "not one of"),
        ({"name": "ok", "model": "kmeans", "framework": "x"}, "subclasses Clusterer"),
        ({"name": "ok", "model": "mlp", "framework": "x", "requires": "torch"}, "tuple"),
    ],
)
def test_registration_says_what_is_wrong(attributes, message):
    with pytest.raises(PluginError, match=message):
        _validate(_declare(**attributes))


def test_registration_accepts_a_complete_declaration():
    _validate(_declare(name="my-numpy", model="mlp", framework="numpy"))


@pytest.mark.parametrize("name", ["9lives", "My-Numpy", "numpy_pure", "numpy--pure", "-x"])
def test_plugins_and_bench_new_refuse_the_same_names(name, tmp_path):
    from bench import scaffold

    with pytest.raises(PluginError, match="starting with a letter"):
        _validate(_declare(name=name, model="mlp", framework="numpy"))
    with pytest.raises(scaffold.ScaffoldError, match="starting with a letter"):
        scaffold.new_plugin(name, "mlp", tmp_path)


def test_importing_the_plugin_api_imports_no_harness_machinery():
    """bench.api is all a plugin imports: it must not pull in discovery (no import cycle)."""
    import subprocess
    import sys

    code = "import sys, bench.api; print(' '.join(m for m in sys.modules if m[:6] == 'bench.'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = set(done.stdout.split()) - {"bench.api", "bench.names"}
    assert imported and all(m.startswith("bench.scenarios") for m in imported), imported


def test_take_hands_over_the_same_batches_as_next():
    taken, stepped = (BatchSampler(10, 4, "shuffled-epochs", seed=5) for _ in range(2))
    indices, sizes = taken.take(4)
    expected = [stepped.next() for _ in range(4)]
    assert list(sizes) == [4, 4, 2, 4] and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, np.concatenate(expected))
