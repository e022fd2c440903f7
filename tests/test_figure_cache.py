"""The figure cache (report/figures/cache.py): a figure taken from it is byte for byte the one
drawn afresh; any change of a value it draws, of the code or of a version draws it again; and
an entry from a run folder is used only if it is a plain, script-free SVG inside the folder."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import digest, fake_inspection, make_evaluation, make_history, metrics_body

import reportgen
from reportgen import data
from reportgen.cli import main
from reportgen.errors import DataError
from reportgen.layers import LAYERS
from reportgen.report import figures
from reportgen.report.figures import cache
from reportgen.run.files import read_json

ROOT = Path(__file__).resolve().parent.parent


def drawing(values, run_dir: Path | None, staged: Path | None, **changes) -> tuple[dict, cache.FigureCache]:
    kept = cache.FigureCache(run_dir, staged)
    dataset, history, evaluation, inspection = values
    args = {"dataset": dataset, "history": history, "evaluation": evaluation, "inspection": inspection, **changes}
    drawn = figures.make(**args, processes=1, cache=kept)
    return drawn, kept


@pytest.fixture(scope="module")
def values() -> tuple:
    dataset = data.load(train_limit=200, test_limit=100)
    return dataset, make_history(), make_evaluation(metrics_body(worst_count=3)), fake_inspection(dataset.test_y, 1)


@pytest.fixture(scope="module")
def filled(values, tmp_path_factory) -> tuple[Path, dict]:
    """A run folder whose cache holds every figure of `values`, and the figures drawn without it."""
    run = tmp_path_factory.mktemp("filled")
    fresh = figures.make(*values, processes=1)
    drawn, kept = drawing(values, None, run)
    assert kept.hits == [] and kept.drawn == list(fresh)
    return run, fresh


# -- the same bytes, drawn once -----------------------------------------------------------------


def test_every_figure_is_cacheable_and_a_hit_is_the_fresh_figure(values, filled, tmp_path):
    run, fresh = filled
    drawn, kept = drawing(values, run, tmp_path)
    assert kept.drawn == [] and kept.hits == list(fresh)
    assert list(drawn) == list(fresh)
    for name, figure in drawn.items():
        assert figure == fresh[name], name  # name, caption, alt and SVG bytes
    # The new cache holds exactly the entries used: the same files as the old one.
    assert digest(tmp_path / cache.FOLDER) == digest(run / cache.FOLDER)
    assert len(list((run / cache.FOLDER).iterdir())) == 2 * len(fresh)


@pytest.mark.parametrize(
    "change, redrawn",
    [
        ("confusion", {"confusion"}),
        ("history", {"training_batches", "training_epochs"}),
        # The inside figures are given the whole Inspection, kernels included.
        ("kernel", {"kernels_conv1", "inside_0_input", *(f"inside_0_{layer}" for layer in LAYERS)}),
        ("case", {"inside_0_input", *(f"inside_0_{layer}" for layer in LAYERS)}),
        ("pixels", {"inside_0_input"}),
    ],
)
def test_one_value_changed_draws_again_exactly_the_figures_that_read_it(values, filled, tmp_path, change, redrawn):
    run, fresh = filled
    dataset, history, evaluation, inspection = values
    if change == "confusion":
        table = evaluation.confusion_matrix.copy()
        table[0, 0] += 1
        changes = {"evaluation": replace(evaluation, confusion_matrix=table)}
    elif change == "history":
        loss = history.batch_loss.copy()
        loss[7] = np.nextafter(loss[7], 1.0)  # the smallest change a float can make
        changes = {"history": replace(history, batch_loss=loss)}
    elif change == "kernel":
        conv1 = inspection.kernels["conv1"].copy()
        conv1[3, 0, 2, 2] += 0.5
        changes = {"inspection": replace(inspection, kernels={**inspection.kernels, "conv1": conv1})}
    elif change == "case":
        outputs = {**inspection.outputs, "act3": inspection.outputs["act3"].copy()}
        outputs["act3"][0, 17] = -outputs["act3"][0, 17]
        changes = {"inspection": replace(inspection, outputs=outputs)}
    else:
        changes = {"pixels": "raw"}
    drawn, kept = drawing(values, run, tmp_path, **changes)
    assert set(kept.drawn) == redrawn
    assert set(kept.hits) == set(fresh) - redrawn
    fresh_again = figures.make(**{**dict(zip(("dataset", "history", "evaluation", "inspection"), values)), **changes})
    for name in redrawn:
        assert drawn[name] == fresh_again[name]


def test_one_pixel_of_the_data_draws_the_digits_again(values, tmp_path):
    dataset = values[0]
    # Not read by data.load (no origin): keyed by its arrays.
    copied = replace(dataset, test_x=dataset.test_x.copy())
    assert dataset.origin is not None and copied.origin is None
    first = tmp_path / "first"
    drawing((copied, *values[1:]), None, first)
    test_x = copied.test_x.copy()
    test_x[6, 14, 14] ^= 0xFF  # an image of the worst pair
    _, kept = drawing((replace(copied, test_x=test_x), *values[1:]), first, tmp_path / "second")
    assert {"worst_cases", "top_errors", "inside_0_input"} <= set(kept.drawn)
    assert not {"confusion", "network", "kernels_conv1"} & set(kept.drawn)
    _, same = drawing((replace(copied, test_x=copied.test_x.copy()), *values[1:]), first, tmp_path / "third")
    assert same.drawn == []


def test_a_change_of_code_or_version_draws_everything_again(values, filled, tmp_path, monkeypatch):
    run, fresh = filled
    monkeypatch.setattr(cache, "code_fingerprint", lambda: b"other drawing code")
    _, kept = drawing(values, run, tmp_path / "code")
    assert kept.hits == [] and kept.drawn == list(fresh)
    monkeypatch.undo()

    cache.code_fingerprint.cache_clear()
    before = cache.code_fingerprint()
    monkeypatch.setattr(reportgen, "__version__", "0.1.1")
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint() != before
    key = cache.job_key(functools.partial(figures.confusion, values[2].confusion_matrix))
    monkeypatch.undo()
    cache.code_fingerprint.cache_clear()
    assert cache.job_key(functools.partial(figures.confusion, values[2].confusion_matrix)) != key

    real = cache.importlib.metadata.version
    monkeypatch.setattr(cache.importlib.metadata, "version", lambda name: "9.9" if name == "matplotlib" else real(name))
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint() != before
    monkeypatch.undo()
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint() == before


def test_a_value_the_key_cannot_describe_is_drawn_every_time(tmp_path):
    calls = []

    def odd(thing):
        calls.append(thing)
        return figures.Figure("odd", "An odd one.", "Odd.", b"<svg xmlns='http://www.w3.org/2000/svg'/>")

    job = functools.partial(odd, object())
    assert cache.job_key(job) is None
    for _ in range(2):
        kept = cache.FigureCache(tmp_path, tmp_path)
        cache.draw([job], processes=1, cache=kept)
        assert kept.drawn == ["odd"]
    assert len(calls) == 2 and not (tmp_path / cache.FOLDER).exists()


# -- what an entry from a run folder may be ------------------------------------------------------

SCRIPTED = {
    "script": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "event": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "event in a namespace": b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="urn:x"><g x:onclick="a()"/></svg>',
    "javascript link": b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    b'<use xlink:href="javascript:alert(1)"/></svg>',
    "external image": b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    b'<image xlink:href="http://example.com/x.png"/></svg>',
    "svg image": b'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/svg+xml;base64,PHN2Zz4="/></svg>',
    "external css": b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import "http://example.com/a.css";</style></svg>',
    "css split by an element": b'<svg xmlns="http://www.w3.org/2000/svg"><style>@im<g/>port "x.css";</style></svg>',
    "css url": b'<svg xmlns="http://www.w3.org/2000/svg"><path style="fill: url( \'http://x/y\' )"/></svg>',
    "foreign object": b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p xmlns="http://www.w3.org/1999/xhtml">'
    b"hi</p></foreignObject></svg>",
    "link": b'<svg xmlns="http://www.w3.org/2000/svg"><a href="https://example.com"><text>x</text></a></svg>',
    "animation": b'<svg xmlns="http://www.w3.org/2000/svg"><set attributeName="href" to="javascript:a()"/></svg>',
    "stylesheet instruction": b'<?xml-stylesheet href="http://example.com/a.css"?>'
    b'<svg xmlns="http://www.w3.org/2000/svg"/>',
    "entities": b'<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>',
    "external entity": b'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
    "not svg": b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
    "no namespace": b"<svg><script>alert(1)</script></svg>",
    "truncated": b'<svg xmlns="http://www.w3.org/2000/svg"><g>',
}


def test_every_figure_matplotlib_draws_passes_the_check(filled):
    _, fresh = filled
    for name, figure in fresh.items():
        assert cache.check_svg(figure.svg), name


@pytest.mark.parametrize("kind", list(SCRIPTED))
def test_an_svg_that_could_run_or_fetch_is_refused(kind):
    assert not cache.check_svg(SCRIPTED[kind])


def entry_of(run: Path, name: str) -> str:
    for meta in (run / cache.FOLDER).glob("*.json"):
        if json.loads(meta.read_text())["name"] == name:
            return meta.stem
    raise AssertionError(name)


@pytest.mark.parametrize(
    "attack",
    [
        "script",
        "truncated svg",
        "truncated json",
        "name with a path",
        "link out",
        "folder linked out",
        "fifo",
        "folder",
        "huge",
        "planted under the key",
        "another figure's svg",
        "caption changed",
    ],
)
def test_a_forged_or_broken_entry_is_drawn_afresh(values, filled, tmp_path, attack):
    original, fresh = filled
    run = tmp_path / "run"
    shutil.copytree(original, run)
    key = entry_of(run, "confusion")
    svg, meta = run / cache.FOLDER / f"{key}.svg", run / cache.FOLDER / f"{key}.json"
    outside = tmp_path / "outside.svg"
    outside.write_bytes(fresh["network"].svg)
    if attack == "script":
        svg.write_bytes(fresh["confusion"].svg.replace(b"<g ", b'<g onmouseover="alert(1)" ', 1))
    elif attack == "truncated svg":
        svg.write_bytes(fresh["confusion"].svg[:-20])
    elif attack == "truncated json":
        meta.write_text(meta.read_text()[:-3])
    elif attack == "name with a path":
        meta.write_text(json.dumps({"name": "../../escaped", "caption": "c", "alt": "a"}))
    elif attack == "link out":
        svg.unlink()
        svg.symlink_to(outside)
    elif attack == "folder linked out":
        shutil.move(run / cache.FOLDER, tmp_path / "elsewhere")
        (run / cache.FOLDER).symlink_to(tmp_path / "elsewhere")
    elif attack == "fifo":
        svg.unlink()
        os.mkfifo(svg)  # opening it to read would wait for a writer forever
    elif attack == "folder":
        svg.unlink() or svg.mkdir()
    elif attack == "planted under the key":
        # What an attacker can do: compute our key (public code, the run's own values), plant a
        # clean, matplotlib-made SVG under it with its true hash, and sign with a secret of theirs.
        planted = fresh["network"].svg
        assert cache.check_svg(planted)
        assert key == cache.job_key(functools.partial(figures.confusion, values[2].confusion_matrix))
        digest = hashlib.sha256(planted).hexdigest()
        forged = {"name": "confusion", "caption": "Forged.", "alt": "Forged.", "sha256": digest}
        forged["hmac"] = cache.signature(
            b"not this user's secret".ljust(32), key, "confusion", "Forged.", "Forged.", digest
        )
        svg.write_bytes(planted)
        meta.write_text(json.dumps(forged))
    elif attack == "another figure's svg":
        svg.write_bytes(fresh["network"].svg)  # a signed entry's bytes, not the ones signed for here
    elif attack == "caption changed":
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "caption": "Or so they say."}))
    else:
        svg.write_bytes(b"<svg " + b" " * cache.MAX_SVG + b"/>")
    drawn, kept = drawing(values, run, tmp_path / "staged")
    assert drawn["confusion"] == fresh["confusion"]
    expect = list(fresh) if attack == "folder linked out" else ["confusion"]
    assert kept.drawn == expect
    assert not (tmp_path / "escaped").exists()


def test_entries_signed_by_another_users_secret_are_all_drawn_afresh(values, filled, tmp_path, monkeypatch):
    run, fresh = filled
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another home"))
    drawn, kept = drawing(values, run, tmp_path / "staged")
    assert kept.hits == [] and kept.drawn == list(fresh)
    assert all(drawn[name] == fresh[name] for name in fresh)
    # And signed afresh with that user's secret: a second drawing takes them all.
    _, again = drawing(values, tmp_path / "staged", tmp_path / "staged again")
    assert again.drawn == [] and again.hits == list(fresh)


@pytest.mark.parametrize("flaw", ["readable by others", "a link", "wrong size", "a folder"])
def test_a_secret_that_is_not_ours_alone_turns_the_cache_off(values, filled, tmp_path, monkeypatch, flaw):
    run, fresh = filled
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    path = cache.secret_path()
    path.parent.mkdir(parents=True)
    if flaw == "readable by others":
        path.write_bytes(b"k" * cache.SECRET_BYTES)
        path.chmod(0o644)
    elif flaw == "a link":
        elsewhere = tmp_path / "elsewhere.key"
        elsewhere.write_bytes(b"k" * cache.SECRET_BYTES)
        elsewhere.chmod(0o600)
        path.symlink_to(elsewhere)
    elif flaw == "wrong size":
        path.write_bytes(b"k")
        path.chmod(0o600)
    else:
        path.mkdir()
    assert cache.secret() is None
    drawn, kept = drawing(values, run, tmp_path / "staged")
    assert kept.hits == [] and kept.drawn == list(fresh)
    assert not (tmp_path / "staged").exists()  # nothing written that nobody could vouch for


def test_the_secret_is_made_once_private_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    first = cache.secret()
    assert first is not None and len(first) == cache.SECRET_BYTES
    assert cache.secret_path().stat().st_mode & 0o777 == 0o600
    assert cache.secret() == first
    assert [p.name for p in cache.secret_path().parent.iterdir()] == [cache.secret_path().name]


# -- through the commands -------------------------------------------------------------------------

QUICK = ["--epochs", "1", "--train-limit", "1000", "--test-limit", "500"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cached") / "run"
    result = CliRunner().invoke(main, ["build", "-q", *QUICK, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_cache_is_hidden_from_the_manifest_and_holds_every_figure(built):
    manifest = read_json(built / "manifest.json")
    assert not any(name.startswith(".") for name in manifest["files"])
    figures_written = sorted(p.stem for p in (built / "figures").iterdir())
    stored = sorted(json.loads(p.read_text())["name"] for p in (built / cache.FOLDER).glob("*.json"))
    assert stored == figures_written and len(stored) >= 24  # the explanations add theirs
    for meta in (built / cache.FOLDER).glob("*.json"):
        name = json.loads(meta.read_text())["name"]
        assert meta.with_suffix(".svg").read_bytes() == (built / "figures" / f"{name}.svg").read_bytes()


def test_a_render_with_the_cache_equals_one_without(built, tmp_path):
    with_cache, without = tmp_path / "with", tmp_path / "without"
    shutil.copytree(built, with_cache)
    shutil.copytree(built, without)
    shutil.rmtree(without / ".cache")
    for run in (with_cache, without):
        result = CliRunner().invoke(main, ["render", "-q", str(run), "--title", "Retitled", "--format", "html"])
        assert result.exit_code == 0, result.output
    for name in ("figures", ".cache"):
        assert digest(with_cache / name) == digest(without / name) == digest(built / name), name
    assert (with_cache / "report.html").read_bytes() == (without / "report.html").read_bytes()
    assert b"Retitled" in (with_cache / "report.html").read_bytes()


# A render of a built run, in a fresh interpreter: the data files' images may not be read and
# matplotlib may not be imported, since every figure comes from the cache.
ALL_CACHED = r"""
import json, sys
from reportgen import data
from reportgen.cli import main

def refuse(*args, **kwargs):
    raise AssertionError("the images were read")

data.load = refuse
main(["render", "-q", sys.argv[1], "--title", "Again", "--format", "html"], standalone_mode=False)
print(json.dumps({"matplotlib": "matplotlib" in sys.modules}))
"""


def test_a_render_after_a_build_reads_no_image_and_imports_no_matplotlib(built, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    done = subprocess.run(
        [sys.executable, "-c", ALL_CACHED, str(run)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"matplotlib": False}
    assert digest(run / "figures") == digest(built / "figures")


@pytest.mark.parametrize("planted", ["dangling link", "link to a folder", "file", "a file of theirs inside"])
def test_a_cache_that_is_not_reportgens_is_refused_untouched(built, tmp_path, planted):
    # .cache is among the names reportgen owns in a run folder (run/folder.py, OWNED): what is
    # there must be its entries, or the command refuses before any work and deletes nothing.
    run = tmp_path / "run"
    shutil.copytree(built, run)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "figures").mkdir(parents=True)
    (elsewhere / "figures" / "theirs.txt").write_text("not ours")
    if planted == "a file of theirs inside":
        (run / cache.FOLDER / "notes.txt").write_text("mine")
    else:
        shutil.rmtree(run / ".cache")
        if planted == "dangling link":
            (run / ".cache").symlink_to(tmp_path / "nowhere")
        elif planted == "link to a folder":
            (run / ".cache").symlink_to(elsewhere)
        else:
            (run / ".cache").write_text("not a folder")
    before = digest(run)
    result = CliRunner().invoke(main, ["render", "-q", str(run), "--format", "html"])
    assert result.exit_code == 2, result.output
    assert ".cache" in result.output and "move it away" in result.output
    assert digest(run) == before and [p.name for p in (elsewhere / "figures").iterdir()] == ["theirs.txt"]
    assert (run / ".cache").is_symlink() == ("link" in planted)


def test_a_figure_to_draw_reads_the_images_after_checking_them(built, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built, run)
    key = entry_of(run, "first_digits")
    (run / cache.FOLDER / f"{key}.svg").unlink()
    result = CliRunner().invoke(main, ["render", "-q", str(run), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert digest(run / "figures") == digest(built / "figures")


def test_deferred_data_is_keyed_as_the_loaded_and_refuses_files_changed_since(mnist_copy):
    deferred = data.Deferred(mnist_copy, 50, 20)
    loaded = data.load(mnist_copy, 50, 20)
    assert deferred.origin == loaded.origin and deferred.checksums == loaded.checksums
    assert deferred.load().origin == loaded.origin
    # More than the file holds: the same images as load() keeps, so the same key.
    assert data.Deferred(mnist_copy, 10**6, 20).origin == data.load(mnist_copy, 10**6, 20).origin
    later = data.Deferred(mnist_copy, 50, 20)
    labels = next(mnist_copy.glob("t10k-labels*"))
    raw = bytearray(labels.read_bytes())
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="changed"):
        later.load()
