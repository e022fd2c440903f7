"""reportgen.figures: every figure is well-formed SVG with a name and a caption, the same values give
the same bytes, and what the figures say matches hand-made values and the seed's numbers."""

from __future__ import annotations

import base64
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from conftest import fake_inspection, make_evaluation, make_history, metrics_body

from reportgen import data, notebook
from reportgen.errors import RenderError
from reportgen.layers import LAYERS
from reportgen.report import figures
from reportgen.run.history import History

SVG = "{http://www.w3.org/2000/svg}"
FIXED = [
    "first_digits",
    "class_counts",
    "network",
    "training_batches",
    "training_epochs",
    "confusion",
    "reliability",
    "ranking",
    "worst_cases",
    "top_errors",
    "kernels_conv1",
    "kernels_conv2",
]


def texts(figure: figures.Figure) -> list[str]:
    root = ET.fromstring(figure.svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    return data.load(train_limit=200, test_limit=100)


@pytest.fixture(scope="module")
def values(dataset: data.Dataset) -> tuple:
    """What figures.make draws from: hand-made values, two inspected digits."""
    return dataset, make_history(), make_evaluation(metrics_body(worst_count=3)), fake_inspection(dataset.test_y, 2)


@pytest.fixture(scope="module")
def drawn(values) -> dict[str, figures.Figure]:
    return figures.make(*values, processes=1)


# -- the whole set --------------------------------------------------------------------


def test_make_gives_every_figure_in_report_order(drawn):
    inside = [f"inside_{i}_{part}" for i in range(2) for part in ("input", *LAYERS)]
    assert list(drawn) == FIXED + inside
    assert sum(name.startswith("inside_") for name in drawn) == 2 * (1 + 11)


def test_each_figure_is_well_formed_svg_with_name_caption_and_alt(drawn):
    for name, figure in drawn.items():
        root = ET.fromstring(figure.svg)  # raises if not well-formed XML
        assert root.tag == f"{SVG}svg", name
        assert figure.name == name and figure.filename == f"{name}.svg"
        assert figure.caption.strip() and "\n" not in figure.caption, name
        assert figure.alt.strip(), name
        assert base64.b64decode(figure.data_uri.split(",", 1)[1]) == figure.svg
        assert figure.data_uri.startswith("data:image/svg+xml;base64,")


def test_figures_fit_the_page(drawn):
    # 17 cm content width (6.7 in = 482.4 pt) and at most 9 in (648 pt) tall
    for name, figure in drawn.items():
        root = ET.fromstring(figure.svg)
        width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
        assert width <= 482.5 and height <= 648.1, (name, width, height)


def test_text_stays_text_and_no_date_is_written(drawn):
    svg = drawn["network"].svg.decode()
    assert "conv1" in texts(drawn["network"])
    assert "<dc:date>" not in svg


def test_same_values_give_the_same_bytes(values, drawn):
    again = figures.make(*values)  # drawn once more
    assert list(again) == list(drawn)
    for name in again:
        assert again[name].svg == drawn[name].svg, name


# In a fresh interpreter, which has not loaded mxnet: the figures drawn by two processes and by
# one, as digests, and the number of processes the pool would use by itself.
POOLED = r"""
import hashlib, json, sys
sys.path.insert(0, "tests")
from conftest import fake_inspection, make_evaluation, make_history
from reportgen import data
from reportgen.report import figures
from reportgen.report.figures import pool
dataset = data.load(train_limit=200, test_limit=100)
values = (dataset, make_history(), make_evaluation(), fake_inspection(dataset.test_y, 2))
digest = lambda drawn: {name: hashlib.sha256(f.svg).hexdigest() for name, f in drawn.items()}
told, saved = [], []
early = figures.make(*values, processes=2, early=lambda *a: told.append(a), saved=saved.append)
(placed, pending), = told
words = lambda f: [f.name, f.caption, f.alt]
print(json.dumps({"pooled": digest(figures.make(*values, processes=2)),
                  "serial": digest(figures.make(*values, processes=1)),
                  "early": digest(early), "saved": [f.name for f in saved],
                  "saved_digests": digest({f.name: f for f in saved}),
                  "placed": {name: words(f) + [f.svg.decode()] for name, f in placed.items()},
                  "final": {name: words(f) + [f.svg.decode()] for name, f in early.items()},
                  "pending": sorted(pending),
                  "workers": pool.workers(), "mxnet": "mxnet" in sys.modules}))
"""


@pytest.fixture(scope="module")
def pooled() -> dict:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", POOLED], cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_pool_of_processes_draws_the_same_bytes(pooled):
    import os

    result = pooled
    assert not result["mxnet"] and result["workers"] == min(4, os.cpu_count() or 1)
    assert list(result["pooled"]) == list(result["serial"]) and result["pooled"] == result["serial"]


def test_a_pool_says_every_figure_s_words_and_size_before_its_svg(pooled):
    import re

    result = pooled
    assert result["early"] == result["serial"]  # the same bytes, though saved after the words were told
    names = list(result["serial"])
    assert list(result["placed"]) == names and result["pending"] == sorted(names)  # nothing from a cache
    assert sorted(result["saved"]) == sorted(names)  # each told once ...
    assert result["saved_digests"] == result["serial"]  # ... with the bytes drawn in turn
    root_attributes = re.compile(r'<svg [^>]*?width="([^"]+)" height="([^"]+)" viewBox="([^"]+)"')
    for name in names:
        *words, placeholder = result["placed"][name]
        *final_words, svg = result["final"][name]
        assert words == final_words, name
        # The placeholder's size is the one savefig wrote (WeasyPrint lays the page out with it).
        assert root_attributes.search(placeholder).groups() == root_attributes.search(svg).groups(), name
        assert "<script" not in placeholder and len(placeholder) < 300


# A figure job that fails, or whose worker is killed, while the others are built and saved,
# with `early` waiting (captions long enough that a message with them would not fit in one
# write to a pipe): the job's own error, or a broken pool, raised in the caller, and no
# worker left behind.
FAILING = r"""
import functools, json, multiprocessing, os, signal, sys
from reportgen.errors import RenderError
from reportgen.report.figures import pool, style

def bad():
    raise RenderError("test image 70000 is beyond the 10000 test images loaded")

def killed():  # a worker killed as it draws (the OOM killer, a kill -9)
    os.kill(os.getpid(), signal.SIGKILL)

jobs = [functools.partial(style.message, f"m{i}", "nothing to draw", "a caption" * 200) for i in range(5)]
outcome = {}
for name, failing in (("error", bad), ("killed", killed)):
    told = []
    try:
        pool.draw([*jobs[:3], failing, *jobs[3:]], processes=2, early=told.append, saved=lambda f: None)
        outcome[name] = None
    except Exception as e:
        outcome[name] = [type(e).__name__, str(e)[:80]]
    outcome[name + "_told"] = len(told)
    outcome[name + "_left"] = len(multiprocessing.active_children())
print(json.dumps(outcome))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no workers, the jobs run in the caller")
def test_a_figure_s_error_or_a_dead_worker_is_raised_and_leaves_no_worker():
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", FAILING], cwd=root, capture_output=True, text=True, check=True, timeout=300
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["error"] == ["RenderError", "test image 70000 is beyond the 10000 test images loaded"]
    assert result["killed"][0] == "BrokenProcessPool"  # not a wait for a message that never comes
    assert result["error_told"] == result["killed_told"] == 0  # `early` never saw half the figures
    assert result["error_left"] == result["killed_left"] == 0


def test_no_pool_once_mxnet_is_loaded():
    import mxnet  # noqa: F401  (its engine threads make forking unsafe)

    from reportgen.report.figures import pool

    assert pool.workers() == 1


def test_matplotlib_global_state_is_left_alone():
    before = dict(matplotlib.rcParams)
    figures.confusion(np.array(notebook.CONFUSION_TABLE))
    assert dict(matplotlib.rcParams) == before


# -- tile -----------------------------------------------------------------------------


def test_tile_against_a_hand_built_array():
    maps = np.arange(12, dtype=float).reshape(3, 2, 2)  # three 2x2 maps, two per row
    n = np.nan
    expected = np.array(
        [
            [0, 1, n, 4, 5],
            [2, 3, n, 6, 7],
            [n, n, n, n, n],
            [8, 9, n, n, n],
            [10, 11, n, n, n],
        ]
    )
    np.testing.assert_array_equal(figures.tile(maps, cols=2, pad=1), expected)


def test_tile_with_separate_pads_and_a_fill_value():
    maps = np.ones((2, 1, 2))
    out = figures.tile(maps, cols=1, pad=(2, 5), fill=-1)  # one column: no column gap shows
    np.testing.assert_array_equal(out, [[1, 1], [-1, -1], [-1, -1], [1, 1]])
    np.testing.assert_array_equal(figures.tile(maps, cols=3, pad=0, fill=0), [[1, 1, 1, 1, 0, 0]])


def test_tile_refuses_what_is_not_a_stack_of_maps():
    with pytest.raises(ValueError):
        figures.tile(np.zeros((4, 4)), cols=2)
    with pytest.raises(ValueError):
        figures.tile(np.zeros((2, 3, 3)), cols=0)


def test_a_mosaic_is_one_image_not_one_per_map(drawn):
    for layer in ("conv1", "act2", "pool2"):
        images = list(ET.fromstring(drawn[f"inside_0_{layer}"].svg).iter(f"{SVG}image"))
        assert len(images) == 2, layer  # the mosaic and its colour bar


# -- what the figures say ---------------------------------------------------------------


def test_confusion_cells_hold_the_seed_table_rows_predictions(drawn):
    root = ET.fromstring(drawn["confusion"].svg)
    cells = {
        g.get("id"): "".join(g.itertext()).strip()
        for g in root.iter(f"{SVG}g")
        if (g.get("id") or "").startswith("cell-")
    }
    assert len(cells) == 100
    for r, row in enumerate(notebook.CONFUSION_TABLE):  # rows are predictions
        for c, count in enumerate(row):
            assert cells[f"cell-{r}-{c}"] == str(count), (r, c)
    # the seed's worst pair: 10 images of 4 predicted as 9
    caption = drawn["confusion"].caption
    assert (
        f"{notebook.WORST_PAIR['count']} images of {notebook.WORST_PAIR['reference']} "
        f"predicted as {notebook.WORST_PAIR['prediction']}" in caption
    )


def test_first_digits_are_labelled_as_the_seed_shows(drawn):
    labels = [t for t in texts(drawn["first_digits"]) if re.fullmatch(r"\d", t)]
    assert tuple(int(t) for t in labels[:5]) == notebook.FIRST_TRAIN_LABELS


def test_worst_cases_titles_the_pair_and_marks_its_bars(drawn):
    words = " ".join(texts(drawn["worst_cases"]))
    assert "Labelled 4, predicted 9" in words
    assert "label 4" in words and "prediction 9" in words


def test_worst_cases_with_no_errors_says_so(dataset):
    empty = metrics_body()
    empty["worst_pair"] = {"prediction": None, "reference": None, "count": 0, "indices": [], "probabilities": []}
    figure = figures.worst_cases(dataset, make_evaluation(empty).worst_pair)
    ET.fromstring(figure.svg)
    assert figure.name == "worst_cases"
    assert any("no" in t.lower() and "misclassified" in t for t in texts(figure))


def test_top_errors_show_label_arrow_prediction_and_confidence(drawn):
    words = texts(drawn["top_errors"])
    # Each digit's two lines, label → prediction over its confidence, in order of confidence.
    assert words[:6] == ["4 → 9", "p=0.97", "5 → 3", "p=0.90", "7 → 2", "p=0.60"]


def test_reliability_title_has_the_ece_and_empty_bins_do_not_break_it(drawn):
    words = texts(drawn["reliability"])
    assert any("ECE = 1.23%" in t for t in words)
    root = ET.fromstring(drawn["reliability"].svg)
    counts = {
        g.get("id"): "".join(g.itertext()).strip()
        for g in root.iter(f"{SVG}g")
        if (g.get("id") or "").startswith("count-")
    }
    # one count per bin that holds images, labelled by the bin's lower edge: bins 2 and 3 are empty
    assert counts == {f"count-{k / 10:.1f}": "9,920" if k == 9 else "10" for k in (0, 3, 4, 5, 6, 7, 8, 9)}
    assert "1,000" in words and "10,000" in words  # the log axis in plain numbers


def markers(figure: figures.Figure, series: str) -> int:
    """Markers drawn in one series (a line with a gid); SVG draws each as a <use>."""
    root = ET.fromstring(figure.svg)
    group = next(g for g in root.iter(f"{SVG}g") if g.get("id") == series)
    return len(list(group.iter(f"{SVG}use")))


def test_one_epoch_is_drawn_as_points(dataset):
    # a one-point line is invisible: each series must carry a marker
    figure = figures.training_epochs(make_history(epochs=1, batches=3))
    for series in ("train-accuracy", "test-accuracy", "train-loss", "test-loss"):
        assert markers(figure, series) == 1, series
    batches = figures.training_batches(make_history(epochs=1, batches=1))
    assert markers(batches, "batch-loss") == 1 and markers(batches, "batch-accuracy") == 1


def test_many_batches_and_epochs(dataset):
    figure = figures.training_batches(make_history(epochs=12, batches=150))
    words = texts(figure)
    assert "epoch" in words and "12" in words  # the epoch axis along the top
    assert "1,800" in figure.caption


def test_a_run_without_training_gets_a_note_not_a_crash():
    for draw in (figures.training_batches, figures.training_epochs):
        figure = draw(History.empty())
        assert "No training" in " ".join(texts(figure))


def test_tanh_layers_use_the_fixed_scale_and_bars_mark_label_and_prediction(drawn, values):
    values = values[3]
    colour_bar = " ".join(texts(drawn["inside_0_act1"]))
    assert "−1.00" in colour_bar and "1.00" in colour_bar and "[-1, 1]" in colour_bar
    label, prediction = int(values.labels[0]), int(values.predictions[0])
    words = " ".join(texts(drawn["inside_0_softm"]))
    if label == prediction:
        assert f"label {label} = prediction" in words
    else:
        assert f"label {label}" in words and f"prediction {prediction}" in words
    assert f"p={values.outputs['softm'][0][prediction]:.2f}" in drawn["inside_0_softm"].caption


def test_test_indices_beyond_the_data_are_a_clear_error(dataset):
    bad = metrics_body()
    bad["top_errors"][0]["index"] = len(dataset.test_x) + 5
    with pytest.raises(RenderError, match="beyond the 100 test images"):
        figures.top_errors(dataset, make_evaluation(bad).top_errors)


# -- ROC and precision-recall; the baseline's section -------------------------------------


@pytest.fixture(scope="module")
def compared(dataset):
    """Two evaluations of the 100 test images: the baseline misses 0-5, this run 4-9."""
    from conftest import scored

    from reportgen.run import comparison

    labels = dataset.test_y.astype(np.int64)
    before, after = labels.copy(), labels.copy()
    before[:6] = (labels[:6] + 1) % 10
    after[4:10] = (labels[4:10] + 3) % 10
    baseline, current = scored(before, labels, 0.7), scored(after, labels, 0.9)
    return baseline, current, comparison.compare(baseline, current, "base")


def test_the_ranking_figure_names_the_average_it_quotes(compared):
    _, current, _ = compared
    figure = figures.ranking(current.ranking)
    shown = " ".join(texts(figure))
    assert f"AUC macro {current.overall.roc_auc_macro:.4f}" in shown
    assert f"micro {current.overall.roc_auc_micro:.4f}" in shown
    assert "The AUC this report quotes is the macro average" in figure.caption
    assert "log scale" in shown  # the zoom: FPR on a log axis
    root = ET.fromstring(figure.svg)
    assert float(root.get("height").removesuffix("pt")) <= 648.1
    assert "no predictions.npz" in " ".join(texts(figures.ranking(None)))


def test_the_baseline_figures(dataset, compared):
    from conftest import make_record

    from reportgen.run.comparison import Baseline

    baseline, current, comparison = compared
    other = Baseline("base", make_record(), make_history(epochs=3), baseline, predicted_afresh=False)
    drawn = figures.make(
        dataset, make_history(), current, fake_inspection(dataset.test_y), baseline=other, comparison=comparison
    )
    names = ["baseline_classes", "baseline_confusion", "baseline_fixed", "baseline_broken", "baseline_training"]
    assert [name for name in drawn if name.startswith("baseline_")] == names
    assert list(drawn).index("baseline_classes") == list(drawn).index("ranking") + 1
    for name in names:
        root = ET.fromstring(drawn[name].svg)
        width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
        assert width <= 482.5 and height <= 648.1, name
    # the difference's cells say the raw change: 4 and 5 wrong in both, 0-3 fixed, 6-9 broken
    cells = {}
    for g in ET.fromstring(drawn["baseline_confusion"].svg).iter(f"{SVG}g"):
        if (g.get("id") or "").startswith("diff-"):
            cells[g.get("id")] = "".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))
    diff = comparison.confusion_difference
    for (r, c), value in np.ndenumerate(diff):
        want = "0" if value == 0 else f"{value:+d}".replace("-", "\u2212")
        assert cells[f"diff-{r}-{c}"] == want, (r, c)
    fixed = " ".join(texts(drawn["baseline_fixed"]))
    assert "4 of the 4 test images this run fixed" in fixed
    first = comparison.fixed[0]
    assert f"#{first.index}" in fixed and f"{first.baseline_prediction} → {first.prediction}" in fixed
    assert "4 of the 4 test images this run broke" in " ".join(texts(drawn["baseline_broken"]))
    bars = texts(drawn["baseline_classes"])
    for row in comparison.by_class:  # each digit's F1 change, in points, beside its bar
        assert f" {100 * row.f1:+.2f} ".replace("-", "\u2212") in bars, row
    training = ET.fromstring(drawn["baseline_training"].svg)
    ids = {g.get("id") for g in training.iter(f"{SVG}g")}
    assert {"run-test-accuracy", "baseline-test-accuracy", "baseline-train-loss"} <= ids
    assert "recorded no training epochs" in figures.baseline_training(make_history(), None).caption
    assert figures.baseline_fixed(dataset, compare_without_changes(baseline)).alt.startswith("This run fixed no")


def compare_without_changes(evaluation):
    from reportgen.run import comparison

    return comparison.compare(evaluation, evaluation, "itself")
