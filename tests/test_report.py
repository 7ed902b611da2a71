"""The report from a fixture results set: plots exist and are real PNGs, the HTML embeds them, OOM rows stay."""

import base64

from orchestrator.bench.report import write_report
from tests.bench_fixtures import synthetic_rows
from tests.conftest import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_writes_markdown_html_and_plots(tmp_path):
    written = write_report(synthetic_rows(), tmp_path, REPO / "examples" / "llama31-8b-qlora.yaml", html=True,
                           sources=["fixture"])
    pngs = [p for p in written if p.suffix == ".png"]
    assert {p.name for p in pngs} == {"tokens_per_s.png", "usd_per_mtok.png", "vram.png", "own_vs_rent.png"}
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 5000 for p in pngs)
    markdown = (tmp_path / "report.md").read_text()
    assert all(f"]({p.name})" in markdown for p in pngs)
    assert "| meta-llama/Llama-3.1-8B | full | 4096 | 8 | off | oom |" in markdown  # out-of-memory rows stay
    for section in ("$ per million training tokens by target", "Owning against renting", "Estimator error",
                    "Which GPUs each model and method fits on", "Peak VRAM: measured against estimated"):
        assert f"## {section}" in markdown
    page = (tmp_path / "report.html").read_text()
    for png in pngs:  # self-contained: every plot inline, byte for byte
        assert f"data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}" in page
    assert "local amortized" in markdown and "local marginal" in markdown and "cloud spot" in markdown
