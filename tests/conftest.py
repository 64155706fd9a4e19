import pytest
import torch


@pytest.fixture
def bench_threads():
    """Benchmarks run with 2 torch threads (the project's machines have 2 cores)."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
