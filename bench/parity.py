"""Step-for-step parity with PyTorch: repeats every training step of a parity case from *our*
state and writes the golden file rewind's parity tests compare with
(`tests/fixtures/parity/<case>.json`).

    rewind parity-export --case resnet20 --out /tmp/parity-resnet20
    bench/.venv/bin/python bench/parity.py /tmp/parity-resnet20 \
        --out tests/fixtures/parity/resnet20.json

(`cargo xtask parity` runs both for every case.) With `--full-length`, the export of
`rewind parity-export --case lenet --full-length --init-seed S --data-seed D` (our initial
state and every batch's example indices, for the unshortened recipe) is trained for its whole
length in PyTorch, and the final test accuracy on the whole test split is printed and
written (`--data-dir` holds `mnist/`). For each step t the network is loaded with our
parameters and BN buffers before step t, runs our batch t in train mode, and takes one
`torch.optim` step (its optimiser state carried along from its own earlier steps on our
states). The golden file holds PyTorch's loss of every step and, per tensor, the norm of the
change the step made (parameters through the optimiser, BN running statistics through the
forward), in float32 and, for the scale of float32's rounding, in float64. The two ends of an interpolation are evaluated at the same alphas. For the record it
also trains freely from our initial state on our batches in float32 and float64.

PyTorch's conventions, which the comparison checks ours against: linear weights are
[out, in] (burn's are [in, out]; transposed here); BN momentum 0.1, epsilon 1e-5, running
variance updated with the unbiased batch variance; Adam adds epsilon to the bias-corrected
second moment's root; SGD momentum has no dampening; weight decay (L2, added to the gradient)
applies to every parameter, BN scales and shifts and biases included; the learning rate of
each step is the one our schedule gave it (so an LR drop landing one step late would show).
"""

import argparse
import gzip
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


NORMALISATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def idx(folder, stem, header):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
                return bytearray(f.read())[header:]
    raise SystemExit(f"{stem}[.gz] is not in {folder}")


def idx_split(folder, split, dataset):
    mean, std = NORMALISATION[dataset]
    images = torch.frombuffer(idx(folder, f"{split}-images-idx3-ubyte", 16), dtype=torch.uint8)
    labels = torch.frombuffer(idx(folder, f"{split}-labels-idx1-ubyte", 8), dtype=torch.uint8)
    x = (images.reshape(len(labels), 1, 28, 28).float() / 255.0 - mean) / std
    return x, labels.long()


def full_length(args):
    export = json.load(open(os.path.join(args.export, "export.json")))
    recipe = export["recipe"]
    dataset = recipe["data"]["dataset"]
    folder = os.path.join(args.data_dir, dataset)
    train_x, train_y = idx_split(folder, "train", dataset)
    test_x, test_y = idx_split(folder, "t10k", dataset)
    model = build(recipe["model"], list(train_x.shape[1:]), 10)
    layout = Layout(export["tensors"], model)
    layout.load(read_f32(os.path.join(args.export, "initial.f32")))
    with open(os.path.join(args.export, "indices.u32"), "rb") as f:
        indices = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
    steps, batch = export["steps"], recipe["data"]["batch_size"]
    assert recipe["schedule"].get("milestones") is None and recipe["schedule"].get("warmup") is None
    opt = optimizer(recipe, model.parameters())
    model.train()
    start, offset = time.time(), 0
    for t in range(steps):
        n = min(batch, len(indices) - offset)
        b = indices[offset : offset + n]
        offset += n
        train_step(model, opt, None, train_x[b], train_y[b])
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(test_x[i : i + 1000]).argmax(1) == test_y[i : i + 1000]).sum().item()
            for i in range(0, len(test_y), 1000)
        )
    accuracy = 100.0 * correct / len(test_y)
    result = {
        "case": export["case"],
        "init_seed": export["init_seed"],
        "data_seed": export["data_seed"],
        "steps": steps,
        "torch": torch.__version__,
        "test_accuracy": accuracy,
        "seconds": time.time() - start,
    }
    print(json.dumps(result))
    with open(args.out, "w") as f:
        json.dump(result, f)


def read_f32(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32)


class ConvBn(nn.Module):
    def __init__(self, cin, cout, kernel, stride):
        super().__init__()
        pad = kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = ConvBn(cin, cout, 3, stride)
        self.conv2 = ConvBn(cout, cout, 3, 1)
        self.shortcut = ConvBn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(out + skip)


class CifarResnet(nn.Module):
    def __init__(self, depth, width, cin, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = ConvBn(cin, width, 3, 1)
        blocks, channels = [], width
        for stage in range(3):
            out = width << stage
            for b in range(n):
                blocks.append(BasicBlock(channels, out, 2 if stage > 0 and b == 0 else 1))
                channels = out
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn = nn.BatchNorm2d(cout)


VGG16_PLAN = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512]


class Vgg(nn.Module):
    def __init__(self, divisor, cin, classes):
        super().__init__()
        layers, self.pool_after, channels = [], [], cin
        for entry in VGG16_PLAN:
            if entry == 0:
                self.pool_after[-1] = True
                continue
            out = max(entry // divisor, 1)
            layers.append(ConvBnRelu(channels, out))
            self.pool_after.append(False)
            channels = out
        self.layers = nn.ModuleList(layers)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        for layer, pool in zip(self.layers, self.pool_after):
            x = F.relu(layer.bn(layer.conv(x)))
            if pool:
                x = F.max_pool2d(x, 2, 2)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Lenet(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-2], widths[1:-1]))
        self.output = nn.Linear(widths[-2], widths[-1])

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.output(x)


def build(model, image_shape, classes):
    arch = model["arch"]
    if arch == "lenet":
        c, h, w = image_shape
        return Lenet([c * h * w] + model["hidden"] + [classes])
    if arch == "resnet":
        return CifarResnet(model["depth"], model["width"], image_shape[0], classes)
    if arch == "vgg16":
        return Vgg(model["width_divisor"], image_shape[0], classes)
    raise SystemExit(f"parity.py has no PyTorch twin of {arch}")


class Layout:
    """Maps our tensor order and paths onto the PyTorch module's tensors."""

    RENAME = {"gamma": "weight", "beta": "bias"}

    def __init__(self, tensors, module):
        named = dict(module.named_parameters())
        named.update(dict(module.named_buffers()))
        self.entries = []
        for t in tensors:
            parts = t["path"].split(".")[1:]  # our root is the network's type name
            parts[-1] = self.RENAME.get(parts[-1], parts[-1])
            target = named[".".join(parts)]
            transpose = len(t["shape"]) == 2  # burn's linear weights are [in, out]
            size = 1
            for d in t["shape"]:
                size *= d
            self.entries.append((t["path"], target, t["shape"], transpose, size))
        self.size = sum(e[4] for e in self.entries)

    def load(self, flat):
        with torch.no_grad():
            offset = 0
            for _, target, shape, transpose, size in self.entries:
                values = flat[offset : offset + size].reshape(shape)
                target.copy_((values.T if transpose else values).to(target.dtype))
                offset += size

    def read(self):
        """Our layout, float64, flattened per tensor."""
        out = []
        for _, target, _, transpose, _ in self.entries:
            t = target.detach()
            out.append((t.T if transpose else t).reshape(-1).double())
        return out

    def split(self, flat):
        out, offset = [], 0
        for *_, size in self.entries:
            out.append(flat[offset : offset + size].double())
            offset += size
        return out


def train_step(net, opt, lr, x, y):
    """One optimiser step of `net` on batch (x, y) at learning rate `lr`; returns the loss."""
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def optimizer(recipe, params):
    opt = recipe["optimizer"]
    if opt["kind"] == "adam":
        return torch.optim.Adam(
            params, lr=recipe["schedule"]["base"], betas=(0.9, 0.999), eps=1e-8,
            weight_decay=opt.get("weight_decay", 0.0),
        )
    if opt["kind"] == "sgd":
        return torch.optim.SGD(
            params, lr=recipe["schedule"]["base"], momentum=opt.get("momentum", 0.0),
            weight_decay=opt.get("weight_decay", 0.0), nesterov=opt.get("nesterov", False),
        )
    raise SystemExit(f"parity.py does not know the optimiser {opt}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export", help="the directory `rewind parity-export` wrote")
    parser.add_argument("--out", required=True)
    parser.add_argument("--full-length", action="store_true")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("REWIND_DATA_DIR") or os.path.expanduser("~/.cache/rewind/data"),
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.full_length:
        return full_length(args)
    export = json.load(open(os.path.join(args.export, "export.json")))
    recipe, steps = export["recipe"], export["steps"]
    shape = export["image_shape"]
    classes = 10
    trajectory = read_f32(os.path.join(args.export, "trajectory.f32"))
    batch_images = read_f32(os.path.join(args.export, "batches.f32"))
    endpoints = read_f32(os.path.join(args.export, "endpoints.f32"))
    test_images = read_f32(os.path.join(args.export, "test.f32")).reshape(-1, *shape)
    item = shape[0] * shape[1] * shape[2]

    def batches():
        offset = 0
        for labels in export["labels"]:
            n = len(labels)
            x = batch_images[offset : offset + n * item].reshape(n, *shape)
            offset += n * item
            yield x, torch.tensor(labels)

    torch.manual_seed(0)
    model = build(recipe["model"], shape, classes)
    layout = Layout(export["tensors"], model)
    state = lambda t: trajectory[t * layout.size : (t + 1) * layout.size]
    assert trajectory.numel() == (steps + 1) * layout.size, "trajectory size"

    # Every step from our state, in float32 and (for the scale of float32's rounding, which
    # is all a gradient that is zero in exact arithmetic holds, e.g. a conv bias before BN)
    # in float64.
    opt = optimizer(recipe, model.parameters())
    model.train()
    exact = build(recipe["model"], shape, classes).double().train()
    exact_layout = Layout(export["tensors"], exact)
    exact_opt = optimizer(recipe, exact.parameters())
    losses, norms, norms64, worst_state = [], [], [], (0.0, None)
    for t, (x, y) in enumerate(batches()):
        before = layout.split(state(t))
        for net, lay, o, dtype, out in (
            (model, layout, opt, torch.float32, norms),
            (exact, exact_layout, exact_opt, torch.float64, norms64),
        ):
            lay.load(state(t))
            loss = train_step(net, o, export["lrs"][t], x.to(dtype), y)
            out.append([(a - b).norm().item() for a, b in zip(lay.read(), before)])
            if dtype == torch.float32:
                losses.append(loss)
        after = layout.read()
        for entry, mine, ours in zip(layout.entries, after, layout.split(state(t + 1))):
            d = (mine - ours).abs().max().item()
            if d > worst_state[0]:
                worst_state = (d, f"step {t} {entry[0]}")

    # Free runs from our initial state.
    def free_run(dtype):
        twin = build(recipe["model"], shape, classes)
        Layout(export["tensors"], twin).load(state(0))
        twin = twin.to(dtype).train()
        o = optimizer(recipe, twin.parameters())
        out = []
        return [
            train_step(twin, o, export["lrs"][t], x.to(dtype), y)
            for t, (x, y) in enumerate(batches())
        ]

    free32, free64 = free_run(torch.float32), free_run(torch.float64)

    # The interpolation between the two endpoints, BN buffers included.
    a, b = endpoints[: layout.size], endpoints[layout.size :]
    test_labels = torch.tensor(export["test_labels"])
    errors = []
    model.eval()
    with torch.no_grad():
        for alpha in export["alphas"]:
            alpha32 = torch.tensor(alpha, dtype=torch.float32)
            layout.load(a * alpha32 + b * (1 - alpha32))
            wrong = 0
            for start in range(0, len(test_labels), 500):
                logits = model(test_images[start : start + 500])
                wrong += (logits.argmax(1) != test_labels[start : start + 500]).sum().item()
            errors.append(wrong)

    ours = export["losses"]
    rel = lambda x, y: abs(x - y) / abs(y)
    worst_loss = max((rel(o, p), t) for t, (o, p) in enumerate(zip(ours, losses)))
    print(
        f"{export['case']}: {steps} steps from our state: largest relative loss difference "
        f"{worst_loss[0]:.2e} (step {worst_loss[1]}); largest difference of a tensor after a step "
        f"{worst_state[0]:.2e} ({worst_state[1]}); interpolation errors ours "
        f"{export['interpolation_errors']} vs PyTorch {errors} of {len(test_labels)}"
    )
    for t in sorted({0, 5, 10, 20, steps // 2, steps - 1}):
        print(
            f"  free run, step {t}: ours {ours[t]:.6f}, torch32 {free32[t]:.6f}, "
            f"torch64 {free64[t]:.6f}"
        )
    golden = {
        "case": export["case"],
        "steps": steps,
        "torch": torch.__version__,
        "paths": [t["path"] for t in export["tensors"]],
        "losses": losses,
        "update_norms": norms,
        "update_norms_float64": norms64,
        "interpolation": {
            "alphas": export["alphas"],
            "examples": len(test_labels),
            "errors": errors,
        },
        "free_run": {"float32": free32, "float64": free64},
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(golden, f)
    print(f"  written to {args.out}")


if __name__ == "__main__":
    main()
