"""The machine facts that benchmark reports carry."""

from pathlib import Path

import pytest

from espnet_distill.utils import machine


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs /proc/cpuinfo")
def test_the_cpu_and_its_flags_come_from_proc_cpuinfo():
    text = Path("/proc/cpuinfo").read_text()
    first = text.split("\n\n")[0]
    flags = next(line for line in first.splitlines() if line.startswith("flags")).split(":", 1)[1].split()
    model = next(line for line in first.splitlines() if line.startswith("model name")).split(":", 1)[1].strip()
    facts = machine.machine_description()
    assert facts["cpu"] == model
    assert facts["cpu_flags"] == [f for f in machine.SPEED_FLAGS if f in flags]
    line = machine.machine_line(facts)
    assert line.startswith(model) and f"{facts['cores']} cores" in line


def test_a_machine_without_proc_cpuinfo_still_gets_a_line(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: {})
    facts = machine.machine_description()
    assert facts["cpu_flags"] == [] and facts["cpu"]
    assert "(no AVX2)" in machine.machine_line(facts)
