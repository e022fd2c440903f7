"""The GPU build: the one line `--ctx auto` prints when the machine has an NVIDIA GPU this MXNet
cannot use (tested with a stand-in nvidia-smi on PATH: this machine has no GPU, and the CPU
wheel), the build the driver's CUDA version asks for, and the one line without MXNet at all."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.net import devices

FAKE = """#!/bin/sh
if [ "$1" = "-L" ]; then
    printf '%s\\n' {gpus}
    exit {code}
fi
echo "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: {cuda}     |"
"""


def fake_smi(folder: Path, monkeypatch, gpus: list[str], cuda: str = "12.2", code: int = 0) -> None:
    script = folder / "nvidia-smi"
    script.write_text(FAKE.format(gpus=" ".join(f"'{g}'" for g in gpus) or "''", cuda=cuda, code=code))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_a_gpu_beside_the_cpu_build_is_named_with_the_build_to_install(tmp_path, monkeypatch):
    fake_smi(tmp_path, monkeypatch, ["GPU 0: NVIDIA A10G (UUID: GPU-0000)", "GPU 1: NVIDIA A10G (UUID: GPU-0001)"])
    hint = devices.cpu_build_hint()
    assert hint == (
        "note: nvidia-smi lists 2 GPUs (NVIDIA A10G; driver's CUDA 12.2), but the installed MXNet is its CPU "
        "build: running on the CPU. For the GPU: make report GPU=auto (or GPU=cu117)"
    )


@pytest.mark.parametrize(
    "gpus, code, hidden",
    [([], 0, None), (["GPU 0: NVIDIA A10G (UUID: GPU-0000)"], 9, None), (["GPU 0: X (UUID: 1)"], 0, "")],
)
def test_no_line_without_a_visible_gpu(tmp_path, monkeypatch, gpus, code, hidden):
    fake_smi(tmp_path, monkeypatch, gpus, code=code)
    if hidden is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    assert devices.cpu_build_hint() is None


def test_no_nvidia_smi_no_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices.cpu_build_hint() is None


@pytest.mark.parametrize(
    "cuda, build",
    [("12.4", "cu117"), ("11.8", "cu117"), ("11.7", "cu117"), ("11.2", "cu112"), ("11.0", "cu110"),
     ("10.2", "cu102"), ("10.1", "cu101"), ("10.0", "cpu"), ("9.2", "cpu")],
)  # fmt: skip
def test_the_build_for_a_drivers_cuda_version(cuda, build):
    assert devices.mxnet_variant(cuda) == build


def test_the_makefile_chooses_the_same_build(tmp_path, monkeypatch):
    """make GPU=auto reads the same nvidia-smi line: `make -n` shows what it would install."""
    checkout = Path(__file__).resolve().parent.parent
    for cuda, build in (("12.2", "cu117"), ("11.4", "cu114"), ("10.2", "cu102"), ("9.0", "cpu")):
        fake_smi(tmp_path, monkeypatch, ["GPU 0: X (UUID: 1)"], cuda=cuda)
        stamp = tmp_path / "stamp"  # not this checkout's: nothing here is installed or changed
        done = subprocess.run(
            ["make", "-n", "-C", str(checkout), f"STAMP={stamp}", "GPU=auto", str(stamp)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert f"-e '.[test,{build}]'" in done.stdout, (cuda, done.stdout)
    done = subprocess.run(["make", "-n", "-C", str(checkout), "GPU=cu999", "report"], capture_output=True, text=True)
    assert done.returncode != 0 and "GPU=cu999: expected auto, cpu or one of cu101" in done.stderr


@pytest.mark.parametrize("command", ["train", "build"])
def test_train_and_build_say_it(trained_run, tmp_path, monkeypatch, command):
    fake_smi(tmp_path, monkeypatch, ["GPU 0: NVIDIA A10G (UUID: GPU-0000)"])
    args = {
        "train": ["train", "--epochs", "1", "--train-limit", "200", "--test-limit", "100"],
        "build": ["build", "--model", str(trained_run), "--test-limit", "100", "--format", "html"],
    }[command]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: nvidia-smi")]
    assert notes == [devices.cpu_build_hint()]


@pytest.mark.parametrize("command", ["build", "train", "evaluate"])
def test_without_mxnet_a_command_that_needs_it_says_how_to_install_it(tmp_path, command):
    out = tmp_path / "out"
    args = [command, "--out", str(out)] + (["--model", str(tmp_path)] if command == "evaluate" else [])
    blocked = f"import sys; sys.modules['mxnet'] = None; from reportgen.cli import main; main({args!r})"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: reportgen {command} needs MXNet, which is not installed: pip install ")
    assert "'.[cpu]'" in line and not out.exists()
