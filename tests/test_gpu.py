"""CUDA behaviour of the reference implementation (skipped without a GPU; run on the device machine)."""
import pytest
import torch

import snn_ssm
from snn_ssm import SSMDendriteLIF, SpikingSSM

pytestmark = pytest.mark.gpu


def test_neuron_on_cuda_matches_cpu():
    x = torch.randn(500, 4, 32)
    cpu = SSMDendriteLIF(32)
    gpu = SSMDendriteLIF(32).cuda()
    gpu.load_state_dict(cpu.state_dict())
    s_cpu, s_gpu = cpu(x), gpu(x.cuda())
    # Different FFT and reduction orders round differently: bound the flips at threshold (1 in 10^4 neuron-steps).
    assert int((s_cpu != s_gpu.cpu()).sum()) <= x.numel() // 10_000
    assert gpu.state.v.is_cuda and gpu.state.h.is_cuda


def test_state_follows_device_moves():
    n = SSMDendriteLIF(8)
    n(torch.randn(20, 2, 8))
    n.cuda()
    assert n.state.v.is_cuda and n.state.h.is_cuda and n.ln_vth.is_cuda
    n(torch.randn(5, 2, 8, device="cuda"))
    n.cpu()
    assert n.state.v.device.type == "cpu"
    lazy = SSMDendriteLIF().cuda()  # lazily built parameters land on the module's device
    lazy(torch.randn(5, 2, 3, device="cuda"))
    assert lazy.dendrite.C.is_cuda


def test_device_mismatch_is_a_clear_error():
    n = SSMDendriteLIF(4).cuda()
    with pytest.raises(ValueError, match="cpu.*cuda|move"):
        n(torch.randn(5, 2, 4))
    model = SpikingSSM(1, 10, d_model=8, n_layers=1).cuda()
    with pytest.raises(ValueError, match="move"):
        model(torch.randn(5, 2, 1))


def test_backbone_trains_on_cuda():
    model = SpikingSSM(1, 10, d_model=32, n_layers=2, device="cuda")
    opt = torch.optim.AdamW(snn_ssm.param_groups(model, 1e-2, 1e-2))
    loss = torch.nn.functional.cross_entropy(model(torch.rand(784, 16, 1, device="cuda")),
                                             torch.randint(0, 10, (16,), device="cuda"))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


def test_adapters_on_cuda():
    pytest.importorskip("spikingjelly.activation_based")
    pytest.importorskip("snntorch")
    from snntorch import utils
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model import parametric_lif_net

    from snn_ssm import snntorch as st, spikingjelly as sjn

    net = parametric_lif_net.MNISTNet(channels=8, spiking_neuron=sjn.SSMDendriteLIF, step_mode="m", d_state=4)
    functional.set_step_mode(net, "m")
    net = net.cuda()
    net(torch.rand(2, 2, 1, 28, 28, device="cuda")).sum().backward()
    functional.reset_net(net)
    n = st.SSMDendriteLIF(4, init_hidden=True).cuda()
    n(torch.rand(2, 4, device="cuda"))
    utils.reset(torch.nn.Sequential(n))
    assert n.mem.device.type == "cuda"


@pytest.mark.parametrize("variant", ["paper", "scan"])
def test_sdn_mode_on_cuda_matches_cpu(variant):
    from snn_ssm import LIF

    x = torch.randn(1000, 8, 16) * 1.2 + 0.2
    cpu = LIF(16, reset_mode="sdn", sdn_variant=variant)
    gpu = LIF(16, reset_mode="sdn", sdn_variant=variant).cuda()
    xg = x.cuda().requires_grad_()
    s_gpu = gpu(xg)
    s_gpu.sum().backward()
    # cuDNN and the CPU convolution sum in different orders: bound the flips at threshold (1 in 10^4 steps).
    assert int((cpu(x) != s_gpu.cpu()).sum()) <= x.numel() // 10_000
    assert xg.grad.is_cuda and gpu.ln_vth.grad.is_cuda


def test_pssm_and_binary_models_on_cuda():
    from snn_ssm import BinaryS4DGSUNet, PSpikeSSM

    x = torch.rand(200, 4, 1)
    cpu = PSpikeSSM(1, 10, d_model=16, n_layers=2, d_state=16, block_bidirectional=True).eval()
    for s in cpu.samplers():
        s.eval_mode = "expectation"  # deterministic, so CPU and GPU can be compared
    gpu = PSpikeSSM(1, 10, d_model=16, n_layers=2, d_state=16, block_bidirectional=True).cuda().eval()
    gpu.load_state_dict(cpu.state_dict())
    for s in gpu.samplers():
        s.eval_mode = "expectation"
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-4, atol=1e-4)
    seeded = PSpikeSSM(1, 10, d_model=16, n_layers=1, d_state=16, seed=0).cuda()
    a = seeded(x.cuda())
    seeded.manual_seed(0)
    assert torch.equal(seeded(x.cuda()), a)  # a CUDA generator per sampler, reproducible
    a.sum().backward()
    net = BinaryS4DGSUNet(1, 10, d_model=16, n_layers=2, d_state=16).cuda()
    net(x.cuda()).sum().backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("arg", ["v0", "beta", "v_th", "beta_0d"])
def test_host_tensors_never_reach_a_cuda_kernel(arg):
    """A CPU v0/beta/v_th with a CUDA input is a ValueError naming the argument (it used to hand host pointers to
    the CuPy kernel and corrupt the CUDA context); the process stays usable afterwards."""
    from snn_ssm.ops import lif_scan

    y = torch.randn(16, 2, 8, device="cuda")
    kw = {"v0": dict(v0=torch.zeros(2, 8)), "beta": dict(beta=torch.full((8,), 0.5)),
          "v_th": dict(v_th=torch.ones(8)), "beta_0d": dict(beta=torch.tensor(0.5))}[arg]
    args = {**dict(v0=None, beta=0.5, v_th=1.0), **kw}
    for backend in ("cupy", "triton", "auto"):
        with pytest.raises(ValueError, match=arg.split("_0d")[0] + " is on cpu"):
            lif_scan(y, args["v0"], args["beta"], args["v_th"], backend=backend)
    assert float((torch.ones(3, device="cuda") * 2).sum()) == 6.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["SpikingSSM", "S4D", "PSpikeSSM", "BinaryS4DGSUNet"])
def test_cuda_autocast_trains_at_the_smnist_length(name, dtype):
    """T = 784 (sMNIST): cuFFT has no bfloat16 and takes float16 only at powers of two; the FFT runs in float32
    inside, so autocast works at the paper's length. float16 trains with a GradScaler."""
    kw = dict(seed=0) if name == "PSpikeSSM" else {}
    model = getattr(snn_ssm, name)(1, 10, d_model=32, n_layers=2, d_state=16, **kw).cuda()
    opt = torch.optim.AdamW(snn_ssm.param_groups(model, 1e-3, 0.0))
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    x, y = torch.rand(784, 4, 1, device="cuda"), torch.randint(0, 10, (4,), device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.isfinite(loss) and all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "tf32"])
def test_cli_trains_in_every_precision_on_cuda(tmp_path, precision):
    from snn_ssm.training.cli import train_main

    tiny = ["--set", "model.d_model=16", "model.n_layers=1", "model.d_state=8", "train.epochs=1", "train.batch=16",
            "--limit-train", "64", "--limit-eval", "32", "--quiet", "--no-plots", "--device", "cuda"]
    report = train_main([*tiny, "--precision", precision, "--out", str(tmp_path / precision)])
    ckpt = torch.load(tmp_path / precision / "last.pt", weights_only=False)
    assert report["steps"] == 4 and ckpt["config"]["train"]["precision"] == precision
    if precision == "16-mixed":
        assert ckpt["scaler"]["scale"] > 0  # the GradScaler's state is part of the checkpoint
