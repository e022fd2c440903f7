"""The pipeline: for each command, the stages in order, with plain values between them.

    data -> model -> train -> evaluate -> compare -> inspect -> figures -> report

settings.py holds what the commands take and give, stages.py each stage up to the figures
as a call, reporting.py the figures and the report (pdfahead.py: the PDF laid out in a
forked child meanwhile), baseline.py the compare stage's baseline and gates, checks.py what
is refused before any work, and commands.py the commands themselves.
"""

from __future__ import annotations

from reportgen.pipeline.commands import run_build, run_evaluate, run_inspect, run_render, run_train
from reportgen.pipeline.settings import DataSettings, RenderSettings, RunSettings, Written

__all__ = [
    "DataSettings",
    "RenderSettings",
    "RunSettings",
    "Written",
    "run_build",
    "run_evaluate",
    "run_inspect",
    "run_render",
    "run_train",
]
