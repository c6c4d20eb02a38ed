"""Embedding throughput of the packaged all-MiniLM-L6-v2 on a CUDA GPU, as the worker runs it
when ``spec.worker.gpu`` is set (sentence-transformers on device ``cuda``).

Standalone: needs only a copy of this repository and a Python with the [text] extra
(``scripts/setup-text.sh``); it does not use bench/benchlib.py. Run:

    .venv-text/bin/python bench/embed_gpu.py [--texts 20000] [--out embed_gpu.json]

Prints the device name, then texts/s for batch sizes 32 to 1024 (best of ``--rounds``, each
round timed between CUDA synchronisations), the GPU memory peak per batch size, and the largest
difference from the CPU vectors (numpy runtime) on the first 256 texts. On a machine without
CUDA it says so and exits 0.

A lent GPU machine (the ``device`` tool) has torch, sentence-transformers and tokenizers but
not the model package, and its working tree travels in at most 64 MiB: the 87 MB float32
weights do not fit. ``--export-fp16 DIR`` (run here, in the text venv) writes the model with
float16 weights (~46 MB; loaded back into float32, so vectors move by ~1e-3 and throughput is
that of the float32 model); there, ``--model-dir DIR`` reads it:

    .venv-text/bin/python bench/embed_gpu.py --export-fp16 .gpu-model   # here; keep it out of git
    python3 bench/embed_gpu.py --model-dir .gpu-model --out $OUT/embed_gpu.json   # carry .gpu-model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH_SIZES = (32, 64, 128, 256, 512, 1024)


def export_fp16(target: Path) -> None:
    """The packaged model with its float32 tensors stored as float16, and every other file."""
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    from monitor_worker.embedder import model_path

    source = model_path()
    for f in source.rglob("*"):
        if f.is_file() and f.name != "model.safetensors":
            dest = target / f.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
    weights = load_file(str(source / "model.safetensors"))
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()}
    save_file(half, str(target / "model.safetensors"))
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"wrote {target} ({size / 2**20:.1f} MiB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--texts", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--model-dir", type=Path, help="model directory (default: the package's)")
    ap.add_argument("--export-fp16", type=Path, metavar="DIR", help="write a float16 copy, exit")
    args = ap.parse_args()
    if args.export_fp16:
        export_fp16(args.export_fp16)
        return 0
    try:
        import torch
    except ImportError:
        print("torch is not installed (the [text] extra): nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print(f"no CUDA device visible to torch {torch.__version__}: nothing to measure")
        return 0

    import numpy as np

    from monitor_worker.embedder import load_embedder
    from tests.unit.stats.peer_cases import texts

    name = torch.cuda.get_device_name(0)
    print(f"device: {name} (torch {torch.__version__}, CUDA {torch.version.cuda})", flush=True)
    batch = texts(5, args.texts)
    t = time.perf_counter()
    gpu = load_embedder("cuda", path=args.model_dir)
    load_s = time.perf_counter() - t
    print(f"loaded on {gpu.device} ({gpu.runtime}) in {load_s:.1f} s", flush=True)
    cpu_vectors = load_embedder("cpu", runtime="numpy", path=args.model_dir).embed(batch[:256])
    max_diff = float(np.abs(gpu.embed(batch[:256]) - cpu_vectors).max())
    print(f"max |gpu - cpu| over 256 texts: {max_diff:.2e}", flush=True)
    rows = []
    for bs in BATCH_SIZES:
        gpu.batch_size = bs  # type: ignore[attr-defined]
        gpu.embed(batch[: bs * 2])  # warm-up at this size
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        best = float("inf")
        for _ in range(args.rounds):
            torch.cuda.synchronize()
            t = time.perf_counter()
            gpu.embed(batch)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated() / 2**20
        rows.append({"batch_size": bs, "texts_per_s": len(batch) / best, "gpu_peak_mb": peak})
        print(
            f"batch {bs:5d}: {len(batch) / best:10,.0f} texts/s  (GPU memory peak {peak:,.0f} MB)",
            flush=True,
        )
    # Half precision, for the record (the worker runs float32): how much a float16 model gains.
    gpu.model.half()  # type: ignore[attr-defined]
    half_rows = []
    for bs in BATCH_SIZES:
        gpu.batch_size = bs  # type: ignore[attr-defined]
        gpu.embed(batch[: bs * 2])
        torch.cuda.synchronize()
        t = time.perf_counter()
        gpu.embed(batch)
        torch.cuda.synchronize()
        rate = len(batch) / (time.perf_counter() - t)
        half_rows.append({"batch_size": bs, "texts_per_s": rate})
        print(f"float16 batch {bs:5d}: {rate:10,.0f} texts/s", flush=True)
    doc = {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "texts": len(batch),
        "mean_chars": sum(map(len, batch)) / len(batch),
        "load_s": load_s,
        "max_abs_diff_vs_cpu": max_diff,
        "rows": rows,
        "float16_rows": half_rows,
    }
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
