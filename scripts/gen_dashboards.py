"""Write the Grafana dashboards built from code (dashboards/) into the chart:
helm/model-monitor/files/dashboards/model-monitor.json. Needs grafana-foundation-sdk (the
project's dev extras).

    python scripts/gen_dashboards.py          # rewrite (`make dashboards`)
    python scripts/gen_dashboards.py --check  # exit 1 naming the stale file
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from dashboards.model_monitor import dashboard_json  # noqa: E402

OUTPUT = REPO / "helm" / "model-monitor" / "files" / "dashboards" / "model-monitor.json"


def outputs() -> dict[Path, str]:
    return {OUTPUT: dashboard_json()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)
    for path in stale:
        print(f"stale: {path.relative_to(REPO)} (run: make dashboards)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
