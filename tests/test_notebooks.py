"""Every notebook in notebooks/ runs from top to bottom in a fresh kernel, and none is committed
with outputs (CI executes them, so they cannot rot and the repository stays small)."""
import os
import sys
from pathlib import Path

import pytest
from conftest import REPO, shared_data_dir

NOTEBOOKS = sorted(Path(REPO, "notebooks").glob("*.ipynb"))


def _read(path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} carry outputs or execution counts; strip "
                       f"them before committing (Jupyter: 'Clear All Outputs' before saving, or "
                       f"jupyter nbconvert --clear-output --inplace)")


def _this_python_kernel_manager():
    """A kernel manager class whose "python3" kernel is this interpreter (the venv's python).

    With no kernel directories to search, jupyter_client falls back to ipykernel's own
    kernel spec, whose argv starts with ``sys.executable``; so no kernel spec installed for
    the user (``~/.local/share/jupyter``) or the system can replace it.  Passed as
    ``kernel_manager_class``, nbclient still owns the manager, so it shuts the kernel down
    and closes its sockets when the notebook ends.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return KernelSpecManager(kernel_dirs=[])

    argv = ThisPythonKernelManager(kernel_name="python3").kernel_spec.argv
    assert argv[0] == sys.executable, argv
    return ThisPythonKernelManager


def _stream_text(nb, name):
    return "".join(out.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for out in c.get("outputs", ()) if out.get("output_type") == "stream"
                   and out.get("name") == name)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    import nbclient

    import painvrl

    # The kernel inherits this environment.  JUPYTER_PLATFORM_DIRS=1 opts in to the
    # platformdirs paths that older jupyter_core versions warn (DeprecationWarning) they will
    # move to.  PYTHONPATH makes the kernel import the painvrl this test process imports.
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(painvrl.__file__)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    data_dir = shared_data_dir()
    monkeypatch.setenv("PAINVRL_DATA", data_dir)
    nb = _read(path)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     kernel_manager_class=_this_python_kernel_manager(),
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    errors = _stream_text(nb, "stderr")
    assert not errors, f"{path.name} wrote to stderr (a warning?):\n{errors}"
    stdout = _stream_text(nb, "stdout")
    if os.path.isfile(os.path.join(data_dir, "lastfm2k-multimodal", "lfm2k.inter")):
        # The real-data part may be skipped only when the data are absent.
        assert "Last.fm part skipped" not in stdout
        if "find_lastfm" in "".join(c.source for c in nb.cells):
            assert "Last.fm data:" in stdout
