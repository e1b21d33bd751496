"""nox sessions for faceattr: tests, validate (the gate), lint, bench."""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2024.3.2"
# pip, not uv: pip's configuration on these machines finds the local CPU build of torch.
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_venv = "yes"  # a second run does not reinstall torch
nox.options.sessions = ["tests", "lint"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
# The CPU wheel on local disk; override where another torch build is wanted.
TORCH_SPEC = os.environ.get("FACEATTR_TORCH_SPEC", "torch==2.13.0")
THREADS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _install(session: nox.Session, *groups: str, faceattr: str = "-e .") -> None:
    session.install(TORCH_SPEC)
    session.install(*faceattr.split())
    # facenet-pytorch 2.6.0 pins torch<2.3, torchvision<0.18, numpy<2, Pillow<10.3: install it
    # without its dependencies; faceattr supplies the two torchvision functions it uses when
    # torchvision is absent (faceattr/models/_torchvision_shim.py).
    session.install("--no-deps", "facenet-pytorch==2.6.0")
    # zennit (LRP): 1.0 needs Python >= 3.11.11 and a plain install replaces the CPU torch
    session.install("--no-deps", "zennit==0.5.1")
    # onnx2torch (ONNX model files -> differentiable torch modules) requires torchvision, which
    # would pull another torch: install it without its dependencies (onnx comes with faceattr);
    # faceattr/models/_torchvision_shim.py supplies the torchvision.ops functions it imports.
    session.install("--no-deps", "onnx2torch==1.5.15")
    session.install("--no-deps", "quantus==0.6.0")
    if groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the unit and property tests (tests/)."""
    _install(session, "test")
    session.run("pytest", "tests", "-p", "no:cacheprovider", *session.posargs, env=THREADS_ENV)


@nox.session(default=False)
def validate(session: nox.Session) -> None:
    """Run the default protocols end to end, check every claim, write reports/<run>/report.html."""
    _install(session, "test")
    session.run("pytest", "validation", "-v", "-p", "no:cacheprovider", *session.posargs,
                env=THREADS_ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict and the import contracts (.importlinter) on faceattr."""
    _install(session, "lint")
    session.run("ruff", "check", "faceattr", "tests", "validation", "examples", "noxfile.py")
    session.run("mypy", "--strict", "faceattr")
    session.run("lint-imports")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks as ratios measured in one run; results in reports/bench/*.json."""
    _install(session, faceattr="-e .[dask]")
    session.run("python", "-m", "faceattr.bench", *session.posargs, env=THREADS_ENV)
    if "--only" not in session.posargs:  # the Dask executor and the engine's CPU layouts
        for only in ("dask", "layouts"):
            session.run("python", "-m", "faceattr.bench", "--only", only, *session.posargs,
                        env=THREADS_ENV)


@nox.session(default=False)
def example(session: nox.Session) -> None:
    """The example study (examples/mystudy) as a researcher runs it: faceattr from a built wheel
    and the study package in this fresh venv, validated from a folder outside the checkout;
    the gate must pass, and fail on the planted defect."""
    import shutil
    import tempfile
    from pathlib import Path

    dist = Path(tempfile.mkdtemp(prefix="faceattr-wheel-"))
    session.run("python", "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), ".")
    (wheel,) = dist.glob("faceattr-*.whl")
    _install(session, faceattr=str(wheel))
    # the wheel of this very tree, even where a reused venv holds an older build of 0.1.0
    session.install("--force-reinstall", "--no-deps", str(wheel), "examples/mystudy")
    work = Path(tempfile.mkdtemp(prefix="faceattr-study-"))
    for name in ("study.toml", "study_defect.toml"):
        shutil.copy(Path("examples/mystudy") / name, work / name)
    with session.chdir(work):
        session.run("python", "-m", "mystudy.make_assets", "assets", env=THREADS_ENV)
        session.run("faceattr", "validate", "study.toml", env=THREADS_ENV)
        session.run("faceattr", "validate", "study_defect.toml", env=THREADS_ENV,
                    success_codes=[1])
    session.log(f"study folder (reports/ inside): {work}")
