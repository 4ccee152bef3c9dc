"""PyTorch reference for rewind's benchmark: the same work in PyTorch on the CPU.

`cargo xtask bench` installs torch (bench/requirements.txt) into bench/.venv, runs this script
with the thread count of our side, and prints ours / PyTorch ratios. By hand, with any Python
that has torch:

Lenet 300-100 (batch 60, Adam 1.2e-3), Resnet-20 (batch 128, SGD momentum 0.9, wd 1e-4) and
VGG-16 (batch 128, same SGD) training steps on random data of the datasets' shapes, evaluation
throughput, and the interpolation sweep of the paper (30 alphas over a 10,000-image MNIST-shaped
test set with Lenet). Medians over repeated timings after warm-up. Prints one JSON object.

    bench/.venv/bin/python bench/reference.py --threads 2 --steps 20

`--device cuda` runs the same work on the GPU (what `cargo xtask gpu-check` compares with), in
float32 with PyTorch's defaults (cuDNN may use TF32 for convolutions on Ampere and later) and
`cudnn.benchmark` on, as our GPU backend autotunes its kernels too.
"""

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Lenet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(784, 300), nn.Linear(300, 100)])
        self.output = nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.output(x)


def conv_bn(cin, cout, k, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)
    )


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1)
        self.shortcut = (
            conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x):
        out = F.relu(self.conv1(x))
        return F.relu(self.conv2(out) + self.shortcut(x))


class Resnet20(nn.Module):
    def __init__(self, base=16):
        super().__init__()
        self.stem = conv_bn(3, base, 3, 1)
        blocks, cin = [], base
        for stage, width in enumerate([base, 2 * base, 4 * base]):
            for b in range(3):
                blocks.append(Block(cin, width, 2 if stage > 0 and b == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(4 * base, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Vgg16(nn.Module):
    PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]

    def __init__(self, divisor=1):
        super().__init__()
        layers, cin = [], 3
        for v in self.PLAN:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                v = max(v // divisor, 1)
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.fc(x)


SAMPLE_MS = 100.0  # shortest timed sample: short steps are timed in groups, as on our side


def timed(fn, steps, warmup):
    reps = 1
    for _ in range(max(warmup, 1)):
        start = time.perf_counter()
        fn()
        reps = max(1, int(-(-SAMPLE_MS // max((time.perf_counter() - start) * 1e3, 1e-3))))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - start) * 1e3 / reps)
    return statistics.median(times), min(times)


DEVICE = torch.device("cpu")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def bench_training(name, model, opt, shape, batch, steps, warmup):
    x = torch.randn(batch, *shape, device=DEVICE)
    y = torch.randint(0, 10, (batch,), device=DEVICE)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    median, best = timed(step, steps, warmup)
    model.eval()
    test = torch.randn(10_000 if DEVICE.type == "cuda" else 2000, *shape, device=DEVICE)
    with torch.no_grad():
        model(test[:1000]).argmax(1)  # one untimed pass, as on our side
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        for chunk in test.split(1000):
            model(chunk).argmax(1).cpu()
    sync()
    eval_ips = len(test) / (time.perf_counter() - start)
    model.train()
    return {"preset": name, "batch": batch, "ms_per_step": median, "min_ms": best,
            "eval_images_per_s": eval_ips}


def bench_interpolation(points, images):
    a, b = Lenet().to(DEVICE), Lenet().to(DEVICE)
    test = torch.randn(images, 1, 28, 28, device=DEVICE)
    labels = torch.randint(0, 10, (images,), device=DEVICE)
    sa, sb = a.state_dict(), b.state_dict()
    model = Lenet().to(DEVICE).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(points):
            alpha = i / (points - 1)
            model.load_state_dict({k: (1 - alpha) * sa[k] + alpha * sb[k] for k in sa})
            errors = 0
            for chunk, lab in zip(test.split(1000), labels.split(1000)):
                errors += (model(chunk).argmax(1) != lab).sum().item()
    return (time.perf_counter() - start) * 1e3


def network(spec):
    """`resnet20`, `vgg16`, or a narrower one as rewind's CPU scales run it: `resnet20@w4`
    (base width 4 instead of 16), `vgg16@d8` (every layer's channels divided by 8)."""
    name, _, cut = spec.partition("@")
    if name == "resnet20":
        return Resnet20(int(cut[1:]) if cut.startswith("w") else 16)
    return Vgg16(int(cut[1:]) if cut.startswith("d") else 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--presets", default="lenet,resnet20,vgg16")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--no-sweep", action="store_true", help="skip the interpolation sweep")
    args = p.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for name in args.presets.split(","):
        if name == "lenet":
            m = Lenet().to(DEVICE)
            rows.append(bench_training(name, m, torch.optim.Adam(m.parameters(), 1.2e-3),
                                       (1, 28, 28), 60, args.steps, args.warmup))
        elif name.split("@")[0] in ("resnet20", "vgg16"):
            m = network(name).to(DEVICE)
            opt = torch.optim.SGD(m.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
            rows.append(bench_training(name, m, opt, (3, 32, 32), 128, args.steps, args.warmup))
    out = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "rows": rows,
        "interpolation_ms": None if args.no_sweep else bench_interpolation(30, 10_000),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
