"""Planning stays light: `orch plan` imports neither torch nor sky, nor the CLI framework and its pydantic."""

from benchmarks.plan_speed import HEAVY_MODULES, imported_modules
from tests.conftest import REPO


def test_plan_imports_no_heavy_module():
    modules = imported_modules(str(REPO / "examples" / "tiny.yaml"))
    assert {"orchestrator", "gpu_catalog", "yaml"} <= modules  # the scan sees what was really imported
    assert not modules & set(HEAVY_MODULES)
