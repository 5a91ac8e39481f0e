"""README.zh-CN.md is the README in Chinese and docs/zh_cn/ holds the user guides of docs/en/ in
Chinese, kept in step: each pair has the same code blocks (commands, configs, the component
example), the same config and tool paths, the same sections."""
import re
from pathlib import Path

import pytest
from test_docs_paths import REPO_PATH

ROOT = Path(__file__).resolve().parents[1]
EN_DOCS, ZH_DOCS = ROOT / 'docs' / 'en', ROOT / 'docs' / 'zh_cn'
PAIRS = [(ROOT / 'README.md', ROOT / 'README.zh-CN.md')] + [
    (p, ZH_DOCS / p.name) for p in sorted(EN_DOCS.glob('*.md'))]
FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
CONFIG = re.compile(r'configs/[\w./{},\[\]*-]*?\.py')
TOOL = re.compile(r'tools/[\w/.-]+?\.(?:py|sh)\b')
README_NAMES = {'README.md', 'README.zh-CN.md'}  # each names the other
INLINE = re.compile(r'`([^`]+)`')
LINK = re.compile(r'\]\(([^)#\s]+\.md)(?:#[^)]*)?\)')


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(params=PAIRS, ids=[rel(en) for en, _ in PAIRS])
def texts(request):
    en, zh = request.param
    if not zh.is_file():
        pytest.fail(f'{rel(zh)} is missing: the Chinese version of {rel(en)} must exist')
    return en.read_text(encoding='utf-8'), zh.read_text(encoding='utf-8'), rel(en), rel(zh)


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub('', text)


def test_every_chinese_guide_has_an_english_one():
    """docs/zh_cn/ holds the guides of docs/en/ and no others."""
    en = {p.name for p in EN_DOCS.glob('*.md')}
    zh = {p.name for p in ZH_DOCS.glob('*.md')}
    assert en and en == zh, (f'only in docs/en: {sorted(en - zh)}; '
                             f'only in docs/zh_cn: {sorted(zh - en)}')


def test_same_code_blocks(texts):
    """Every command, config snippet and listing appears in both, in the same order."""
    en_text, zh_text, en_name, zh_name = texts
    en, zh = FENCE.findall(en_text), FENCE.findall(zh_text)
    assert len(en) == len(zh), f'{len(en)} code blocks in {en_name}, {len(zh)} in {zh_name}'
    for i, (a, b) in enumerate(zip(en, zh)):
        assert a == b, f'code block {i + 1} differs:\n--- {en_name}\n{a}\n--- {zh_name}\n{b}'


@pytest.mark.parametrize('pattern', [CONFIG, TOOL, REPO_PATH, LINK],
                         ids=['config paths', 'tool paths', 'repository paths', 'linked guides'])
def test_same_paths_in_the_prose(texts, pattern):
    en_text, zh_text, en_name, zh_name = texts
    en, zh = (set(pattern.findall(prose(t))) for t in (en_text, zh_text))
    if pattern in (LINK, REPO_PATH):  # README.md: docs/en/X.md, README.zh-CN.md: docs/zh_cn/X.md
        zh = {p.replace('docs/zh_cn/', 'docs/en/') for p in zh}
        bar = ('README', '../en/', '../zh_cn/', '../../')  # each links the other language
        en, zh = ({p for p in s if not p.startswith(bar)} for s in (en, zh))
    assert en == zh, (f'only in {en_name}: {sorted(en - zh)}; '
                      f'only in {zh_name}: {sorted(zh - en)}')


def test_same_inline_code(texts):
    """The prose of both names the same options, keys, values and commands in `code`: a sentence
    added to one language only shows up here (spaces inside the spans are ignored)."""
    en_text, zh_text, en_name, zh_name = texts
    en, zh = ({re.sub(r'\s+', '', s) for s in INLINE.findall(prose(t))} - README_NAMES
              for t in (en_text, zh_text))
    assert en == zh, (f'inline code only in {en_name}: {sorted(en - zh)}; '
                      f'only in {zh_name}: {sorted(zh - en)}')


def test_same_sections_and_links(texts):
    en, zh, en_name, zh_name = texts
    count = [len(re.findall(r'^##+ ', prose(t), re.M)) for t in (en, zh)]
    assert count[0] == count[1], f'sections: {en_name} {count[0]}, {zh_name} {count[1]}'
    if en_name == 'README.md':
        assert 'README.zh-CN.md' in en and 'README.md' in zh


def test_the_readme_links_every_guide():
    """Each guide of docs/en/ is linked from README.md, each of docs/zh_cn/ from README.zh-CN.md."""
    for readme, folder in (('README.md', EN_DOCS), ('README.zh-CN.md', ZH_DOCS)):
        links = set(LINK.findall((ROOT / readme).read_text(encoding='utf-8')))
        missing = sorted(rel(p) for p in folder.glob('*.md') if rel(p) not in links)
        assert not missing, f'{readme} does not link {missing}'
