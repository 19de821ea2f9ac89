"""Write a calibration profile as YAML that hwspecs/calibration's loader reads back; an existing
file is renamed with its modification time, never overwritten."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import yaml

from simulator.calibration import Calibration


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items() if v is not None}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return ".inf" if math.isinf(x) else float(f"{x:.6g}")
    return x


def write_profile(cal: Calibration, dest: Path) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        stamp = datetime.datetime.fromtimestamp(dest.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        dest.rename(dest.with_name(f"{dest.stem}.{stamp}{dest.suffix}"))
    data = _plain(cal.model_dump())
    text = yaml.safe_dump(data, sort_keys=False).replace("'.inf'", ".inf")
    dest.write_text(f"# {cal.note}\n" + text)
    Calibration.model_validate(yaml.safe_load(text))  # reads back
    return dest
