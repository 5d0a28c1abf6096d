"""The task registry: built-in specs, user-written specs, and errors that name the fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from llmsynth_core.data import load_split, split_path
from llmsynth_core.errors import ConfigError
from llmsynth_core.registry import BUILTIN_DIR, load_registry, select_tasks
from llmsynth_core.taskspec import load_task_spec

PAPER_TASKS = {
    "ag_news",
    "imdb",
    "sms_spam",
    "financial_phrasebank",
    "reddit_emotions",
    "relation_classification",
    "tweet_irony",
    "tweet_emotions",
    "sarcasm_headlines",
    "humor_speech",
}
# Registered variants of paper tasks (variant_of), e.g. a coarser label set of the same data.
VARIANTS = {"reddit_emotions_ekman"}

USER_SPEC = """\
id: product_reviews
name: Product review sentiment
description: Classify a product review as positive or negative.
domain: product review
subjectivity: 2
labels:
  - name: positive
    description: The reviewer liked the product.
  - name: negative
    description: The reviewer disliked the product.
data:
  train: {train}
  test: {test}
prompts:
  version: "1"
  styles: [a short customer review, a detailed review]
  lengths: [one sentence, two sentences]
  chat:
    context: You are a shopper who writes honest product reviews.
    generation: Write a {{label}} product review in the style of {{style}}, {{length}} long.
    diversity: Write another {{label}} review, {{length}} long, unlike the earlier ones.
    few_shot: "Real reviews:\\n{{examples}}\\nWrite a new {{label}} review, {{length}} long."
  completion:
    zero_shot: "A {{label}} product review:"
    few_shot: "{{examples}}\\n\\nA {{label}} product review:"
"""


@pytest.fixture(scope="module")
def registry() -> dict[str, Any]:
    return load_registry()


@pytest.fixture(scope="module")
def manifest(datasets_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((datasets_dir / "manifest.json").read_text())
    return manifest


def _builtin_raw(task_id: str = "ag_news") -> dict[str, Any]:
    raw = yaml.safe_load((BUILTIN_DIR / f"{task_id}.yaml").read_text(encoding="utf-8"))
    return copy.deepcopy(raw)


def _write(directory: Path, raw: dict[str, Any], name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name or raw['id']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_the_ten_builtin_tasks_load(registry: dict[str, Any]) -> None:
    assert {t for t, spec in registry.items() if spec.variant_of is None} == PAPER_TASKS
    assert all(registry[task_id].id == task_id for task_id in registry)


def test_registered_variants_reuse_a_paper_task_s_data(registry: dict[str, Any]) -> None:
    variants = {t: spec for t, spec in registry.items() if spec.variant_of is not None}
    assert set(variants) == VARIANTS
    for spec in variants.values():
        base = registry[spec.variant_of]
        assert base.variant_of is None
        assert (spec.data.train, spec.data.test) == (base.data.train, base.data.test)
        assert spec.data.label_column != base.data.label_column


def test_builtin_label_names_match_the_manifest(
    registry: dict[str, Any], manifest: dict[str, Any]
) -> None:
    for task_id, spec in registry.items():
        if spec.variant_of is None:
            assert spec.label_names == manifest["tasks"][task_id]["label_names"], task_id


def test_variant_labels_are_exactly_the_values_of_its_label_column(
    registry: dict[str, Any], datasets_dir: Path
) -> None:
    spec = registry["reddit_emotions_ekman"]
    for split in ("train", "test"):
        column = pd.read_parquet(split_path(spec, datasets_dir, split))[spec.data.label_column]
        assert set(column) == set(spec.label_names), split


def test_builtin_data_files_exist(
    registry: dict[str, Any], datasets_dir: Path, sample_dir: Path
) -> None:
    for spec in registry.values():
        for data_dir in (datasets_dir, sample_dir):
            for split in ("train", "test"):
                path = split_path(spec, data_dir, split)
                assert path.is_file(), f"{spec.id} {split}: {path}"


def test_objective_and_subjective_tasks_are_ranked(registry: dict[str, Any]) -> None:
    # The study's two ends: news topic is the most objective, humor/sarcasm/irony the least.
    assert registry["ag_news"].subjectivity == 1
    for task_id in ("humor_speech", "sarcasm_headlines", "tweet_irony"):
        assert registry[task_id].subjectivity == 5


def test_user_adds_an_eleventh_task_with_one_yaml_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    train_csv, test_csv = data / "reviews_train.csv", data / "reviews_test.csv"
    pd.DataFrame(
        {
            "text": ["Works great, love it.", "Broke after a day.", "Five stars, would buy again."],
            "label": ["positive", "negative", "positive"],
        }
    ).to_csv(train_csv, index=False)
    pd.DataFrame(
        {"text": ["Terrible value.", "Lovely!"], "label": ["negative", "positive"]}
    ).to_csv(test_csv, index=False)
    spec_dir = tmp_path / "my_tasks"
    spec_dir.mkdir()
    (spec_dir / "product_reviews.yaml").write_text(
        USER_SPEC.format(train=json.dumps(str(train_csv)), test=json.dumps(str(test_csv))),
        encoding="utf-8",
    )

    registry = load_registry([spec_dir])

    assert set(registry) == PAPER_TASKS | VARIANTS | {"product_reviews"}
    [spec] = select_tasks(registry, ["product_reviews"])
    assert spec.label_names == ["positive", "negative"]
    # Absolute paths in the spec are used as given, whatever the data directory.
    train = load_split(spec, tmp_path / "elsewhere", "train")
    assert train["text"].tolist() == [
        "Works great, love it.",
        "Broke after a day.",
        "Five stars, would buy again.",
    ]
    assert train["label_id"].tolist() == [0, 1, 0]
    test = load_split(spec, tmp_path / "elsewhere", "test")
    assert test["label_id"].tolist() == [1, 0]


def test_duplicate_id_across_user_dirs_names_both_files(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "my_news"
    first = _write(tmp_path / "a", raw)
    second = _write(tmp_path / "b", raw)
    with pytest.raises(ConfigError) as info:
        load_registry([tmp_path / "a", tmp_path / "b"])
    message = str(info.value)
    assert "'my_news'" in message
    assert str(first) in message and str(second) in message


def test_user_spec_cannot_silently_override_a_builtin(tmp_path: Path) -> None:
    mine = _write(tmp_path, _builtin_raw("ag_news"))
    with pytest.raises(ConfigError) as info:
        load_registry([tmp_path])
    message = str(info.value)
    assert str(BUILTIN_DIR / "ag_news.yaml") in message and str(mine) in message


@pytest.mark.parametrize(
    ("group", "field", "template"),
    [
        ("chat", "generation", "Write a {colour} article about {label}."),
        ("chat", "context", "You write about {style}."),  # style is not a context slot
        ("completion", "zero_shot", "Topic: {label} {colour}\nArticle:"),
    ],
)
def test_unknown_placeholder_names_the_field_path(
    tmp_path: Path, group: str, field: str, template: str
) -> None:
    raw = _builtin_raw()
    raw["id"] = "bad_template"
    raw["prompts"][group][field] = template
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_registry([tmp_path])
    message = str(info.value)
    assert f"prompts.{group}.{field}" in message
    assert str(path) in message
    unknown = "colour" if "colour" in template else "style"
    assert repr(unknown) in message


def test_positional_or_malformed_placeholder_is_caught_at_load_time(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "bad_template"
    raw["prompts"]["chat"]["diversity"] = "Write another {} article."
    _write(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"prompts\.chat\.diversity"):
        load_registry([tmp_path])

    raw["prompts"]["chat"]["diversity"] = "Write another {label article."
    _write(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"prompts\.chat\.diversity is not a valid template"):
        load_registry([tmp_path])


def test_typo_key_says_unknown_key(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "typo_task"
    raw["data"]["trian"] = raw["data"].pop("train")
    _write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_registry([tmp_path])
    message = str(info.value)
    assert "data.trian: unknown key" in message
    assert "data.train: required key is missing" in message


def test_duplicate_labels_name_the_label(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "dupe_labels"
    raw["labels"].append({"name": "Sports", "description": "Again."})
    _write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_registry([tmp_path])
    message = str(info.value)
    assert "labels" in message and "unique" in message
    assert "remove the repeated ['Sports']" in message


def test_a_spec_sets_its_own_max_tokens_within_bounds(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "long_news"
    raw["prompts"]["max_tokens"] = 300
    _write(tmp_path, raw)
    assert load_registry([tmp_path])["long_news"].prompts.max_tokens == 300

    raw["prompts"]["max_tokens"] = 4
    _write(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"prompts\.max_tokens"):
        load_registry([tmp_path])


def test_id_must_match_file_name(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "news_copy"
    path = _write(tmp_path, raw, name="other_name")
    with pytest.raises(ConfigError, match="must match the file name") as info:
        load_task_spec(path)
    assert str(path) in str(info.value)


def test_missing_task_dir_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(ConfigError, match="no_such_dir"):
        load_registry([missing])


def test_select_tasks_keeps_order_and_names_unknown_ids(registry: dict[str, Any]) -> None:
    chosen = select_tasks(registry, ["tweet_irony", "ag_news"])
    assert [spec.id for spec in chosen] == ["tweet_irony", "ag_news"]
    with pytest.raises(ConfigError) as info:
        select_tasks(registry, ["ag_news", "agnews", "tweet_ironyy"])
    message = str(info.value)
    assert "'agnews'" in message and "'tweet_ironyy'" in message
    assert "['agnews', 'tweet_ironyy']" in message


def test_an_edited_spec_file_is_read_again(tmp_path: Path) -> None:
    raw = _builtin_raw()
    raw["id"] = "edited_task"
    path = _write(tmp_path, raw)
    assert load_task_spec(path).name == raw["name"]
    raw["name"] = raw["name"][::-1]  # same length, same directory entry: only the content differs
    _write(tmp_path, raw)
    assert load_task_spec(path).name == raw["name"]
