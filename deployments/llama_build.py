"""Build and install llama-cpp-python with the widest SIMD flags this CPU has, never AMX.

Run by `make setup` with the venv's Python; standard library only, since it runs before the
project is installed. Why a script: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS,
so a plain `pip install` could hand back a wheel built with other flags (say AVX-512 on a host
without it, which dies with SIGILL). Wheels are therefore built with pip's cache off into a
directory named by the flags, and installed only from there.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

# Portable x86-64 (the fallback): runs on any CPU since Haswell. GGML_NATIVE stays off because
# -march=native turns on AMX where the CPU has it, and a VM that does not grant AMX state then
# segfaults (seen with llama-cpp-python 0.3.36).
PORTABLE = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
)
# ggml's GGML_AVX512 compiles with -mavx512f/cd/vl/dq/bw, so the CPU must have all five.
AVX512_BASE = frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"})
# Optional extensions, each switched on only where /proc/cpuinfo lists it.
AVX512_EXTRAS = (
    ("avx512vbmi", "-DGGML_AVX512_VBMI=ON"),
    ("avx512_vnni", "-DGGML_AVX512_VNNI=ON"),
    ("avx512_bf16", "-DGGML_AVX512_BF16=ON"),
)
PORTABLE_NEEDS = frozenset({"avx", "avx2", "fma", "f16c"})
# A CPU without AVX2 (old or emulated) gets plain SSE code: slow, but it runs.
GENERIC = tuple(flag.replace("=ON", "=OFF") for flag in PORTABLE)


def cmake_args(cpu_flags: frozenset[str], avx512: bool = False) -> tuple[str, tuple[str, ...]]:
    """The build's name and CMake flags for a CPU with these /proc/cpuinfo flags; AVX-512 only
    when asked for and present. Not by default: on this workplace's AVX-512 EPYC the AVX2 build
    served SmolLM2 faster (0.98 vs 0.87 requests/s, bench/llama_throughput.py, 2026-12-02)."""
    if not cpu_flags >= PORTABLE_NEEDS:
        return "generic", GENERIC
    if not avx512 or not cpu_flags >= AVX512_BASE:
        return "avx2", PORTABLE
    extras = tuple(flag for name, flag in AVX512_EXTRAS if name in cpu_flags)
    return "avx512", (*PORTABLE, "-DGGML_AVX512=ON", *extras)


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first processor listed in a /proc/cpuinfo text (empty if none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def wheel_dir(root: Path, spec: str, name: str, args: tuple[str, ...]) -> Path:
    """Where the wheel built from `spec` with `args` lives; another flag set gets another dir."""
    digest = hashlib.sha256("\n".join((spec, *args)).encode()).hexdigest()[:12]
    return root / f"{name}-{digest}"


def build_wheel(spec: str, build: str, root: Path) -> tuple[str, tuple[str, ...], Path]:
    """The build's name, flags and wheel directory; the wheel is built once per flag set, with
    pip's cache off."""
    name, args = chosen(build, cpu_flags(Path("/proc/cpuinfo").read_text()))
    target = wheel_dir(root, spec, name, args)
    if not list(target.glob("*.whl")):
        target.mkdir(parents=True, exist_ok=True)
        print(f"llama.cpp: building the {name} wheel ({' '.join(args)}); about 8 minutes once")
        bare = re.sub(r"\[[^]]*\]", "", spec)  # the wheel is the package; extras come at install
        _pip(
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "--no-binary",
            "llama-cpp-python",
            "-w",
            str(target),
            bare,
            env={**os.environ, "CMAKE_ARGS": " ".join(args)},
        )
    return name, args, target


def build_and_install(spec: str, build: str, root: Path) -> Path:
    """Build the wheel if needed, then install exactly that wheel (and the extras' deps)."""
    name, args, target = build_wheel(spec, build, root)
    print(f"llama.cpp: installing the {name} build from {target}")
    only_this = ("--find-links", str(target), "--only-binary", "llama-cpp-python")
    _pip("install", *only_this, "--force-reinstall", "--no-deps", *map(str, target.glob("*.whl")))
    _pip("install", *only_this, spec)
    (root / "installed").write_text(f"{name} {' '.join(args)}\n")
    return target


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", args[0], "--quiet", *args[1:]], check=True, env=env
    )


def chosen(build: str, flags: frozenset[str]) -> tuple[str, tuple[str, ...]]:
    """LLAMA_BUILD's meaning on a CPU with `flags`: auto probes (AVX2 where present), avx512
    also probes (AVX-512 only where present: never a flag the CPU lacks), avx2 is the portable
    build whatever this CPU has (for an image that runs on other hosts)."""
    if build == "auto":
        return cmake_args(flags)
    if build == "avx512":
        return cmake_args(flags, avx512=True)
    if build == "avx2":
        return "avx2", PORTABLE
    raise SystemExit(f"LLAMA_BUILD={build!r} is not a build; use auto, avx2 or avx512")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="llama-cpp-python[server]==0.3.36")
    parser.add_argument("--build", default="auto", help="auto (probe the CPU), avx2 or avx512")
    parser.add_argument(
        "--wheels", type=Path, default=Path.home() / ".cache" / "llmsynth" / "llama-wheels"
    )
    parser.add_argument(
        "--print", action="store_true", help="print the build this CPU gets; build nothing"
    )
    parser.add_argument(
        "--wheel-only",
        action="store_true",
        help="build the wheel, print its directory, install nothing",
    )
    opts = parser.parse_args()
    if opts.print:
        name, args = cmake_args(cpu_flags(Path("/proc/cpuinfo").read_text()))
        print(name, " ".join(args))
        return
    if opts.wheel_only:
        print(build_wheel(opts.spec, opts.build, opts.wheels)[2])
        return
    build_and_install(opts.spec, opts.build, opts.wheels)


if __name__ == "__main__":
    main()
