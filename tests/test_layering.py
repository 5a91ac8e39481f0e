"""Package layering (issue 24 items 1 and 9), read from the source with ``ast`` (every import,
module-level or inside a function):

- ``monodle_plugin/utils`` is the floor, as ``mmdet3d/utils``: it imports no other sub-package
  of monodle_plugin (only ``monodle_kitti``, the torch-free package below everything);
- ``structures`` imports only ``utils``; no sub-package imports ``commands`` (the command
  bodies: only ``tools/`` calls them);
- every sub-package imports only sub-packages of a lower layer (:data:`LAYERS`), hence the
  sub-packages import each other without a cycle;
- ``monodle_kitti`` imports neither monodle_plugin nor torch / the OpenMMLab stack, and each of
  its modules imports in a process where those cannot be imported.

Importing ``monodle_plugin.utils`` at run time always runs ``monodle_plugin/__init__`` first
(which registers everything), so the floor rule is a rule about the source, checked here.
"""
import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'monodle_plugin'
KITTI = ROOT / 'monodle_kitti'
#: The layers, bottom first: a sub-package imports only those of a lower layer.
LAYERS = {
    'utils': 0, 'version': 0,
    'structures': 1, 'deployment': 1,  # the torch-side deployment needs utils only
    'datasets': 2, 'models': 2, 'evaluation': 2,
    'engine': 3,
    'apis': 4, 'visualization': 4,
    'commands': 5,
}
HEAVY = ('torch', 'mmengine', 'mmdet3d', 'mmdet', 'mmcv', 'mmpretrain', 'monodle_plugin')


def _imports(path: Path, package: str) -> list[tuple[str, int]]:
    """Absolute names of every import in ``path`` (``package``: its dotted module name)."""
    parts = package.split('.')
    is_init = path.name == '__init__.py'
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts if is_init else parts[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = '.'.join(base + ([node.module] if node.module else []))
                if node.module:
                    out.append((mod, node.lineno))
                else:
                    out += [(f'{mod}.{a.name}', node.lineno) for a in node.names]
            else:
                out.append((node.module, node.lineno))
    return out


def _modules(folder: Path):
    for path in sorted(folder.rglob('*.py')):
        rel = path.relative_to(ROOT).with_suffix('')
        parts = list(rel.parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        yield path, '.'.join(parts)


def _subpackage_edges() -> dict[str, set[tuple[str, str]]]:
    """{sub-package: {(imported sub-package, 'file:line')}} inside monodle_plugin."""
    edges = defaultdict(set)
    for path, name in _modules(PKG):
        parts = name.split('.')
        if len(parts) < 2:  # monodle_plugin/__init__.py registers everything: the top
            continue
        for target, line in _imports(path, name):
            t = target.split('.')
            if t[0] == 'monodle_plugin' and len(t) > 1 and t[1] != parts[1]:
                edges[parts[1]].add((t[1], f'{path.relative_to(ROOT)}:{line}'))
    return edges


def test_utils_is_the_floor():
    bad = sorted(where for dep, where in _subpackage_edges()['utils'])
    assert not bad, ('monodle_plugin/utils imports another sub-package of monodle_plugin (move '
                     f'the code to its home by role): {bad}')


def test_structures_imports_only_utils_and_nothing_imports_commands():
    edges = _subpackage_edges()
    bad = sorted(where for dep, where in edges['structures'] if dep != 'utils')
    assert not bad, f'monodle_plugin/structures imports a package above it: {bad}'
    users = sorted(where for sub, deps in edges.items() for dep, where in deps
                   if dep == 'commands' and sub != 'commands')
    assert not users, f'only tools/ may import monodle_plugin.commands: {users}'


def test_each_subpackage_imports_only_lower_layers():
    edges = _subpackage_edges()
    unknown = sorted(({*edges} | {d for deps in edges.values() for d, _ in deps}) - {*LAYERS})
    assert not unknown, f'give these sub-packages a layer in tests/test_layering.py: {unknown}'
    bad = sorted(f'{where}: {sub} (layer {LAYERS[sub]}) imports {dep} (layer {LAYERS[dep]})'
                 for sub, deps in edges.items() for dep, where in deps
                 if LAYERS[dep] >= LAYERS[sub])
    assert not bad, bad


def test_no_import_cycle_between_subpackages():
    graph = {sub: {dep for dep, _ in deps} for sub, deps in _subpackage_edges().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail('import cycle between sub-packages: '
                            + ' -> '.join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for sub in sorted(graph):
        if sub not in state:
            visit(sub, [sub])


def test_layering_check_can_fail(tmp_path, monkeypatch):
    """The walker sees relative imports inside functions (what a floor break looks like)."""
    bad = tmp_path / 'monodle_plugin' / 'utils' / 'x.py'
    bad.parent.mkdir(parents=True)
    bad.write_text('def f():\n    from ..models.utils import freezing\n')
    assert _imports(bad, 'monodle_plugin.utils.x') == [('monodle_plugin.models.utils', 2)]


def test_monodle_kitti_is_torch_free():
    bad = [f'{path.relative_to(ROOT)}:{line} imports {target}'
           for path, name in _modules(KITTI) for target, line in _imports(path, name)
           if target.split('.')[0] in HEAVY]
    assert not bad, bad
    names = [name for _, name in _modules(KITTI)]
    code = ('import sys\n'
            f'for m in {HEAVY!r}:\n'
            '    sys.modules[m] = None\n'
            'import importlib\n'
            f'for name in {names!r}:\n'
            '    importlib.import_module(name)\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
