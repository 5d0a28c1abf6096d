"""Errors that tell the user which field is wrong and how to fix it."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class LlmsynthError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(LlmsynthError):
    """A config or task-spec file is invalid."""

    @classmethod
    def from_validation(cls, exc: ValidationError, source: str) -> ConfigError:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                lines.append(f"  {where}: unknown key; remove it or fix its spelling")
            elif err["type"] == "missing":
                lines.append(f"  {where}: required key is missing; add it")
            else:
                lines.append(f"  {where}: {err['msg']} (got {err.get('input')!r})")
        return cls(f"{source} is invalid:\n" + "\n".join(lines))


def validated(model: type[M], raw: object, source: str) -> M:
    """`raw` validated as `model`; a ConfigError naming the file and each bad field otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, source) from None


class DataError(LlmsynthError):
    """Real data is missing or malformed."""


class GenerationError(LlmsynthError):
    """The LLM endpoint cannot be used (bad key, unknown model, unreachable)."""


class BudgetExceeded(LlmsynthError):
    """The next request would take the run past its cost cap; nothing paid for is lost."""
