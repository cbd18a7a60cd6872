"""The course's Jupyter contents manager: jupytext's pairing, with no edit lost.

jupytext's contents manager writes a lesson's .ipynb and its paired .py on every save in Jupyter.
When the .py was edited in an editor while the notebook was open, JupyterLab asks "File Changed:
Overwrite or Revert?", and Overwrite (its default) used to replace the editor's edit silently.
Here every paired file that changed on disk since the notebook was last read or saved is copied
to `name.bak-YYYYmmdd-HHMMSS` first, and the server's log and the save reply name the backup (a
small JupyterLab extension, jupyter/labextension/, shows the reply's message as a notification).
Revert, the dialog's other answer, drops the page's unsaved changes in the browser, as it says.

Opening a lesson should not mark it modified, nor log "Notebook ... is not trusted": a notebook
arrives in the page with the kernelspec and language_info its kernel is about to report (JupyterLab
writes them into the notebook when the kernel starts; the built lessons carry no Python version),
and a notebook without outputs (a lesson as built: nothing in it could run in the page) is trusted.

`python -m course.pairing` (run by `make start` and `make test` after pip) copies the course's
Jupyter settings from `jupyter/` into the environment, where `jupyter lab` from it reads them: this
contents manager (as a server extension), the notification, and no news pop-up. (pip's data-files
would be the usual way, but setuptools leaves them out of an editable install.)
"""

import hashlib
import shutil
import sys
from pathlib import Path

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class
from jupytext.formats import long_form_multiple_formats
from jupytext.paired_paths import find_base_path_and_format, paired_paths

from .build import backup_path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {  # file in the repository -> the folder of the environment where Jupyter reads it
    "jupyter/server/llm-from-scratch.json": "etc/jupyter/jupyter_server_config.d",
    "jupyter/lab/llm-from-scratch.json": "share/jupyter/lab/settings/overrides.d",
    "jupyter/labextension/package.json": "share/jupyter/labextensions/llm-from-scratch",
    "jupyter/labextension/static/remoteEntry.js": "share/jupyter/labextensions/llm-from-scratch/static",
}


def _digest(path):
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def paired_files(path, nb):
    """The API paths of the files a save of notebook `nb` at `path` writes (itself included)."""
    formats = nb.get("metadata", {}).get("jupytext", {}).get("formats")
    if not formats:
        return [path]
    try:
        formats = long_form_multiple_formats(formats)
        _, fmt = find_base_path_and_format(path, formats)
        return [alt for alt, _ in paired_paths(path, fmt, formats)]
    except Exception:  # a pairing jupytext cannot resolve for this name: it saves only the file itself
        return [path]


def as_its_kernel_reports(nb):
    """Give a Python notebook the kernelspec display name and language_info that its kernel (this
    environment's ipykernel) reports when it starts, so that starting it changes nothing."""
    spec = nb.metadata.get("kernelspec", {})
    if spec.get("language") != "python" or nb.metadata.get("language_info", {}).get("name") != "python":
        return
    try:
        from ipykernel.ipkernel import IPythonKernel
        from jupyter_client.kernelspec import KernelSpecManager

        display_name = KernelSpecManager().get_kernel_spec(spec["name"]).display_name
    except Exception:  # no such kernel here: JupyterLab asks which kernel to use anyway
        return
    nb.metadata["kernelspec"] = {**spec, "display_name": display_name}
    nb.metadata["language_info"] = dict(IPythonKernel.language_info)


class ContentsManager(build_async_jupytext_contents_manager_class(AsyncLargeFileManager)):
    """jupytext's contents manager that backs up a paired file changed behind the notebook's back."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = {}  # API path -> sha256 of the file when a notebook last read or wrote it

    def _remember(self, paths):
        for alt in paths:
            self.seen[alt] = _digest(self._get_os_path(alt))

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if content and model.get("type") == "notebook":
            self._remember(paired_files(path.strip("/"), model["content"]))
            as_its_kernel_reports(model["content"])
        return model

    async def save(self, model, path=""):
        path = path.strip("/")
        if model.get("type") != "notebook" or "content" not in model:
            return await super().save(model, path)
        files = paired_files(path, model["content"])
        kept = {}
        for alt in files:
            os_path = Path(self._get_os_path(alt))
            now = _digest(os_path)
            if now is not None and now != self.seen.get(alt):
                kept[alt] = backup_path(os_path)
                shutil.copy2(os_path, kept[alt])
        saved = await super().save(model, path)
        for alt, backup in list(kept.items()):
            if _digest(backup) == _digest(self._get_os_path(alt)):  # the save wrote the same bytes
                backup.unlink()
                del kept[alt]
        self._remember(files)
        if kept:
            message = "; ".join(
                f"{Path(alt).name} was changed outside JupyterLab since this notebook was opened or saved: "
                f"that version is kept in {backup.name}" for alt, backup in kept.items())
            self.log.warning(message)
            saved["message"] = message
        return saved

    async def rename_file(self, old_path, new_path):
        await super().rename_file(old_path, new_path)  # jupytext renames the paired files alike
        old, new = (p.strip("/").rsplit(".", 1)[0] for p in (old_path, new_path))
        for alt in [alt for alt in self.seen if alt.rsplit(".", 1)[0] == old]:
            self.seen[new + alt[len(old):]] = self.seen.pop(alt)

    def mark_trusted_cells(self, nb, path=""):
        if not any(cell.get("outputs") for cell in nb.cells):
            self.notary.mark_cells(nb, True)  # no output, nothing to distrust
            return
        super().mark_trusted_cells(nb, path)


def _jupyter_server_extension_points():
    return [{"module": "course.pairing"}]


def _link_jupyter_server_extension(serverapp):
    """Jupyter's server extension hook, run before the server makes its contents manager."""
    serverapp.contents_manager_class = ContentsManager


def _load_jupyter_server_extension(serverapp):
    serverapp.log.info("course.pairing: jupytext's pairing, backing up a paired file changed on disk")


def install_settings(prefix=sys.prefix):
    """Copy the course's Jupyter settings into the environment at `prefix`; the paths written."""
    written = []
    for source, folder in SETTINGS.items():
        target = Path(prefix) / folder / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / source, target)
        written.append(target)
    return written


if __name__ == "__main__":
    for path in install_settings():
        print(f"installed {path}")
