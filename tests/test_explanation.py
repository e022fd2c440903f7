"""The explanations' files, figures and section, and the commands that make and read them:
attributions.npz and features.npz refusing malformed files with one DataError line, the
figures' captions, the section's template, and build / inspect / render end to end.
(tests/test_explain.py checks the numbers against independent computation.)"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import fake_attributions, fake_features, make_evaluation, metrics_body

from reportgen import data
from reportgen.cli import main
from reportgen.errors import DataError, RenderError
from reportgen.report import figures
from reportgen.report.explanation import absent, section
from reportgen.report.figures import attribution as attribution_figures
from reportgen.report.figures import features as feature_figures
from reportgen.report.sections import SECTIONS
from reportgen.report.templates import environment
from reportgen.run.explanation import Attributions, Explained, Features, completeness_error
from reportgen.run.files import write_npz

# -- the files -------------------------------------------------------------------------------------


def test_files_round_trip_with_the_same_bytes(tmp_path):
    a, f = fake_attributions(), fake_features()
    first = a.save(tmp_path / "a.npz").read_bytes()
    assert a.save(tmp_path / "b.npz").read_bytes() == first
    back = Attributions.load(tmp_path / "a.npz")
    for name, array in a.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], array, err_msg=name)
    np.testing.assert_allclose(back.completeness, a.completeness)
    f.save(tmp_path / "f.npz")
    again = Features.load(tmp_path / "f.npz")
    for name, array in f.arrays().items():
        np.testing.assert_array_equal(again.arrays()[name], array, err_msg=name)


def broken_file(tmp_path: Path, arrays: dict[str, np.ndarray], name: str) -> Path:
    return write_npz(tmp_path / name, arrays)


ATTRIBUTION_DAMAGE = {
    "missing key": (lambda a: a.pop("occlusion"), "no array 'occlusion'"),
    "wrong shape": (lambda a: a.update(integrated_gradients=a["integrated_gradients"][:, :27]), "shape 3x27x28"),
    "occlusion shape": (lambda a: a.update(occlusion=a["occlusion"][:, :12]), "has shape 3x12x13, expected 3xkxk"),
    "occlusion side": (
        lambda a: a.update(occlusion=a["occlusion"][:, :12, :12]),
        "occlusion maps of side 12, a window 4 at stride 2 gives 13",
    ),
    "window too large": (lambda a: a.update(occlusion_window=np.asarray(29)), "window 29 is not between 1 and 28"),
    "fewer occlusion maps": (lambda a: a.update(occlusion=a["occlusion"][:2]), "has shape 2x13x13, expected 3xkxk"),
    "pixels beyond 28": (
        lambda a: a.update(integrated_gradients=np.zeros((3, 28, 29), np.float32)),
        "has shape 3x28x29, expected 3x28x28",
    ),
    "a matrix of windows": (lambda a: a.update(occlusion_window=np.full((2, 2), 4)), "expected a single value"),
    "NaN": (lambda a: a["integrated_gradients"].__setitem__((0, 3, 3), np.nan), "NaN"),
    "infinite score": (lambda a: a["score_image"].__setitem__(1, np.inf), "NaN or infinite"),
    "float indices": (lambda a: a.update(indices=a["indices"].astype(np.float64)), "expected integers"),
    "integer attributions": (
        lambda a: a.update(integrated_gradients=a["integrated_gradients"].astype(np.int64)),
        "expected floating-point",
    ),
    "negative index": (lambda a: a["indices"].__setitem__(0, -1), "negative"),
    "repeated index": (lambda a: a["indices"].__setitem__(1, 0), "twice"),
    "class 10": (lambda a: a["targets"].__setitem__(0, 10), "target outside"),
    "against itself": (lambda a: a["versus"].__setitem__(0, 3), "its own class"),
    "window 0": (lambda a: a.update(occlusion_window=np.asarray(0)), "window 0"),
    "no steps": (lambda a: a["steps"].__setitem__(0, 0), "fewer than 1"),
}


@pytest.mark.parametrize("damage", list(ATTRIBUTION_DAMAGE))
def test_a_malformed_attributions_file_is_one_data_error(tmp_path, damage):
    arrays = {k: v.copy() for k, v in fake_attributions().arrays().items()}
    change, message = ATTRIBUTION_DAMAGE[damage]
    change(arrays)
    path = broken_file(tmp_path, arrays, "attributions.npz")
    with pytest.raises(DataError, match=message) as caught:
        Attributions.load(path)
    assert "\n" not in str(caught.value.format_message())


FEATURE_DAMAGE = {
    "missing key": (lambda a: a.pop("neighbours"), "no array 'neighbours'"),
    "wrong shape": (lambda a: a.update(act3_pca=a["act3_pca"][:, :1]), "has shape 100x1"),
    "NaN": (lambda a: a["act3_pca"].__setitem__((0, 0), np.nan), "NaN"),
    "float neighbours": (lambda a: a.update(neighbours=a["neighbours"].astype(np.float32)), "expected integers"),
    "beyond the training set": (lambda a: a["neighbours"].__setitem__((0, 0), 300), "outside the 300 training"),
    "case beyond the test set": (lambda a: a["neighbour_cases"].__setitem__(0, 100), "outside the 100 test"),
    "listed twice": (lambda a: a["neighbours"].__setitem__((0, 1), 5), "listed twice"),
    "not nearest first": (lambda a: a["neighbour_distances"].__setitem__((1, 0), 5.0), "nearest first"),
    "shares above 1": (lambda a: a.update(explained_variance_ratio=np.array([0.9, 0.8])), "summing to at most 1"),
    "label 10": (lambda a: a["neighbour_labels"].__setitem__((0, 0), 10), "label outside 0-9"),
    "pixels as floats": (
        lambda a: a.update(neighbour_images=a["neighbour_images"].astype(np.float32)),
        "expected uint8",
    ),
    "pixels of another shape": (lambda a: a.update(neighbour_images=a["neighbour_images"][:, :4]), "2x4x28x28"),
}


@pytest.mark.parametrize("damage", list(FEATURE_DAMAGE))
def test_a_malformed_features_file_is_one_data_error(tmp_path, damage):
    arrays = {k: v.copy() for k, v in fake_features().arrays().items()}
    change, message = FEATURE_DAMAGE[damage]
    change(arrays)
    path = broken_file(tmp_path, arrays, "features.npz")
    with pytest.raises(DataError, match=message):
        Features.load(path)


def test_what_is_not_an_npz_file_is_a_data_error(tmp_path):
    (tmp_path / "attributions.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        Attributions.load(tmp_path / "attributions.npz")
    with pytest.raises(DataError, match="no such features"):
        Features.load(tmp_path / "features.npz")
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:  # an object array needs pickle: refused
        with z.open("indices.npy", "w") as member:
            np.lib.format.write_array(member, np.array([object()]), allow_pickle=True)
    with pytest.raises(DataError):
        Attributions.load(tmp_path / "pickled.npz")


def test_indices_are_checked_against_the_runs_test_images(tmp_path):
    """render gives the run's number of test images: a file of another run is refused."""
    a, f = fake_attributions(), fake_features(n_test=100)
    a.save(tmp_path / "attributions.npz")
    f.save(tmp_path / "features.npz")
    assert len(Attributions.load(tmp_path / "attributions.npz", n_test=9)) == 3  # indices 0, 4, 8
    with pytest.raises(DataError, match="array 'indices': a test image outside the 8 test images"):
        Attributions.load(tmp_path / "attributions.npz", n_test=8)
    assert Features.load(tmp_path / "features.npz", n_test=100).train_images == 300
    with pytest.raises(DataError, match="100 test images projected, the run has 300"):
        Features.load(tmp_path / "features.npz", n_test=300)


def test_a_header_that_promises_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    """integrated_gradients declaring 4e9 x 28 x 28 floats in a file of a few kB: refused from
    its header, nothing of that size allocated."""
    import struct

    arrays = fake_attributions().arrays()
    path = tmp_path / "attributions.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            if name == "integrated_gradients":
                header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 28, 28), }"
                header += b" " * (-(len(header) + 11) % 64) + b"\n"
                archive.writestr(f"{name}.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
            else:
                with archive.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, array)
    with pytest.raises(DataError, match="does not fill"):
        Attributions.load(path)


def test_completeness_is_relative_with_a_floor():
    # 1% of a difference of 3; 0.001 against the floor of 0.1 when the difference is 0.01.
    errors = completeness_error(np.array([3.03, 0.011]), np.array([5.0, 1.01]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(errors, [0.01, 0.01])
    a = fake_attributions()
    assert a.complete.all() and a.warnings() == []
    off = replace(a, score_image=a.score_image + np.array([0.0, 1.0, 0.0]))
    assert off.complete.tolist() == [True, False, True]
    (line,) = off.warnings()
    assert line.startswith("integrated gradients of test image 4: the attributions sum to") and "64 steps" in line


def test_explained_images_are_each_group_once_in_report_order():
    evaluation = make_evaluation(metrics_body(worst_count=3))
    chosen = Explained.of([6, 4], evaluation)
    assert chosen.worst == (4, 6, 19) and chosen.mistakes == (4, 8, 12) and chosen.broken == ()
    assert chosen.indices().tolist() == [6, 4, 19, 8, 12]


# -- figures and the template ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> data.Dataset:
    return data.load(train_limit=300, test_limit=100)


def svg_texts(svg: bytes) -> str:
    return " ".join("".join(t.itertext()) for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text"))


def test_figures_are_deterministic_and_say_what_the_methods_cannot_show(tiny):
    a, f = fake_attributions(), fake_features()
    evaluation = make_evaluation(metrics_body(worst_count=3))
    explained = Explained(inspected=(0,), worst=(4, 8), mistakes=(4, 8), broken=())
    jobs = figures.explanation_jobs(tiny, evaluation, a, f, explained)
    drawn = [job() for job in jobs]
    assert [d.name for d in drawn] == [
        "explain_inspected",
        "explain_worst",
        "explain_mistakes",
        "explain_projection",
        "explain_neighbours",
    ]
    assert [d.svg for d in drawn] == [job().svg for job in jobs]
    maps = drawn[2]
    assert "black pixels get zero attribution by construction" in maps.caption
    assert "4 × 4" in maps.caption and "2 pixels" in maps.caption
    assert "#8" in svg_texts(maps.svg) and "2 → 7" in svg_texts(maps.svg) and "1, right" in svg_texts(maps.svg)
    assert "not in pixels" in drawn[4].caption
    assert "20.0% of the variance" in svg_texts(drawn[3].svg)
    for figure in drawn:
        ET.fromstring(figure.svg)
        assert figure.alt and figure.caption


@pytest.mark.parametrize("spread", [(3.0, 0.2), (1.0, 1.0)], ids=["flat", "round"])
def test_the_projection_keeps_the_names_column_without_a_word_from_matplotlib(spread, caplog):
    # Equal axes widen x for these clouds: fixed x limits were dropped with a warning on stderr,
    # which a quiet render printed.
    points = np.random.default_rng(3).normal(size=(100, 2)) * np.array(spread)
    features = replace(fake_features(), act3_pca=points.astype(np.float32))
    labels = np.arange(100) % 10
    predictions = np.where(np.isin(np.arange(100), [4, 8, 15]), 1, labels)
    with caplog.at_level(logging.WARNING):
        drawn = feature_figures.projection(features, labels, predictions, inspected=(4,), worst=(8, 15))
    assert not [r for r in caplog.records if r.name.startswith("matplotlib")], caplog.text
    assert "first principal component" in svg_texts(drawn.svg)


def test_figures_refuse_images_of_another_run(tiny):
    a = fake_attributions()
    with pytest.raises(RenderError, match="no attributions for test image 5"):
        attribution_figures.attribution_maps(tiny, a, [5], "x", "x", "x")
    empty = attribution_figures.attribution_maps(tiny, a, [], "explain_broken", "The images this run broke", "broken")
    assert "No broken to explain" in svg_texts(empty.svg)


def test_occlusion_values_are_drawn_at_their_windows_centres():
    occ = np.arange(169, dtype=np.float64).reshape(1, 13, 13)
    pixels = attribution_figures.occlusion_on_pixels(occ, 4, 2)
    assert np.isnan(pixels[0, 0]).all() and np.isnan(pixels[0, :, 27]).all()
    assert pixels[0, 1, 1] == pixels[0, 2, 2] == 0 and pixels[0, 3, 3] == 14 and pixels[0, 26, 26] == 168


def render_section(explain: dict | None, explain_absent: dict | None = None) -> str:
    (sid, title, subsections) = next(entry for entry in SECTIONS if entry[0] == "explain")
    toc = [{"id": sid, "title": title, "number": "9", "level": 1}] + [
        {"id": sub, "title": name, "number": f"9.{n}", "level": 2} for n, (sub, name) in enumerate(subsections, 1)
    ]
    template = environment().get_template("_explain.html.j2")
    return template.render(sections={e["id"]: e for e in toc}, explain=explain, explain_absent=explain_absent)


def test_the_section_renders_its_tables_and_warnings(tiny):
    a, f = fake_attributions(), fake_features()
    a = replace(a, score_image=a.score_image + np.array([0.0, 1.0, 0.0]))  # the second misses completeness
    evaluation = make_evaluation()
    explained = Explained(inspected=(0,), worst=(4,), mistakes=(4, 8), broken=())
    drawn = {fig.name: fig for fig in (job() for job in figures.explanation_jobs(tiny, evaluation, a, f, explained))}
    values = section(a, f, explained, evaluation, drawn, data=tiny.describe())
    assert values is not None
    html = render_section(values)
    assert "Why the network got it wrong" in html and "Which pixels decided" in html
    assert "missed completeness for 1 image" in html and "integrated gradients of test image 4" in html
    assert html.count('id="figure-explain_') == 5
    assert "full2[1]" in html and "full2[3] − full2[5]" in html
    assert "#5 (9)" in html and "3 of 5" in html  # test image 4, a 4 read as 9: three neighbours are 9s
    # tiny loaded 300 of the 60,000 training images: the section says the search was limited.
    assert "the first 300 of the 60,000 in the training file" in html


def test_a_run_made_before_the_section_says_how_to_make_it(tiny):
    evaluation = make_evaluation()
    explained = Explained(inspected=(0,), worst=(4,), mistakes=(4, 8), broken=())
    assert section(None, fake_features(), explained, evaluation, {}) is None
    missing = absent(None, fake_features(), tiny.describe(), [115, 3])
    assert missing["missing"] == ["attributions.npz"]
    assert missing["command"] == ("reportgen inspect --model RUN --out RUN --case 115 --case 3 --test-limit 100")
    old = render_section(None, absent(None, None, tiny.describe(), [115]))
    assert "made before reportgen explained" in old and "<figure" not in old
    assert "no attributions.npz and features.npz" in old and "reportgen inspect --model RUN --out RUN --case 115" in old


# -- build, inspect and render ------------------------------------------------------------------

# The session's model learned from 3,000 training images: a build or inspect of it loads those.
SMALL = ["--test-limit", "300"]


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def explained_run(trained_run, tmp_path_factory) -> Path:
    """The session's trained model built into a report (HTML only) on 3,000 training images."""
    out = tmp_path_factory.mktemp("explained") / "run"
    result = invoke("build", "--model", str(trained_run), *SMALL, "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "explaining" in result.stderr
    return out


def test_build_writes_the_explanations_and_lists_them(explained_run, small):
    manifest = read_json(explained_run / "manifest.json")
    for name in ("attributions.npz", "features.npz"):
        entry = manifest["files"][name]
        assert entry["sha256"] == hashlib.sha256((explained_run / name).read_bytes()).hexdigest()
    assert "explain" in manifest["timings"]
    # The images the report shows, from the run's own files: the inspected digit, the worst
    # pair's first ten, the twenty most confident mistakes.
    metrics = read_json(explained_run / "metrics.json")
    with np.load(explained_run / "inspection.npz") as inspected, np.load(explained_run / "predictions.npz") as per:
        cases = inspected["indices"].tolist()
        labels, predicted = per["labels"], per["predictions"]
    wanted = cases + metrics["worst_pair"]["indices"][:10] + [m["index"] for m in metrics["top_errors"][:20]]
    got = Attributions.load(explained_run / "attributions.npz")
    assert got.indices.tolist() == list(dict.fromkeys(wanted))
    assert got.targets.tolist() == predicted[got.indices].tolist()
    assert got.versus.tolist() == np.where(labels == predicted, -1, labels)[got.indices].tolist()
    assert got.complete.all(), got.warnings()
    features = Features.load(explained_run / "features.npz")
    assert features.act3_pca.shape == (300, 2) and features.train_images == 3000
    assert features.neighbour_cases.tolist() == [m["index"] for m in metrics["top_errors"][:20]]
    # The neighbours' labels and pixels are those of the training file (small: its first 3,000).
    np.testing.assert_array_equal(features.neighbour_labels, small.train_y[features.neighbours])
    np.testing.assert_array_equal(features.neighbour_images, small.train_x[features.neighbours])
    html = (explained_run / "report.html").read_text()
    assert html.index('id="inside"') < html.index('id="explain"') < html.index('id="reproducibility"')
    assert html.count('id="figure-explain_') == 5  # inspected, worst, mistakes, projection, neighbours
    assert "the first 3,000 of the 60,000 in the training file" in html


def without_explanations(run: Path, copy: Path) -> Path:
    """A copy of a run as reportgen made it before the section: neither file, nor in the manifest."""
    shutil.copytree(run, copy)
    manifest = read_json(copy / "manifest.json")
    for name in ("attributions.npz", "features.npz"):
        (copy / name).unlink()
        del manifest["files"][name]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_a_run_made_before_renders_and_inspect_adds_the_section(explained_run, tmp_path):
    old = without_explanations(explained_run, tmp_path / "old")
    result = invoke("render", "-q", str(old), "--format", "html")
    assert result.exit_code == 0, result.output
    html = (old / "report.html").read_text()
    assert "made before reportgen explained" in html and 'id="figure-explain_' not in html
    with np.load(old / "inspection.npz") as inspected:
        (case,) = inspected["indices"].tolist()
    command = f"reportgen inspect --model RUN --out RUN --case {case} --test-limit 300"
    assert command in html
    # The command the section gives, as given, then render: the section is there.
    result = invoke(*command.replace("RUN", str(old)).split()[1:], "-q")
    assert result.exit_code == 0, result.output
    assert invoke("render", "-q", str(old), "--format", "html").exit_code == 0
    html = (old / "report.html").read_text()
    assert "made before reportgen explained" not in html and html.count('id="figure-explain_') == 5
    for name in ("attributions.npz", "features.npz"):  # the same model, data and digits: the same files
        assert (old / name).read_bytes() == (explained_run / name).read_bytes(), name


def test_render_draws_the_section_without_mxnet(explained_run, tmp_path):
    """render reads the two files and draws the section with any import of mxnet failing."""
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(explained_run, run)
    shutil.rmtree(run / "model")
    (run / "report.html").unlink()
    script = (
        "import sys; sys.modules['mxnet'] = None\n"
        "from reportgen.cli import main\n"
        f"main(['render', '-q', {str(run)!r}, '--format', 'html'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    html = (run / "report.html").read_text()
    assert html.count('id="figure-explain_') == 5 and "made before reportgen explained" not in html


def test_render_refuses_a_changed_or_malformed_explanation(explained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(explained_run, run)
    before = (run / "report.html").read_bytes()
    arrays = Attributions.load(run / "attributions.npz").arrays()
    del arrays["occlusion"]
    write_npz(run / "attributions.npz", arrays)
    result = invoke("render", "-q", str(run), "--format", "html")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {run / 'attributions.npz'}: differs from the run's manifest.json")
    # Listed with its new checksum (someone who can edit the manifest too): the loader refuses it.
    manifest = read_json(run / "manifest.json")
    payload = (run / "attributions.npz").read_bytes()
    manifest["files"]["attributions.npz"] = {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("render", "-q", str(run), "--format", "html")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {run / 'attributions.npz'}: no array 'occlusion' (not a reportgen attributions file)\n"
    )
    assert (run / "report.html").read_bytes() == before


def test_an_image_that_misses_completeness_is_a_warning_line_and_said_in_the_report(
    explained_run, tmp_path, monkeypatch
):
    """With the tolerance at 0 every image misses it: one line each, even with -q; exit 0."""
    from reportgen.run import explanation

    run = tmp_path / "run"
    shutil.copytree(explained_run, run)
    monkeypatch.setattr(explanation, "TOLERANCE", 0.0)
    with np.load(run / "inspection.npz") as inspected:
        (case,) = inspected["indices"].tolist()
    result = invoke("inspect", "-q", "--model", str(run), "--case", str(case), *SMALL, "--out", str(run))
    assert result.exit_code == 0, result.output
    n = len(Attributions.load(run / "attributions.npz"))
    lines = result.stderr.splitlines()
    assert len(lines) == n and all(line.startswith("warning: integrated gradients of test image ") for line in lines)
    assert "more than 0%" in lines[0] and "its map is drawn but does not account for the whole difference" in lines[0]
    assert invoke("render", "-q", str(run), "--format", "html").exit_code == 0
    html = (run / "report.html").read_text()
    assert f"Integrated gradients missed completeness for {n} images" in html
    metrics = read_json(run / "metrics.json")
    shown = 1 + len(metrics["worst_pair"]["indices"][:10]) + len(metrics["top_errors"][:20])
    assert html.count('<tr class="failed">') == shown  # every row of every group's table
