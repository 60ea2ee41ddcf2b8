"""Rendering a distgit's `<name>.spec.j2` template into `<name>.spec`, as DLRN does with
`renderspec --spec-style fedora` for distgits kept in the openstack/rpm-packaging style.

The template comes from a distgit and is not trusted: Jinja runs code while it renders. So it
renders with renderspec's loader and functions (py2pkg, py3, upstream_version, license...)
but in Jinja's `SandboxedEnvironment`, in a worker process, and, where bubblewrap works, with
that worker inside the sandbox (`conveyor.builders.bwrap`, as the spec parser's worker in
`conveyor.builders.spec`): no network, no host files but the system and the Python code it
imports, its own tmpfs. Without bubblewrap, the worker is an ordinary child process; the
Jinja sandbox is then the only barrier, the best that host allows.

renderspec's `fetch_source()` downloads only when it is given an output folder; the worker
gives none, so a template cannot make conveyor fetch anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.builders import bwrap
from conveyor.builders.spec import SpecError, ask_worker, worker_failed

SPEC_STYLE = "fedora"  # RDO's: DLRN runs `renderspec --spec-style fedora`
TEMPLATE_SUFFIX = ".spec.j2"
RENDER_TIMEOUT = 120.0
# A template larger than this is not a spec template.
MAX_TEMPLATE_BYTES = 4 * 1024 * 1024
_WORKER_CODE = "from conveyor.builders.renderspec import _worker; _worker()"


def render_spec(
    template: Path,
    epochs: Mapping[str, int] | None = None,
    requirements: Mapping[str, str] | None = None,
) -> Path:
    """Render `template` (`<name>.spec.j2`) into `<name>.spec` beside it and return that path.

    `epochs` maps package names to epochs (renderspec's `--epochs` file), `requirements`
    PyPI names to minimum versions (its `--requirements`): both optional, as for DLRN."""
    if not template.name.endswith(TEMPLATE_SUFFIX) or template.name == TEMPLATE_SUFFIX:
        raise SpecError(f"{template.name}: not a <name>{TEMPLATE_SUFFIX} template")
    output = template.with_name(template.name[: -len(".j2")])
    try:
        if template.stat().st_size > MAX_TEMPLATE_BYTES:
            raise SpecError(f"{template.name}: template larger than {MAX_TEMPLATE_BYTES} bytes")
        text = template.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{template.name}: cannot read template: {exc}") from None
    request = {
        "text": text,
        "name": template.name,
        "epochs": dict(epochs or {}),
        "requirements": dict(requirements or {}),
    }
    answer = _run_worker(template.name, request)
    if "error" in answer:
        raise SpecError(f"{template.name}: cannot render the spec template: {answer['error']}")
    if output.is_symlink() or (output.exists() and not output.is_file()):
        raise SpecError(f"{template.name}: {output.name} exists and is not a regular file")
    output.write_text(answer["text"], encoding="utf-8")
    return output


def _render_text(
    text: str, name: str, epochs: dict[str, int], requirements: dict[str, str]
) -> dict[str, str]:
    """The rendered spec's text, or an error: renderspec's own rendering
    (`_renderer_input_template_format_spec`), with a sandboxed Jinja environment."""
    # Imported here: the worker's modules, not conveyor's.
    import jinja2.exceptions
    import jinja2.sandbox
    import renderspec.contextfuncs  # type: ignore[import-untyped]
    import renderspec.distloader  # type: ignore[import-untyped]

    class Loader(renderspec.distloader.RenderspecLoader):  # type: ignore[misc]
        """renderspec's loader joins any other name to its templates' folder: an absolute
        one would read a host file. Only the template and renderspec's own ones load."""

        def get_source(self, environment: Any, template: str) -> Any:
            if template not in self.list_templates():
                raise jinja2.exceptions.TemplateNotFound(template)
            return super().get_source(environment, template)

    with tempfile.TemporaryDirectory(prefix="conveyor-renderspec-") as folder:
        path = Path(folder) / Path(name).name
        path.write_text(text, encoding="utf-8")
        try:
            env = jinja2.sandbox.SandboxedEnvironment(
                loader=Loader(template_fn=str(path)),
                trim_blocks=True,
            )
            renderspec.contextfuncs.env_register_filters_and_globals(env)
            template_name = ".spec"
            if SPEC_STYLE in env.loader.list_templates():  # type: ignore[union-attr]
                template_name = SPEC_STYLE
            rendered = env.get_template(template_name).render(
                spec_style=SPEC_STYLE,
                epochs=epochs,
                requirements=requirements,
                skip_pyversion=None,
                input_template_dir=folder,
                output_dir=None,  # renderspec downloads fetch_source() URLs only into this
            )
        except jinja2.exceptions.SecurityError as exc:
            return {"error": f"the template tried an unsafe operation: {exc}"}
        except Exception as exc:  # a template fails in many ways; all mean "bad template"
            return {"error": f"{type(exc).__name__}: {exc}"}
    if not rendered.endswith("\n"):
        rendered += "\n"
    return {"text": rendered}


def _worker() -> None:
    """The worker's side: a request on stdin, the answer as the last line of stdout."""
    answer = _render_text(**json.loads(sys.stdin.read()))
    sys.stdout.write("\n" + json.dumps(answer) + "\n")


def _worker_command() -> tuple[list[str], bwrap.Sandbox | None]:
    if bwrap.problem() is not None:
        return [sys.executable, "-I", "-B", "-c", _WORKER_CODE], None
    import jinja2
    import markupsafe
    import packaging
    import pymod2pkg  # type: ignore[import-untyped]
    import renderspec
    import yaml

    from conveyor.builders import spec

    mounts = spec.python_mounts(renderspec, pymod2pkg, jinja2, markupsafe, yaml, packaging)
    sandbox = bwrap.Sandbox(
        readonly=mounts,
        limits=bwrap.Limits(processes=16, cpu_seconds=int(RENDER_TIMEOUT)),
        cwd=Path("/tmp"),  # noqa: S108 - the sandbox's private tmpfs
    )
    code = f"import sys; sys.path.insert(0, {str(spec.PYTHON_INSIDE)!r}); {_WORKER_CODE}"
    return [os.path.realpath(sys.executable), "-I", "-B", "-c", code], sandbox


def _run_worker(name: str, request: dict[str, Any]) -> dict[str, str]:
    try:
        command, sandbox = _worker_command()
        options: dict[str, Any] = {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "text": True,
            "errors": "replace",
        }
        if sandbox is None:
            proc = subprocess.Popen(
                command, cwd=tempfile.gettempdir(), start_new_session=True, **options
            )
        else:
            proc = sandbox.popen(command, **options)
    except (bwrap.SandboxError, OSError, shutil.Error) as exc:
        raise SpecError(f"{name}: cannot start the template renderer: {exc}") from None
    what = f"{name}: the template renderer"
    answer, err = ask_worker(proc, request, RENDER_TIMEOUT, what)
    if not all(isinstance(v, str) for v in answer.values()) or not {"error", "text"} & set(answer):
        raise worker_failed(proc, err, what)
    return answer
