"""The cases bench.py times, each run as `python -m benchmarks.cases CASE [ARGS]` in a fresh
process; each prints one line of JSON. Data comes the way reportgen loads it (data.load,
data.to_input) so the comparison includes what the product's own data path costs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from reportgen import data, notebook

BATCH = notebook.BATCH_SIZE
T = TypeVar("T")


def _images(n: int) -> data.Dataset:
    return data.load(train_limit=n, test_limit=1000)


def _rate(n: int, seconds: float) -> float:
    return n // BATCH * BATCH / seconds


def reportgen(n: str) -> dict:
    from reportgen.net import devices, train

    history = train.fit(_images(int(n)), train.TrainConfig(epochs=2), devices.parse_contexts("cpu"))[1]
    return {"images_per_second": history.epochs[1].images_per_second}


def _gluon_loop(n: str, hybridize: bool) -> dict:
    """net, loss, backward, trainer.step and nothing else, on reportgen's LeNet."""
    import mxnet as mx
    from mxnet import autograd, gluon

    from reportgen.net import model

    dataset = _images(int(n))
    x = mx.nd.array(data.to_input(dataset.train_x))
    y = mx.nd.array(dataset.train_y, dtype="float32")
    net = model.LeNet()
    net.initialize(model.initializer())
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(
        net.collect_params(),
        "sgd",
        {"learning_rate": notebook.LEARNING_RATE, "momentum": notebook.MOMENTUM, "wd": notebook.WEIGHT_DECAY},
    )

    def one_pass() -> float:
        started = time.perf_counter()
        for i in range(0, len(x) - len(x) % BATCH, BATCH):
            with autograd.record():
                loss = loss_fn(net.logits(x[i : i + BATCH]), y[i : i + BATCH])
            loss.backward()
            trainer.step(BATCH)
        mx.nd.waitall()
        return time.perf_counter() - started

    one_pass()
    return {"images_per_second": _rate(len(x), one_pass())}


def bare(n: str) -> dict:
    return _gluon_loop(n, hybridize=True)


def imperative(n: str) -> dict:
    return _gluon_loop(n, hybridize=False)


def seed_symbol():
    """The seed's network as its R code builds it, SoftmaxOutput head included."""
    import mxnet as mx

    s = mx.sym.var("data")
    s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=20, name="Conv1")
    s = mx.sym.Activation(s, act_type="tanh", name="Act1")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), name="Pool1")
    s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=50, name="Conv2")
    s = mx.sym.Activation(s, act_type="tanh", name="Act2")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), name="Pool2")
    s = mx.sym.flatten(s, name="Flat")
    s = mx.sym.FullyConnected(s, num_hidden=500, name="Full1")
    s = mx.sym.Activation(s, act_type="tanh", name="Act3")
    s = mx.sym.FullyConnected(s, num_hidden=10, name="Full2")
    return mx.sym.SoftmaxOutput(s, name="SoftM")


def module(n: str) -> dict:
    """mx.mod.Module.fit with NDArrayIter and the accuracy metric, as the seed trained."""
    import mxnet as mx

    from reportgen.net import model

    dataset = _images(int(n))
    it = mx.io.NDArrayIter(
        data.to_input(dataset.train_x),
        dataset.train_y.astype(np.float32),
        BATCH,
        shuffle=True,
        last_batch_handle="discard",
        label_name="SoftM_label",
    )
    ends: list[float] = []
    mod = mx.mod.Module(seed_symbol(), context=mx.cpu(), label_names=["SoftM_label"])
    mod.fit(
        it,
        num_epoch=2,
        optimizer="sgd",
        initializer=model.initializer(),
        eval_metric="acc",
        optimizer_params={
            "learning_rate": notebook.LEARNING_RATE,
            "momentum": notebook.MOMENTUM,
            "wd": notebook.WEIGHT_DECAY,
        },
        epoch_end_callback=lambda *args: (mx.nd.waitall(), ends.append(time.perf_counter())),
    )
    return {"images_per_second": _rate(len(dataset.train_x), ends[1] - ends[0])}


def module_bare(n: str) -> dict:
    """The strongest Module loop: bind, init, then per batch `forward_backward` and `update`,
    no metric; the images on the device once, each epoch one take() in reportgen's order."""
    import mxnet as mx

    from reportgen.net import model

    dataset = _images(int(n))
    x = mx.nd.array(data.to_input(dataset.train_x))
    y = mx.nd.array(dataset.train_y, dtype="float32")
    mx.random.seed(notebook.SEED)
    mod = mx.mod.Module(seed_symbol(), context=mx.cpu(), label_names=["SoftM_label"])
    mod.bind(data_shapes=[("data", (BATCH, 1, 28, 28))], label_shapes=[("SoftM_label", (BATCH,))])
    mod.init_params(model.initializer())
    mod.init_optimizer(
        optimizer="sgd",
        optimizer_params={
            "learning_rate": notebook.LEARNING_RATE,
            "momentum": notebook.MOMENTUM,
            "wd": notebook.WEIGHT_DECAY,
            "rescale_grad": 1.0 / BATCH,
        },
    )
    steps = len(x) // BATCH

    def one_pass(epoch: int) -> float:
        started = time.perf_counter()
        order = mx.nd.array(np.random.default_rng([notebook.SEED, epoch]).permutation(len(x)), dtype="int64")
        xs, ys = x.take(order), y.take(order)
        for s in range(steps):
            mod.forward_backward(mx.io.DataBatch([xs[s * BATCH : (s + 1) * BATCH]], [ys[s * BATCH : (s + 1) * BATCH]]))
            mod.update()
        mx.nd.waitall()
        return time.perf_counter() - started

    one_pass(1)
    return {"images_per_second": _rate(len(x), one_pass(2))}


def settings() -> dict:
    """The environment a case runs with, once this module (and reportgen with it) is imported."""
    import os

    from reportgen import runtime

    return {name: os.environ.get(name) for name in runtime.defaults()}


def torch_available() -> dict:
    try:
        import torch
    except ImportError:
        return {"available": False}
    return {"available": True, "version": torch.__version__}


def torch(n: str) -> dict:
    """The same LeNet, loss and optimizer in PyTorch, eager, its default threads."""
    import torch
    from torch import nn

    torch.manual_seed(notebook.SEED)
    dataset = _images(int(n))
    x = torch.from_numpy(data.to_input(dataset.train_x))
    y = torch.from_numpy(dataset.train_y.astype(np.int64))
    net = nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.Tanh(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5),
        nn.Tanh(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.Tanh(),
        nn.Linear(500, 10),
    )
    optimizer = torch.optim.SGD(
        net.parameters(), lr=notebook.LEARNING_RATE, momentum=notebook.MOMENTUM, weight_decay=notebook.WEIGHT_DECAY
    )
    loss_fn = nn.CrossEntropyLoss()

    def one_pass() -> float:
        started = time.perf_counter()
        for i in range(0, len(x) - len(x) % BATCH, BATCH):
            optimizer.zero_grad()
            loss_fn(net(x[i : i + BATCH]), y[i : i + BATCH]).backward()
            optimizer.step()
        return time.perf_counter() - started

    one_pass()
    return {"images_per_second": _rate(len(x), one_pass())}


def sgemm() -> dict:
    import mxnet as mx

    a = mx.nd.random.uniform(shape=(4096, 4096))
    mx.nd.dot(a, a).wait_to_read()
    started = time.perf_counter()
    for _ in range(5):
        mx.nd.dot(a, a).wait_to_read()
    return {"gflops": 5 * 2 * 4096**3 / (time.perf_counter() - started) / 1e9}


def inference(n: str) -> dict:
    import mxnet as mx

    from reportgen.net import model, predict

    dataset = data.load(train_limit=1, test_limit=int(n))
    net = model.build(mx.cpu(), seed=notebook.SEED)
    predict.predict(net, dataset.test_x, mx.cpu())  # builds the graph for this batch size
    started = time.perf_counter()
    predict.predict(net, dataset.test_x, mx.cpu())
    seconds = time.perf_counter() - started
    return {"images": len(dataset.test_x), "seconds": seconds, "images_per_second": len(dataset.test_x) / seconds}


def inspection() -> dict:
    import mxnet as mx

    from reportgen.net import inside, model
    from reportgen.run.record import TRAINED_HERE, ModelRecord

    dataset = data.load(train_limit=1, test_limit=1000)
    network = model.network(model.build(mx.cpu(), seed=notebook.SEED), ModelRecord(TRAINED_HERE, 1))
    started = time.perf_counter()
    inside.run(network, dataset.test_x, dataset.test_y, [0], mx.cpu())
    one = time.perf_counter() - started
    many = list(range(256))
    started = time.perf_counter()
    inside.run(network, dataset.test_x, dataset.test_y, many, mx.cpu())
    return {"one": one, "many": len(many), "many_seconds": time.perf_counter() - started}


def render_split(run: str) -> dict:
    """The render's stages timed one by one, every figure drawn (no cache): imports, data,
    figures, HTML, PDF. The run is read as `reportgen render` reads it (predictions.npz
    included: the ROC figure)."""
    started = time.perf_counter()
    import weasyprint  # noqa: F401  (imported here so the PDF's time is the PDF's)

    from reportgen.pipeline import stages
    from reportgen.report import context as report_context
    from reportgen.report import figures, pdf, templates
    from reportgen.run import finished

    imported = time.perf_counter() - started
    folder = Path(run)
    done = finished.read(folder)
    started = time.perf_counter()
    dataset = data.loaded(stages.reload_data(done.record, None))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    drawn = figures.make(
        dataset,
        done.history,
        done.evaluation,
        done.inspection,
        done.record.model.pixels,
        attributions=done.attributions,
        features=done.features,
    )
    drawing = time.perf_counter() - started
    context = report_context.context(
        done.record,
        done.history,
        done.evaluation,
        done.inspection,
        drawn,
        attributions=done.attributions,
        features=done.features,
    )
    started = time.perf_counter()
    templates.render_html(context)
    html = time.perf_counter() - started
    started = time.perf_counter()
    pdf.render_pdf(context, folder)
    return {"import": imported, "data": loaded, "figures": drawing, "html": html, "pdf": time.perf_counter() - started}


def pdf_input(run: str, out: str) -> dict:
    """`reportgen render --format pdf RUN` (the run a copy to spend), keeping the HTML it hands
    to WeasyPrint in OUT: what WeasyPrint alone is timed on (weasyprint_alone.py)."""
    import weasyprint

    from reportgen.cli import main

    real = weasyprint.HTML

    def keep(*args, **kwargs):
        Path(out).write_text(kwargs["string"])
        return real(*args, **kwargs)

    weasyprint.HTML = keep
    main(["render", "-q", "--format", "pdf", run], standalone_mode=False)
    return {"bytes": Path(out).stat().st_size}


def render_serial(run: str, title: str) -> dict:
    """`reportgen render --title TITLE RUN` with the PDF made in this process after the
    manifest, as before issue 21, instead of laid out in a forked child meanwhile
    (pipeline/pdfahead.py): what the child saves."""
    from reportgen.cli import main
    from reportgen.pipeline import pdfahead

    pdfahead.forkable = lambda: False
    main(["render", "-q", "--title", title, run], standalone_mode=False)
    return {}


def explanation(model_path: str, pixels: str, train_limit: str = "0") -> dict:
    """The explanations of a saved model (`--model`), stage by stage, as a build makes them after
    evaluating and inspecting: integrated gradients and occlusion for the images the report
    shows, act3 of the test images, the PCA, act3 of the training images with the neighbour
    search; then the section's figures. The evaluation pass over the test images, timed just
    before, is a yardstick on a shared machine. Peak resident memory (MXNet's included) before
    and after, and Python's own peak allocation (numpy's arrays) during. `pixels`: unit, raw or
    note (the model's own note); `train_limit` 0: the whole training file."""
    import resource
    import tracemalloc

    from reportgen.net import attribution, features, inside, predict, saved
    from reportgen.report import figures
    from reportgen.run.evaluation import score
    from reportgen.run.explanation import STEPS, Explained
    from reportgen.stats import features as stats_features

    dataset = data.load(train_limit=int(train_limit) or None)
    found = saved.find(model_path)
    network = saved.load(found, model_path, _cpu(), None if pixels == "note" else pixels)
    predict.probabilities(network, dataset.test_x, _cpu())  # builds the graph
    started = time.perf_counter()
    evaluation = score(predict.probabilities(network, dataset.test_x, _cpu()), dataset.test_y)
    yardstick = time.perf_counter() - started
    worst = evaluation.worst_pair.indices
    explained = Explained.of([worst[0]] if worst else [0], evaluation)
    cases = explained.indices()
    assert evaluation.predictions is not None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    seconds: dict[str, float] = {}

    def timed(stage: str, work: Callable[[], T]) -> T:
        clock = time.perf_counter()
        result = work()
        seconds[stage] = time.perf_counter() - clock
        return result

    block = inside.layer_block(network, "full2", _cpu())
    targets = evaluation.predictions[cases]
    truth = dataset.test_y[cases].astype(np.int64)
    weights = attribution.score_weights(targets, np.where(truth != targets, truth, -1))
    x = data.to_input(dataset.test_x[cases], network.pixels)
    ig = timed("integrated gradients", lambda: attribution.integrated_gradients(block, x, weights, _cpu()))
    timed("occlusion", lambda: attribution.occlusion(block, x, weights, _cpu()))
    act3 = inside.layer_block(network, "act3", _cpu())
    test = timed("act3 of the test images", lambda: features.act3(network, dataset.test_x, _cpu()))
    timed("PCA", lambda: stats_features.pca(test, 2))

    def search() -> None:
        nearest = stats_features.Nearest(test[list(explained.mistakes)], 5)
        for start, values in features.act3_batches(act3, dataset.train_x, network.pixels, _cpu()):
            nearest.add(values, start)
        nearest.result()

    timed("act3 of the training images and the neighbours", search)
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The section's figures, drawn in turn as a build draws them once MXNet is loaded.
    made = attribution.attributions(network, dataset.test_x, dataset.test_y, evaluation.predictions, cases, _cpu())
    found_features = features.features(
        network, dataset.test_x, dataset.train_x, dataset.train_y, list(explained.mistakes), _cpu()
    )
    jobs = figures.explanation_jobs(dataset, evaluation, made, found_features, explained)
    timed("the section's figures", lambda: [job() for job in jobs])
    steps = ig[3]
    return {
        "images": len(cases),
        "intervals": int(steps.sum()),
        "refined": int((steps > STEPS).sum()),
        "train_images": len(dataset.train_x),
        "evaluation": yardstick,
        "seconds": seconds,
        "rss_before_mb": before / 1024,
        "rss_after_mb": after / 1024,
        "python_peak_mb": python_peak / 2**20,
    }


def _cpu():
    import mxnet as mx

    return mx.cpu()


CASES: dict[str, Callable[..., dict]] = {
    f.__name__: f
    for f in (
        reportgen,
        bare,
        imperative,
        module,
        module_bare,
        settings,
        torch_available,
        torch,
        sgemm,
        inference,
        inspection,
        render_split,
        pdf_input,
        render_serial,
        explanation,
    )
}

if __name__ == "__main__":
    print(json.dumps(CASES[sys.argv[1]](*sys.argv[2:])))
