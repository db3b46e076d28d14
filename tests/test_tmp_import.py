import importlib.util, sys, os
from pathlib import Path
def test_x() -> None:
    spec = importlib.util.spec_from_file_location("hub_bench", Path(__file__).parents[1] / "bench" / "hub_bench.py")
    m = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = m
    spec.loader.exec_module(m)
    if os.environ.get("DEL"):
        del sys.modules[spec.name]
