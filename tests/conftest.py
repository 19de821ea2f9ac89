import atexit
import os
import shutil
import tempfile

# tests never read this machine's own calibration profiles (`infercast calibrate` output); the
# stand-in home goes when the session ends
if "INFERCAST_HOME" not in os.environ:
    os.environ["INFERCAST_HOME"] = tempfile.mkdtemp(prefix="infercast-home-")
    atexit.register(shutil.rmtree, os.environ["INFERCAST_HOME"], True)

import pytest
import yaml

TOY_HW = {
    "id": "toy", "name": "Toy accelerator", "vendor": "test", "kind": "gpu",
    "sources": {"hand": {"note": "round numbers for hand arithmetic"}},
    "engines": {"gpu": {"peak": {"bf16": "100 TFLOP/s", "fp8": "200 TFLOP/s"}, "compute_units": 100, "source": "hand"}},
    "memory": {"device": {"capacity": "100 GB", "bandwidth": "1 TB/s", "source": "hand"}},
    "links": {"scaleup": {"bandwidth_per_dir": "100 GB/s", "domain_size": 8, "source": "hand"}},
    "power": {"tdp": "500 W", "source": "hand"},
    "price": {"cloud_usd_per_hour": 3.6, "source": "hand"},
}


@pytest.fixture
def toy_hw_path(tmp_path):
    """A hardware YAML with round numbers (100 TFLOP/s bf16, 1 TB/s, 100 GB, $3.6/h)."""
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY_HW))
    return str(path)
