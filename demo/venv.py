"""The model server's own environment, ``.venv-demo``: MLServer and the scikit-learn,
pandas and numpy it serves the model with (``demo/requirements.txt``). Created once and
reused while the requirements file is unchanged. ``python -m demo.venv`` just ensures it."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-demo"
REQUIREMENTS = REPO / "demo" / "requirements.txt"
PYTHON = VENV / "bin" / "python"
MLSERVER = VENV / "bin" / "mlserver"


def _stamp() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def ready() -> bool:
    return _stamp().is_file() and MLSERVER.is_file()


def ensure(log=print) -> Path:
    """Create or update .venv-demo if needed; returns its python."""
    if ready():
        return PYTHON
    base = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    if not PYTHON.is_file():
        log(f"creating {VENV.name} with {base}")
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    log(f"installing {REQUIREMENTS.relative_to(REPO)} into {VENV.name} (once; about 2-3 minutes)")
    pip = [str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    _stamp().touch()
    return PYTHON


if __name__ == "__main__":
    ensure()
    print(f"{VENV} is ready")
