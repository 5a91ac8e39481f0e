"""Every repository path, `make` target and module that README.md, README.zh-CN.md and
docs/**/*.md name exists, every relative link resolves, and `.ci/run` runs exactly the README's
test command. Paths a user creates (work dirs, checkpoints, the KITTI download) are allowed by
rule (``USER_PATHS``); paths of other projects named for comparison by name (``FOREIGN``)."""
import glob
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / 'README.md', ROOT / 'README.zh-CN.md'] + sorted((ROOT / 'docs').rglob('*.md'))
#: a path of this repository: a top-level folder, then anything up to the end of the token
REPO_PATH = re.compile(
    r'(?<![\w./:-])((?:tools|configs|docs|demo|monodle_plugin|monodle_kitti|requirements|tests|'
    r'data|\.ci)/[\w./{},\[\]*<>-]*[\w/}\]*>])')
#: outputs and inputs the user makes: need not exist in the repository
USER_PATHS = ('data/KITTI/training', 'data/KITTI/testing', 'data/KITTI/DA3_depth_results',
              'monodle_plugin/.mim')  # .mim: written by the wheel build
#: other projects' paths, named for comparison (MonoDLE's own tools)
FOREIGN = {'tools/loc_error_by_shifting.py', 'tools/get_data_distribution.py'}
#: a bare script or module file in code (`check_kitti_layout.py`, `datasets/kitti_io.py`)
BARE = re.compile(r'(?<![\w./:<-])([\w*{},\[\]-]+(?:/[\w*{},\[\]-]+)*\.(?:py|sh))\b')
#: not files: shorthand of the layout listing, the user's own project in the example
NOT_FILES = ('dist_*/slurm_*.sh', 'my_project/', 'my_')
MODULE = re.compile(r'(?<![\w.])(monodle_(?:plugin|kitti)(?:\.[A-Za-z]\w*)+)')
FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
INLINE = re.compile(r'`([^`\n]+)`')
MAKE = re.compile(r'(?:^|[\s;&|(])make[ \t]+(?:[A-Z_]+=\S*[ \t]+)*([a-z][\w-]*)', re.M)
LINK = re.compile(r'\]\(([^)\s]+)\)')


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def text(path: Path) -> str:
    return path.read_text(encoding='utf-8')


def code(doc: str) -> str:
    """The fenced blocks and inline code spans of a markdown text."""
    return '\n'.join(FENCE.findall(doc) + INLINE.findall(FENCE.sub('', doc)))


def expand(path: str) -> list:
    """`a{b,c}[_d]` -> ab, ac, ab_d, ac_d: the brace alternatives and optional [parts]."""
    parts = re.split(r'(\{[^{}]*\}|\[[^\[\]]*\])', path)
    options = [p[1:-1].split(',') if p.startswith('{') else
               ['', p[1:-1]] if p.startswith('[') else [p] for p in parts]
    return [''.join(c) for c in itertools.product(*options)]


def missing_path(path: str):
    """None if `path` (with placeholders) names something of the repository, else why not."""
    while path.count(']') > path.count('[') or path.count('}') > path.count('{'):
        path = path[:-1]  # the end of a markdown link text or of a set, not of the path
    path = path.rstrip('/')
    if path in FOREIGN or path.startswith(USER_PATHS):
        return None
    parts = path.split('/')
    cut = next((i for i, p in enumerate(parts) if '<' in p or '...' in p or p == '..'), None)
    if cut is not None:  # a placeholder: what comes before it must exist
        path = '/'.join(parts[:cut])
        if not path:
            return None
    for name in expand(path):
        if not glob.glob(str(ROOT / name)):
            return f'{name} does not exist'
    return None


def module_problem(dotted: str):
    """None if `monodle_plugin.x.y[.attr]` is a module (and attr a name in it), else why not."""
    parts, here = dotted.split('.'), ROOT
    for i, name in enumerate(parts):
        if (here / name / '__init__.py').is_file():
            here = here / name
            continue
        if (here / f'{name}.py').is_file():
            here = here / f'{name}.py'
            if i + 1 < len(parts) and not re.search(rf'\b{parts[i + 1]}\b', text(here)):
                return f'{parts[i + 1]} is not in {rel(here)}'
            return None
        if i == 0 or here.is_file():
            return f'{name} is not a module'
        init = here / '__init__.py'
        return None if re.search(rf'\b{name}\b', text(init)) else f'{name} is not in {rel(init)}'
    return None


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_named_paths_exist(doc):
    problems = {p: missing_path(p) for p in REPO_PATH.findall(text(doc))}
    problems = sorted(f'{p}: {why}' for p, why in problems.items() if why)
    assert not problems, f'{rel(doc)} names paths that are not in the repository: {problems}'


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_named_files_exist(doc):
    """A file named without its folder (`oracle_analysis.py`, `dist_test.sh`,
    `datasets/kitti_io.py`) is a file somewhere in the repository."""
    named = {p for p in BARE.findall(code(text(doc))) if not REPO_PATH.fullmatch(p)
             and not p.startswith(NOT_FILES) and not p.startswith('_')}  # '_': a [_x] fragment
    missing = sorted(p for p in named if not all(
        glob.glob(str(ROOT / '**' / n), recursive=True) for n in expand(p)))
    assert not missing, f'{rel(doc)} names files that are not in the repository: {missing}'


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_named_modules_exist(doc):
    problems = {m: module_problem(m) for m in MODULE.findall(text(doc))}
    problems = sorted(f'{m}: {why}' for m, why in problems.items() if why)
    assert not problems, f'{rel(doc)} names modules that do not exist: {problems}'


def make_targets() -> set:
    return set(re.findall(r'^([\w-]+):', text(ROOT / 'Makefile'), re.M))


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_make_commands_are_makefile_targets(doc):
    named = set(MAKE.findall(code(text(doc))))
    assert named <= make_targets(), (f'{rel(doc)} names make targets the Makefile lacks: '
                                     f'{sorted(named - make_targets())}')


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_relative_links_resolve(doc):
    links = [t.split('#')[0] for t in LINK.findall(FENCE.sub('', text(doc)))
             if not re.match(r'[a-z]+:', t) and not t.startswith('#')]
    broken = sorted(t for t in links if t and not (doc.parent / t).exists())
    assert not broken, f'{rel(doc)} links files that do not exist: {broken}'


#: `python tools/x.py ... --flag`, `tools/x.py --flag` (up to the end of the command or a comment)
TOOL_COMMAND = re.compile(r'(tools/[\w/]+\.py)((?:[^\n`#]|\\\n)*)')
FLAG = re.compile(r'(?<![\w-])(--[a-zA-Z][\w-]*)')


def code_sources() -> str:
    """The text of every script and module (argument parsers may live in the package)."""
    return '\n'.join(p.read_text(encoding='utf-8', errors='replace')
                     for folder in ('tools', 'monodle_plugin', 'monodle_kitti')
                     for p in sorted((ROOT / folder).rglob('*')) if p.suffix in ('.py', '.sh'))


@pytest.fixture(scope='module')
def sources():
    return code_sources()


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_flags_named_with_a_tool_exist(doc, sources):
    """A `--flag` written after a tool's path is an option some parser of the code defines
    (a static check: the quoted flag appears in the sources; running every --help would
    import torch once per tool)."""
    unknown = sorted({(tool, flag) for tool, rest in TOOL_COMMAND.findall(code(text(doc)))
                      for flag in FLAG.findall(rest)
                      if f"'{flag}'" not in sources and f'"{flag}"' not in sources})
    assert not unknown, f'{rel(doc)} names options no parser defines: {unknown}'


def test_the_extractors_see_what_the_docs_name():
    """The checks above can fail: they find the README's paths, targets and modules, and a
    misspelt path, target or module is reported."""
    readme = text(ROOT / 'README.md')
    assert {'tools/train.py', 'configs/monodle/monodle_dla34_kitti.py',
            'docs/en/installation.md'} <= set(REPO_PATH.findall(readme))
    assert {'demo', 'test'} <= set(MAKE.findall(code(readme)))
    assert missing_path('tools/trian.py') and missing_path('configs/yolo_scales/'
                                                           'monodle_yolov8{s,q}_kitti.py')
    assert missing_path('configs/yolo_scales/monodle_{yolov8,yolo11,yolo26}{s,m,l,x}'
                        '[_da3]_kitti.py') is None
    assert 'work_dirs/demo' not in REPO_PATH.findall('`work_dirs/demo/`')
    assert module_problem('monodle_plugin.apis.build_detector') is None
    assert module_problem('monodle_plugin.apis.no_such_name')
    assert module_problem('monodle_plugin.no_such_module.x')
    assert BARE.findall('`dist_test.sh` and `oracle_analysis.py`') == ['dist_test.sh',
                                                                        'oracle_analysis.py']
    assert TOOL_COMMAND.findall('python tools/test.py CFG CKPT --show-dir vis  # PNGs') == [
        ('tools/test.py', ' CFG CKPT --show-dir vis  ')]
    assert "'--show-dir'" in code_sources() and "'--show-dri'" not in code_sources()
    assert 'lint' in make_targets() and 'nope' not in make_targets()


def test_ci_runs_the_readme_test_command():
    """`.ci/run` runs exactly the README's test command, the second of its two set-up commands."""
    quick = text(ROOT / 'README.md').split('## Quick start', 1)[1]
    commands = FENCE.findall(quick)[0].split()
    assert commands == ['make', 'demo', 'make', 'test'], commands
    lines = [ln.strip() for ln in text(ROOT / '.ci' / 'run').splitlines()]
    run = [ln for ln in lines if ln and not ln.startswith('#') and
           not ln.startswith(('set ', 'cd '))]
    assert run == ['make test'], run
