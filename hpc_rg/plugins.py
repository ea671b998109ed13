"""One way to plug things in: samplers, lattice models, learners and reductions.

A plugin is declared next to its implementation, in the module that holds it, as a module-level literal:

    from hpc_rg.plugins import Plugin

    PLUGINS = (
        Plugin("reduction", "mutual_information", "compute", spec="MutualInformationSpec",
               needs=("ensemble",), doc="block-environment mutual information"),
    )

`entry` and `spec` are "module:object" paths, or bare names of objects in the declaring module. `discover`
finds the declarations by *reading* the modules of the plugin packages (and those named in the environment
variable HPC_RG_PLUGINS, comma-separated module names, for plugins outside hpc_rg), never by importing them:
validating a job costs no numba or torch import, and a new plugin needs no edit anywhere else. The object
itself is imported by `Plugin.load()` when it is used.

Fields by group:
- sampler: `models` it serves; `device` "cpu" or "cuda" (a GPU variant is an entry of the same name). One
  algorithm name may be implemented by different classes for different models (Metropolis on the
  nearest-neighbour and on the long-range lattice): look samplers up with `model=`.
- model: a lattice model (`entry` builds it from the `[simulate]` table).
- learner: a `kind` of `[train.<name>]`; `spec` is its table's dataclass.
- reduction: an `[analyze.<name>]`; `spec` its table; `needs` what it reads ("ensemble", "models",
  "results:<other reduction>"), which the analyze stage checks before any work.
Any group: `imports` names the optional packages (torch, sklearn, ...) the implementation imports when it
runs, so a stage stops with one line naming the missing extra before any work (hpc_rg.extras).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_rg.schema import ConfigError

GROUPS = ("sampler", "model", "learner", "reduction")
PACKAGES = ("hpc_rg.lattice", "hpc_rg.mc", "hpc_rg.learn", "hpc_rg.reduce")
ENV = "HPC_RG_PLUGINS"


class PluginError(ConfigError, LookupError):
    """A declaration that cannot be read, two plugins with one name, or a name nothing declares: a problem the
    user fixes (the command line prints it as one line and exits 2), naming the file it comes from."""

    def __init__(self, message: str, file: str | Path = ENV):
        self.file, self.key, self.found, self.allowed = str(file), "", None, message
        ValueError.__init__(self, message)


@dataclass(frozen=True)
class Plugin:
    group: str
    name: str
    entry: str
    spec: str = ""
    device: str = "cpu"
    models: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    doc: str = ""
    module: str = field(default="", compare=False)     # the declaring module (filled in by discovery)

    def __post_init__(self):
        if self.group not in GROUPS:
            raise PluginError(f"plugin {self.name!r}: group {self.group!r} is not one of {', '.join(GROUPS)}")
        for name in ("models", "needs", "imports"):
            value = getattr(self, name)
            if isinstance(value, str):      # models="ising2d" would otherwise become a tuple of letters
                raise PluginError(f"plugin {self.name!r}: {name} must be a tuple of names, e.g. ({value!r},)",
                                  self.module or ENV)
            object.__setattr__(self, name, tuple(value))
        if self.group == "reduction" and not self.spec:
            raise PluginError(f"reduction plugin {self.name!r}: spec= names the dataclass of its job table",
                              self.module or ENV)

    def load(self) -> Any:
        """The implementation (imported now)."""
        return _resolve(self.entry, self.module)

    def load_spec(self) -> type | None:
        """The dataclass of the plugin's job table, or None if it has none."""
        return _resolve(self.spec, self.module) if self.spec else None


def _resolve(target: str, module: str) -> Any:
    mod, _, obj = target.rpartition(":")
    mod = mod or module
    if not mod:
        raise PluginError(f"{target!r}: no module to import it from (write \"module:object\")")
    value: Any = importlib.import_module(mod)
    for part in obj.split("."):
        value = getattr(value, part)
    return value


def _declarations(path: Path, module: str) -> list[Plugin]:
    """The `Plugin(...)` calls of a module-level `PLUGINS = (...)` in `path`, read without importing it."""
    try:
        text = path.read_text(encoding="utf-8")
        if "PLUGINS" not in text:
            return []
        body = ast.parse(text, str(path)).body
    except (OSError, UnicodeDecodeError, SyntaxError) as e:
        raise PluginError(f"{path}: cannot read its PLUGINS declaration ({e})", path) from None
    found = []
    for node in body:
        if not (isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                isinstance(t, ast.Name) and t.id == "PLUGINS"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            continue
        if not isinstance(node.value, (ast.Tuple, ast.List)):
            raise PluginError(f"{path}:{node.lineno}: PLUGINS must be a tuple or list of Plugin(...) literals", path)
        for call in node.value.elts:
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Plugin"):
                raise PluginError(f"{path}:{call.lineno}: PLUGINS holds Plugin(...) calls only", path)
            try:
                args = [ast.literal_eval(a) for a in call.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            except ValueError:
                raise PluginError(f"{path}:{call.lineno}: Plugin(...) arguments must be literals "
                                  "(strings, numbers, tuples)", path) from None
            try:
                found.append(Plugin(*args, **kwargs, module=module))
            except TypeError as e:                       # a misspelt or missing field
                raise PluginError(f"{path}:{call.lineno}: {e}", path) from None
    return found


def _package_modules(package: str) -> list[tuple[Path, str]]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(f"plugin package {package!r} not found")
    out = []
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).glob("*.py")):
            out.append((path, f"{package}.{path.stem}"))
    return out


def _module_file(module: str) -> Path:
    # find_spec runs the __init__ of a parent package (as any import would), never the module itself
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise PluginError(f"{ENV}: module {module!r} not found (or not a .py file)")
    return Path(spec.origin)


_FOUND: list[Plugin] | None = None
_REGISTERED: list[Plugin] = []


def _clash(a: Plugin, b: Plugin) -> bool:
    """Two declarations of one thing: same group, name and device (and for samplers, a model in common)."""
    if (a.group, a.name, a.device) != (b.group, b.name, b.device):
        return False
    return a.group != "sampler" or not a.models or not b.models or bool(set(a.models) & set(b.models))


def _all() -> list[Plugin]:
    global _FOUND
    if _FOUND is None:
        sources = [m for p in PACKAGES for m in _package_modules(p)]
        named = dict.fromkeys(filter(None, (s.strip() for s in os.environ.get(ENV, "").split(","))))
        sources += [(_module_file(m), m) for m in named if m not in {mod for _, mod in sources}]
        found: list[Plugin] = []
        for plugin in [p for path, mod in sources for p in _declarations(path, mod)] + _REGISTERED:
            other = next((p for p in found if _clash(p, plugin)), None)
            if other is not None:
                raise PluginError(f"two {plugin.group} plugins named {plugin.name!r} on {plugin.device}: "
                                  f"{other.module} and {plugin.module}")
            found.append(plugin)
        _FOUND = found
    return _FOUND


def register(plugin: Plugin) -> Plugin:
    """Add a plugin at run time (tests, notebooks); a module-level PLUGINS declaration is the usual way."""
    global _FOUND
    _REGISTERED.append(plugin)
    _FOUND = None
    return plugin


def unregister(plugin: Plugin) -> None:
    global _FOUND
    _REGISTERED.remove(plugin)
    _FOUND = None


def _matching(group: str, device: str, model: str | None) -> list[Plugin]:
    return [p for p in _all() if p.group == group and p.device == device and (model is None or model in p.models)]


def table(group: str, device: str = "cpu", model: str | None = None) -> dict[str, Plugin]:
    """Every plugin of `group` on `device` (samplers: serving `model`), by name, in discovery order (package
    order, then file name)."""
    return {p.name: p for p in _matching(group, device, model)}


def names(group: str, model: str | None = None) -> tuple[str, ...]:
    return tuple(table(group, model=model))


def get(group: str, name: str, device: str = "cpu", model: str | None = None) -> Plugin:
    found = [p for p in _matching(group, device, model) if p.name == name]
    if len(found) == 1:
        return found[0]
    if found:
        raise PluginError(f"{group} {name!r} on {device} is declared for several models "
                          f"({', '.join(m for p in found for m in p.models)}): look it up with model=")
    raise PluginError(f"no {group} plugin named {name!r} on {device}" + (f" for model {model!r}" if model else "")
                      + "; known: " + ", ".join(names(group, model)))
