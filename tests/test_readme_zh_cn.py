"""README.zh-CN.md is the README in Chinese, kept in step: the same code blocks (commands,
configs, the component example), the same config and tool paths, the same sections."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / 'README.md'
ZH = ROOT / 'README.zh-CN.md'
FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
CONFIG = re.compile(r'configs/[\w./{},\[\]*-]*?\.py')
TOOL = re.compile(r'tools/[\w/.-]+?\.(?:py|sh)\b')


@pytest.fixture(scope='module')
def texts():
    if not ZH.is_file():
        pytest.fail(f'{ZH} is missing: the Chinese README must exist next to {EN.name}')
    return EN.read_text(encoding='utf-8'), ZH.read_text(encoding='utf-8')


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub('', text)


def test_same_code_blocks(texts):
    """Every command, config snippet and listing appears in both, in the same order."""
    en, zh = (FENCE.findall(t) for t in texts)
    assert len(en) == len(zh), f'{len(en)} code blocks in README.md, {len(zh)} in README.zh-CN.md'
    for i, (a, b) in enumerate(zip(en, zh)):
        assert a == b, f'code block {i + 1} differs:\n--- README.md\n{a}\n--- README.zh-CN.md\n{b}'


@pytest.mark.parametrize('pattern', [CONFIG, TOOL], ids=['config paths', 'tool paths'])
def test_same_paths_in_the_prose(texts, pattern):
    en, zh = (set(pattern.findall(prose(t))) for t in texts)
    assert en == zh, (f'only in README.md: {sorted(en - zh)}; '
                      f'only in README.zh-CN.md: {sorted(zh - en)}')


def test_same_sections_and_links(texts):
    en, zh = texts
    count = [len(re.findall(r'^##+ ', prose(t), re.M)) for t in texts]
    assert count[0] == count[1], f'sections: README.md {count[0]}, README.zh-CN.md {count[1]}'
    assert 'README.zh-CN.md' in en and 'README.md' in zh


def test_paths_named_in_the_readmes_exist(texts):
    """A config path in the READMEs (without placeholders) is a file of the repository."""
    missing = sorted(p for p in CONFIG.findall(texts[0])
                     if not re.search(r'[{}\[\]*]', p) and not (ROOT / p).is_file()
                     and not p.startswith('configs/my_'))
    assert not missing, f'README names configs that do not exist: {missing}'
