"""Every ``torch.empty``/``empty_like`` buffer made during an op test starts as NaN (or the dtype's maximum for
integers), so a kernel that leaves an output or gradient element unwritten fails the comparison instead of passing on
whatever the allocator returned (flash-linear-attention's trick)."""
import pytest
import torch

_empty, _empty_like = torch.empty, torch.empty_like


def _poison(t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point() or t.is_complex():
        return t.fill_(float("nan"))
    if t.dtype != torch.bool and t.numel():
        t.fill_(torch.iinfo(t.dtype).max)
    return t


@pytest.fixture(autouse=True)
def nan_poisoned_empty(monkeypatch):
    monkeypatch.setattr(torch, "empty", lambda *a, **k: _poison(_empty(*a, **k)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **k: _poison(_empty_like(*a, **k)))
