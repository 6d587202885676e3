"""CUDA behaviour of the reference implementation (skipped without a GPU; run on the device machine)."""
import pytest
import torch

import snn_ssm
from snn_ssm import SpikingS4D, SSMDendriteLIF, SpikingSSM

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


def test_the_loops_listops_forward_from_a_cpu_batch_never_waits_for_the_gpu(tmp_path):
    """The CLI's forward on a ListOps batch as collated on the CPU (tokens, labels, lengths): the batch is checked on
    the CPU and goes over through pinned memory, the lengths are checked on the CPU, and nothing from the transfer
    to the loss makes the host wait for the GPU (``set_sync_debug_mode("error")`` raises at a synchronising call)."""
    from snn_ssm.data.listops import VOCAB, ListOps
    from snn_ssm.training.loop import _forward

    ds = ListOps("train", tmp_path, sizes=(8, 2, 2), min_length=20, max_length=120)
    batch = ListOps.collate([ds[i] for i in range(4)])
    torch.manual_seed(0)
    model = SpikingSSM(len(VOCAB), 10, d_model=32, n_layers=2, encoder="embedding", bidirectional=True).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):  # the first step compiles kernels and makes the optimizer state
        out, y = _forward(model, batch, "cuda")
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, y = _forward(model, batch, "cuda")
        loss = torch.nn.functional.cross_entropy(out, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    loss.backward()  # (PyTorch's own backward and optimizer are not what this test is about)
    opt.step()
    assert torch.isfinite(loss) and out.shape == (4, 10) and y.device.type == "cuda"


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


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "tf32", None])
def test_cli_trains_in_every_precision_on_cuda(tmp_path, precision):
    """Each precision trains and is stored in the run; without --precision, CUDA runs take bf16-mixed."""
    from snn_ssm.training.cli import train_main

    tiny = ["--set", "model.d_model=16", "model.n_layers=1", "model.d_state=8", "train.epochs=1", "train.batch=16",
            "--limit-train", "64", "--limit-eval", "32", "--quiet", "--no-plots", "--device", "cuda"]
    out = tmp_path / str(precision)
    report = train_main([*tiny, *(["--precision", precision] if precision else []), "--out", str(out)])
    ckpt = torch.load(out / "last.pt", weights_only=False)
    assert report["steps"] == 4 and ckpt["config"]["train"]["precision"] == (precision or "bf16-mixed")
    if precision == "16-mixed":
        assert ckpt["scaler"]["scale"] > 0  # the GradScaler's state is part of the checkpoint


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_cuda_kernel_custom_op_passes_opcheck(backend):
    pytest.importorskip(backend)
    from snn_ssm.ops.lif_scan import _scan_op
    torch.manual_seed(0)
    T, N = 70, 33
    y = (torch.rand(T, N, device="cuda") * 1.5).requires_grad_()
    x, d = torch.rand(T, N, device="cuda").requires_grad_(), torch.rand(N, device="cuda").requires_grad_()
    beta = torch.full((N,), 0.5, device="cuda", requires_grad=True)
    k = torch.full((N,), 1.25, device="cuda", requires_grad=True)
    v0 = torch.zeros(N, device="cuda", requires_grad=True)
    torch.library.opcheck(_scan_op, (y, v0, beta, k, x, d, backend, 0.0, 0, False, False, 0, 1.0))


@pytest.mark.parametrize("name", ["SpikingSSM", "S4D", "BinaryS4DGSUNet"])
def test_inductor_fullgraph_on_cuda_equals_eager(name):
    """torch.compile with Inductor and fullgraph=True (no graph break): the CuPy kernel is one custom-op node."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = getattr(snn_ssm, name)(1, 10, d_model=32, n_layers=2, d_state=16).cuda().eval()
    x = torch.rand(200, 4, 1, device="cuda")
    out_e = model(x)
    out_e.square().sum().backward()
    grads_e = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    out_c = torch.compile(model, fullgraph=True)(x)
    out_c.square().sum().backward()
    grads_c = [p.grad for p in model.parameters() if p.grad is not None]
    torch.testing.assert_close(out_c, out_e, rtol=1e-4, atol=1e-4)
    for g_c, g_e in zip(grads_c, grads_e):
        torch.testing.assert_close(g_c, g_e, rtol=1e-3, atol=1e-4)


def test_whole_training_step_is_captured_in_a_cuda_graph():
    """Forward, backward and AdamW step of SpikingSSM recorded once as a CUDA graph and replayed: nothing in the
    step synchronises with the host, and the replays give the eager steps' losses and weights."""
    def build():
        torch.manual_seed(0)
        model = SpikingSSM(1, 10, d_model=32, n_layers=2, d_state=16).cuda()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, capturable=True)
        return model, opt

    x, y = torch.rand(300, 8, 1, device="cuda"), torch.randint(0, 10, (8,), device="cuda")

    def step(model, opt):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    eager, eager_opt = build()
    eager_losses = []
    for _ in range(6):
        eager_opt.zero_grad(set_to_none=False)
        eager_losses.append(step(eager, eager_opt).detach())
    model, opt = build()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    losses = []
    with torch.cuda.stream(side):  # warm-up: kernels compiled, FFT plans made, optimizer state created
        for _ in range(3):
            opt.zero_grad(set_to_none=False)
            losses.append(step(model, opt).detach())
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=False)
    with torch.cuda.graph(graph):
        static_loss = step(model, opt)
    for _ in range(3):
        opt.zero_grad(set_to_none=False)
        graph.replay()
        losses.append(static_loss.detach().clone())
    torch.testing.assert_close(torch.stack(losses), torch.stack(eager_losses), rtol=1e-4, atol=1e-5)
    for p, q in zip(model.parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_kernels_run_on_their_tensors_gpu_not_the_current_one(backend):
    """A layer on cuda:1 while cuda:0 is current (a rank's view of a multi-GPU host): every kernel launches on the
    tensors' GPU and its current stream, and computes what the same layer on cuda:0 computes, forward and backward."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    pytest.importorskip(backend)
    torch.manual_seed(0)
    x = torch.randn(300, 4, 16) * 2
    results = []
    for device in ("cuda:0", "cuda:1"):
        with torch.cuda.device(0):
            layer = SpikingS4D(16, d_state=8, backend=backend, bidirectional=True).to(device)
            layer.load_state_dict(results[0][2] if results else layer.state_dict())
            xd = x.to(device).requires_grad_()
            s = layer(xd)
            s.square().sum().backward()
            torch.cuda.synchronize(device)
        results.append((s.detach().cpu(), xd.grad.cpu(), {k: v.cpu() for k, v in layer.state_dict().items()}))
    (s0, g0, _), (s1, g1, _) = results
    assert torch.equal(s0, s1) and torch.equal(g0, g1)
