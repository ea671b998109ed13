"""The report stage's old module name (it is `hpc_rg.report.stage` now), kept for hpc_rg/sweep.py and
tests/slurm/test_pipeline.py, which still name it."""
from hpc_rg.report.markdown import table as _table                            # noqa: F401
from hpc_rg.report.stage import html_page as _html, write_report, write_text as _atomic   # noqa: F401
