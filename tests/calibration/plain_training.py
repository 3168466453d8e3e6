"""Times the same training the harness measures, with a plain script and no harness:
`python tests/calibration/plain_training.py [ROUNDS]` prints the median `train` time of
numpy-vectorized on dlfs-mlp (quick budget, mnist-5k) — compare it with
`bench run -s dlfs-mlp -i numpy-vectorized --dataset mnist-5k`. The two should agree within
a few percent; a larger gap means the harness adds cost to what it measures."""

import statistics
import sys
import time

from bench import datasets, plugins
from bench.execution.weights import initial_parameters
from bench.scenarios import SCENARIOS

scenario = SCENARIOS["dlfs-mlp"]
steps = scenario.budget("quick").steps
split = datasets.load_images(datasets.resolve("mnist-5k"))
x = (split.x_train.reshape(len(split.x_train), -1) / 255).astype("float32")
y = split.y_train
Trainer = plugins.discover(installed=False).find("numpy-vectorized", "mlp").cls

times = []
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
for seed in range(rounds + 1):  # seed 0 is the warm-up round, as in the harness
    trainer = Trainer(scenario, initial_parameters(scenario, seed), seed)
    trainer.load(x, y)
    start = time.perf_counter()
    trainer.train(steps)
    times.append(time.perf_counter() - start)
print(
    f"plain script: median train time {statistics.median(times[1:]):.4f} s "
    f"over {rounds} rounds (warm-up {times[0]:.4f} s)"
)
