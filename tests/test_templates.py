"""A --templates folder is someone else's code: it reads no file outside its folder, not even
through a link, and it renders within a budget; tried as an attacker would."""

from __future__ import annotations

import os

import pytest
from conftest import copy_of, everything
from test_report import make_context

from reportgen.cli import main
from reportgen.errors import ReportgenError
from reportgen.report import budget, templates

SECRET = "REPORTGEN_TEST_SECRET"


@pytest.fixture
def secret(monkeypatch) -> str:
    value = "token-8c1f2e"
    monkeypatch.setenv(SECRET, value)
    return value


def refused(folder, *fragments: str) -> str:
    with pytest.raises(ReportgenError) as caught:
        templates.render_html(make_context(), folder)
    message = caught.value.format_message()
    assert all(fragment in message for fragment in fragments), message
    return message


@pytest.mark.parametrize(
    "name, link, include",
    [
        ("env.j2", "/proc/self/environ", "env.j2"),  # a file: the job's environment, its tokens
        ("sys", "/etc", "sys/passwd"),  # a folder
        ("_summary.html.j2", "/proc/self/environ", None),  # a partial the built-in report includes
    ],
    ids=["file", "folder", "partial"],
)
def test_a_link_out_of_the_templates_folder_is_refused(tmp_path, secret, name, link, include):
    (tmp_path / name).symlink_to(link)
    if include:
        (tmp_path / "_data.html.j2").write_text(f"<section id='data'>{{% include '{include}' %}}</section>\n")
    message = refused(tmp_path, f"template '{include or name}'", "a symbolic link")
    assert secret not in message and "root:" not in message


def test_a_link_inside_the_folder_is_refused_too(tmp_path):
    """Following it to see where it goes would reopen the race O_NOFOLLOW closes; and a
    template names any file of its folder directly."""
    (tmp_path / "real.j2").write_text("inside")
    (tmp_path / "alias.j2").symlink_to(tmp_path / "real.j2")
    (tmp_path / "_data.html.j2").write_text("<section id='data'>{% include 'alias.j2' %}</section>\n")
    refused(tmp_path, "template 'alias.j2'", "a symbolic link")


def test_a_hard_link_is_refused(tmp_path):
    """Not a link to follow, but the same file under another name, which may be outside."""
    outside = tmp_path / "outside.txt"
    outside.write_text("a secret of the machine")
    mine = tmp_path / "mine"
    mine.mkdir()
    os.link(outside, mine / "h.j2")
    (mine / "_data.html.j2").write_text("<section id='data'>{% include 'h.j2' %}</section>\n")
    message = refused(mine, "template 'h.j2'", "a hard link")
    assert "secret" not in message


def test_a_fifo_or_a_names_way_out_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "pipe.j2")  # an open() of it would wait for a writer forever
    (tmp_path / "_data.html.j2").write_text("<section id='data'>{% include 'pipe.j2' %}</section>\n")
    refused(tmp_path, "template 'pipe.j2'", "not a regular file")
    for name in ("../templates/base.html.j2", "/etc/passwd"):
        (tmp_path / "_data.html.j2").write_text(f"<section id='data'>{{% include '{name}' %}}</section>\n")
        refused(tmp_path, f"no template {name!r}")


@pytest.mark.parametrize(
    "body, reason",
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "steps"),
        ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}", "steps"),
        ("{{ 'x' * 10**10 }}", "a value"),
        ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "a value"),
        ("{{ 'x'|center(10**10) }}", "a value or width"),
        ("{{ '%0999999999d'|format(1) }}", "a value or width"),
        ("{{ '{:>999999999}'.format(1) }}", "a format"),
        # Only the join of the whole page finds it: named by the page, not the partial.
        ("{% set big = 'x' * 10000000 %}{% for i in range(100000) %}{{ big }}{% endfor %}", "page of more than"),
        ("{{ lipsum(10**7) }}", "'lipsum' is undefined"),
    ],
    ids=[
        "nested-loops",
        "exponential-macro",
        "product",
        "doubling",
        "filter-width",
        "printf-width",
        "format-width",
        "written-often",
        "lipsum",
    ],
)
def test_a_template_over_its_budget_is_refused(tmp_path, body, reason):
    (tmp_path / "_data.html.j2").write_text(f"<section id='data'>\n{body}\n</section>\n")
    where = "report.html.j2: rendering stopped" if reason == "page of more than" else "_data.html.j2, line 2: "
    refused(tmp_path, where, reason)


def test_a_loop_that_makes_no_step_is_stopped_by_the_clock(tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "SECONDS", 0.5)
    (tmp_path / "_data.html.j2").write_text(
        "<section id='data'>\n{% for c in 'x' * 60000000 %}{% for d in 'y' * 60000000 %}{% endfor %}{% endfor %}\n"
        "</section>\n"
    )
    refused(tmp_path, "_data.html.j2, line 2: rendering stopped: more than 0.5 s")


def test_what_a_real_template_does_is_within_budget(tmp_path):
    (tmp_path / "_data.html.j2").write_text(
        "<section id='data'>{{ range(5)|length }} {{ range(10)[3] }} {{ range(4)|list|join(',') }} "
        "{{ '%5.2f'|format(3.14159) }} {{ 'x' * 3 }} {{ '{}-{}'.format(1, 2) }}</section>\n"
    )
    assert "5 3 0,1,2,3  3.14 xxx 1-2" in templates.render_html(make_context(), tmp_path)


def test_render_refuses_a_runaway_template_and_keeps_the_previous_report(built_run, tmp_path, runner):
    run = copy_of(built_run, tmp_path / "run")
    before = everything(run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "_summary.html.j2").write_text(
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}\n"
    )
    result = runner.invoke(main, ["render", "-q", str(run), "--format", "html", "--templates", str(mine)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {mine / '_summary.html.j2'}, line 1: rendering stopped: more than 1,000,000 steps "
        "(the budget of a report's templates)\n"
    )
    assert everything(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "run"]
