"""The llama.cpp build chosen at set-up: the widest SIMD the CPU lists, never AMX or native."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "deployments" / "llama_build.py"

# /proc/cpuinfo flag sets: this workplace's AMD EPYC (AVX-512 with VBMI, VNNI and BF16), a
# Haswell-class CPU (AVX2 only), a Sapphire Rapids (AVX-512 and AMX) and an emulated x86-64.
EPYC = (
    "fpu sse sse2 avx avx2 fma f16c avx512f avx512dq avx512cd avx512bw avx512vl avx512vbmi "
    "avx512_vnni avx512_bf16"
)
HASWELL = "fpu sse sse2 avx avx2 fma f16c bmi2"
SAPPHIRE = EPYC + " amx_tile amx_int8 amx_bf16"
QEMU = "fpu sse sse2 sse4_2"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_build", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flags(line: str) -> frozenset[str]:
    return frozenset(line.split())


def test_an_avx512_cpu_gets_avx512_when_asked_and_only_the_extensions_it_lists(
    build: ModuleType,
) -> None:
    name, args = build.chosen("avx512", _flags(EPYC))
    assert name == "avx512"
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX512_BF16=ON"} <= set(args)
    without_bf16 = build.chosen("avx512", _flags(EPYC.replace(" avx512_bf16", "")))[1]
    assert "-DGGML_AVX512=ON" in without_bf16
    assert "-DGGML_AVX512_BF16=ON" not in without_bf16


def test_a_partial_avx512_falls_back_to_the_portable_build(build: ModuleType) -> None:
    # ggml's AVX512 switch compiles for F, CD, VL, DQ and BW together.
    partial = _flags(EPYC.replace(" avx512vl", ""))
    assert build.chosen("avx512", partial) == ("avx2", build.PORTABLE)
    assert build.chosen("avx512", _flags(HASWELL)) == ("avx2", build.PORTABLE)


def test_auto_takes_the_avx2_build_that_measured_faster_and_avx2_is_always_portable(
    build: ModuleType,
) -> None:
    assert build.chosen("auto", _flags(EPYC)) == ("avx2", build.PORTABLE)
    assert build.chosen("auto", _flags(QEMU))[0] == "generic"
    assert build.chosen("avx2", _flags(QEMU)) == ("avx2", build.PORTABLE)
    with pytest.raises(SystemExit, match="auto, avx2 or avx512"):
        build.chosen("native", _flags(EPYC))


def test_no_build_is_native_or_uses_amx(build: ModuleType) -> None:
    for cpu in (EPYC, HASWELL, SAPPHIRE, QEMU):
        args = build.chosen("avx512", _flags(cpu))[1]
        assert "-DGGML_NATIVE=OFF" in args
        assert not [arg for arg in args if "AMX" in arg], cpu


def test_a_cpu_without_avx2_gets_a_build_without_it(build: ModuleType) -> None:
    name, args = build.cmake_args(_flags(QEMU))
    assert name == "generic"
    assert not [arg for arg in args if arg.endswith("=ON")]


def test_flags_are_read_from_the_first_processor(build: ModuleType) -> None:
    cpuinfo = f"processor\t: 0\nflags\t\t: {HASWELL}\n\nprocessor\t: 1\nflags\t\t: {EPYC}\n"
    assert build.cpu_flags(cpuinfo) == _flags(HASWELL)
    assert build.cpu_flags("processor : 0\n") == frozenset()


def test_each_flag_set_has_its_own_wheel_directory(build: ModuleType, tmp_path: Path) -> None:
    # pip's cache is keyed by the sdist alone; a wheel built with other flags must never be
    # found where this build looks.
    spec = "llama-cpp-python[server]==0.3.36"
    avx512 = build.wheel_dir(tmp_path, spec, *build.chosen("avx512", _flags(EPYC)))
    avx2 = build.wheel_dir(tmp_path, spec, *build.chosen("avx512", _flags(HASWELL)))
    assert avx512 != avx2
    assert avx512 == build.wheel_dir(tmp_path, spec, *build.chosen("avx512", _flags(EPYC)))
    other_version = build.wheel_dir(
        tmp_path, spec.replace("0.3.36", "0.3.37"), "avx2", build.PORTABLE
    )
    assert other_version != avx2
