"""Step-for-step parity with PyTorch: repeats every training step of a parity case from *our*
state, with the recipe of the paper's Table 1 as written in this file (never ours), and writes
the golden file rewind's parity tests compare with (`tests/fixtures/parity/<case>.json`).

    rewind parity-export --case resnet20 --out /tmp/parity-resnet20
    bench/.venv/bin/python bench/parity.py /tmp/parity-resnet20 \
        --out tests/fixtures/parity/resnet20.json

(`cargo xtask parity` runs both for every case.)

What is ours and what is PyTorch's. From the export this script takes only *inputs*: the
network's shape (architecture, width), the case's length, the state before every step (weights
and BN buffers), every batch as training saw it (augmented, normalised), the test images and the
two ends of an interpolation. Everything that makes a step is written here: the learning rate of
every step (Table 1's base rate and drops at 32K and 48K of 63K iterations, scaled to the case's
length), the optimiser and its constants (Adam with PyTorch's betas and epsilon 1e-8; SGD with
momentum 0.9, no dampening, L2 weight decay 1e-4 on every parameter), BN's momentum 0.1 and
epsilon 1e-5 (PyTorch's defaults, as in the paper's code), the IMP round (global magnitude
pruning of 20% of the prunable weights of the trained network, output layer unpruned for Lenet
and VGG-16, rewinding weights and BN buffers to step k with a fresh optimiser and the schedule at
step k, the mask re-applied after every step). So a wrong learning rate, weight decay, momentum,
BN momentum, mask or rewind in our code makes our step differ from the one computed here.

For each step t the network is loaded with our state before step t, runs our batch t in train
mode, and takes one `torch.optim` step (its optimiser state carried along from its own earlier
steps on our states). The golden file holds, per step and tensor, sketches of the change the step
made (16 random +-1 projections, see `crates/checks/src/parity/sketch.rs`: they let the
tests estimate the norm of the element-wise difference between our update and PyTorch's), its
norm, and the element-wise distance between PyTorch's float32 and float64 updates (the scale of
float32's rounding for that tensor); the loss; and 4-projection sketches of our states, so a test
can tell "our state has drifted from the one this file was made from" from "our step differs".
The IMP round adds PyTorch's mask (bit for bit) and a sketch of the rewound state it builds. For
the record it also trains freely from our initial state on our batches in float32 and float64.
"""

import argparse
import base64
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# The paper's Table 1 (and its public code's defaults), written here independently of rewind.
TABLE1 = {
    "lenet": {
        "optimizer": "adam", "lr": 12e-4, "weight_decay": 0.0, "train_for": 24000,
        "milestones": [], "unpruned": ["output"],
    },
    "resnet20": {
        "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
        "train_for": 63000, "milestones": [32000, 48000], "unpruned": [],
    },
    "vgg16": {
        "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
        "train_for": 63000, "milestones": [32000, 48000], "unpruned": ["fc"],
    },
}
DROP = 0.1                           # each milestone multiplies the rate by 0.1
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # PyTorch's defaults, as in the paper's code
PRUNE_FRACTION = 0.2                 # of the remaining weights per IMP round
UPDATE_PROJECTIONS, STATE_PROJECTIONS = 16, 4


def table1(network):
    if network not in TABLE1:
        raise SystemExit(f"parity.py has no Table 1 entry for {network}")
    return TABLE1[network]


def lr_at(network, step, steps):
    """Table 1's rate at `step` of a run shortened to `steps`: the drops keep their place as a
    fraction of training (rounded half up to a step)."""
    row = table1(network)
    drops = [int(np.floor(m * steps / row["train_for"] + 0.5)) for m in row["milestones"]]
    return row["lr"] * DROP ** sum(step >= d for d in drops)


def optimizer(network, params):
    row = table1(network)
    if row["optimizer"] == "adam":
        return torch.optim.Adam(
            params, lr=row["lr"], betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=row["weight_decay"]
        )
    return torch.optim.SGD(
        params, lr=row["lr"], momentum=row["momentum"], dampening=0.0,
        weight_decay=row["weight_decay"], nesterov=False,
    )


def splitmix64(x):
    """On numpy uint64 arrays (wrapping), as `sketch.rs` on u64."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class Sketcher:
    def __init__(self, sizes):
        self.signs = []
        for t, n in enumerate(sizes):
            h = splitmix64((np.uint64(t) << np.uint64(32)) | np.arange(n, dtype=np.uint64))
            bits = (h[:, None] >> np.arange(UPDATE_PROJECTIONS, dtype=np.uint64)) & np.uint64(1)
            self.signs.append(bits.astype(np.float64) * 2.0 - 1.0)

    def project(self, tensors, m):
        """tensors: float64 numpy vectors in state order -> (tensors x m) projections."""
        return np.stack([v @ s[:, :m] for v, s in zip(tensors, self.signs)])


def b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()

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
    network, dataset = export["network"], export["dataset"]
    folder = os.path.join(args.data_dir, dataset)
    train_x, train_y = idx_split(folder, "train", dataset)
    test_x, test_y = idx_split(folder, "t10k", dataset)
    model = build(export["model"], list(train_x.shape[1:]), 10)
    layout = Layout(export["tensors"], model)
    layout.load(read_f32(os.path.join(args.export, "initial.f32")))
    with open(os.path.join(args.export, "indices.u32"), "rb") as f:
        indices = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
    steps, batch = export["steps"], export["batch_size"]
    opt = optimizer(network, model.parameters())
    model.train()
    start, offset = time.time(), 0
    for t in range(steps):
        n = min(batch, len(indices) - offset)
        b = indices[offset : offset + n]
        offset += n
        train_step(model, opt, lr_at(network, t, steps), train_x[b], train_y[b])
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


def read_f32(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32)


def train_step(net, opt, lr, x, y, masks=None):
    """One optimiser step of `net` on batch (x, y) at learning rate `lr`, then the mask
    re-applied; returns the loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if masks is not None:
        with torch.no_grad():
            for param, mask in masks:
                param.mul_(mask)
    return loss.item()


def prunable(model, network):
    """The tensors an IMP round prunes: conv and linear weights, except Table 1's unpruned
    layers (the paper's code leaves the output layer of Lenet and VGG-16 unpruned)."""
    unpruned = table1(network)["unpruned"]
    return {
        id(module.weight)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and name not in unpruned
    }


def imp_mask(layout, model, network):
    """Global magnitude pruning of PRUNE_FRACTION of the prunable weights of the state loaded
    in `model`: the smallest magnitudes across all layers together, ties by position (layer
    order, then index). Returns {entry index: keep mask, our layout, bool numpy}."""
    ids = prunable(model, network)
    values = layout.read()
    entries = [i for i, e in enumerate(layout.entries) if id(e[1]) in ids]
    mags = np.concatenate([values[i].abs().numpy() for i in entries])
    layer = np.concatenate([np.full(values[i].numel(), i) for i in entries])
    index = np.concatenate([np.arange(values[i].numel()) for i in entries])
    n = int(np.floor(PRUNE_FRACTION * len(mags) + 0.5))
    keep = np.ones(len(mags), dtype=bool)
    keep[np.lexsort((index, layer, mags))[:n]] = False
    out, offset = {}, 0
    for i in entries:
        size = values[i].numel()
        out[i] = keep[offset : offset + size]
        offset += size
    return out


def module_masks(layout, masks, dtype):
    """The masks as (parameter, mask in the parameter's own layout) pairs."""
    pairs = []
    for i, keep in masks.items():
        _, target, shape, transpose, _ = layout.entries[i]
        m = torch.from_numpy(keep.astype(np.float64)).reshape(shape)
        pairs.append((target, (m.T if transpose else m).contiguous().to(dtype)))
    return pairs


def replay(ctx, states, batches, first_step, masks=None):
    """Every step from our state (`states(t)`, flat float32), in float32 and float64, with a
    fresh optimiser of Table 1 and the rate of step `first_step + t`."""
    model, exact, layout, exact_layout = ctx["model"], ctx["exact"], ctx["layout"], ctx["exact_layout"]
    network, total, sketcher = ctx["network"], ctx["steps"], ctx["sketcher"]
    opt, exact_opt = optimizer(network, model.parameters()), optimizer(network, exact.parameters())
    masks32 = masks64 = None
    if masks is not None:
        masks32 = module_masks(layout, masks, torch.float32)
        masks64 = module_masks(exact_layout, masks, torch.float64)
    model.train()
    exact.train()
    out = {k: [] for k in ("lrs", "losses", "states", "state_norms", "updates", "update_norms", "spread")}
    for t, (x, y) in enumerate(batches):
        lr = lr_at(network, first_step + t, total)
        before = [v.numpy() for v in layout.split(states(t))]
        layout.load(states(t))
        loss = train_step(model, opt, lr, x, y, masks32)
        after32 = [v.numpy() for v in layout.read()]
        exact_layout.load(states(t))
        train_step(exact, exact_opt, lr, x.double(), y, masks64)
        after64 = [v.numpy() for v in exact_layout.read()]
        u32 = [a - b for a, b in zip(after32, before)]
        u64 = [a - b for a, b in zip(after64, before)]
        out["lrs"].append(lr)
        out["losses"].append(loss)
        out["states"].append(b64(sketcher.project(before, STATE_PROJECTIONS), "<f8"))
        out["state_norms"].append([float(np.linalg.norm(v)) for v in before])
        out["updates"].append(b64(sketcher.project(u32, UPDATE_PROJECTIONS), "<f4"))
        out["update_norms"].append([float(np.linalg.norm(u)) for u in u32])
        out["spread"].append([float(np.linalg.norm(a - b)) for a, b in zip(u32, u64)])
    return out


def batch_reader(images, labels, shape):
    item = shape[0] * shape[1] * shape[2]

    def batches():
        offset = 0
        for ys in labels:
            n = len(ys)
            yield images[offset : offset + n * item].reshape(n, *shape), torch.tensor(ys)
            offset += n * item

    return batches


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
    folder = args.export
    export = json.load(open(os.path.join(folder, "export.json")))
    network, steps, shape = export["network"], export["steps"], export["image_shape"]
    trajectory = read_f32(os.path.join(folder, "trajectory.f32"))
    endpoints = read_f32(os.path.join(folder, "endpoints.f32"))
    test_images = read_f32(os.path.join(folder, "test.f32")).reshape(-1, *shape)
    batches = batch_reader(read_f32(os.path.join(folder, "batches.f32")), export["labels"], shape)

    torch.manual_seed(0)
    model = build(export["model"], shape, 10)
    layout = Layout(export["tensors"], model)
    exact = build(export["model"], shape, 10).double()
    ctx = {
        "model": model, "exact": exact, "layout": layout,
        "exact_layout": Layout(export["tensors"], exact), "network": network, "steps": steps,
        "sketcher": Sketcher([e[4] for e in layout.entries]),
    }
    state = lambda t: trajectory[t * layout.size : (t + 1) * layout.size]
    assert trajectory.numel() == (steps + 1) * layout.size, "trajectory size"
    dense = replay(ctx, state, batches(), 0)

    # The IMP round: PyTorch's mask of our trained state, its rewound state, and every step of
    # our masked child from its own state.
    imp = export["imp"]
    k = imp["rewind_to"]
    layout.load(state(steps))
    masks = imp_mask(layout, model, network)
    layout.load(state(k))
    with torch.no_grad():
        for param, mask in module_masks(layout, masks, torch.float32):
            param.mul_(mask)
    rewound = [v.numpy() for v in layout.read()]
    child = read_f32(os.path.join(folder, "imp_trajectory.f32"))
    child_state = lambda t: child[t * layout.size : (t + 1) * layout.size]
    assert child.numel() == (steps - k + 1) * layout.size, "imp trajectory size"
    child_batches = batch_reader(read_f32(os.path.join(folder, "imp_batches.f32")), imp["labels"], shape)
    imp_steps = replay(ctx, child_state, child_batches(), k, masks)
    paths = [t["path"] for t in export["tensors"]]
    imp_record = {
        "rewind_to": k,
        "fraction": PRUNE_FRACTION,
        "masks": [
            {"path": paths[i], "kept": int(keep.sum()), "bits": b64(np.packbits(keep, bitorder="little"), "u1")}
            for i, keep in masks.items()
        ],
        "start": b64(ctx["sketcher"].project(rewound, STATE_PROJECTIONS), "<f8"),
        "start_norms": [float(np.linalg.norm(v)) for v in rewound],
        "steps": imp_steps,
    }

    # Free runs from our initial state, for the record.
    def free_run(dtype):
        twin = build(export["model"], shape, 10)
        Layout(export["tensors"], twin).load(state(0))
        twin = twin.to(dtype).train()
        o = optimizer(network, twin.parameters())
        return [
            train_step(twin, o, lr_at(network, t, steps), x.to(dtype), y)
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
    worst = max((abs(o - p) / abs(p), t) for t, (o, p) in enumerate(zip(ours, dense["losses"])))
    ours_kept = imp["kept"]
    print(
        f"{export['case']} ({network}, Table 1 scaled to {steps} steps): largest relative loss "
        f"difference {worst[0]:.2e} (step {worst[1]}); IMP at k = {k} keeps "
        f"{sum(r['kept'] for r in imp_record['masks'])} weights here, {ours_kept} in ours; "
        f"interpolation errors ours {export['interpolation_errors']} vs PyTorch {errors} of "
        f"{len(test_labels)}"
    )
    for t in sorted({0, 5, 10, 20, steps // 2, steps - 1}):
        print(f"  free run, step {t}: ours {ours[t]:.6f}, torch32 {free32[t]:.6f}, torch64 {free64[t]:.6f}")
    golden = {
        "case": export["case"],
        "network": network,
        "simd_level": export["simd_level"],
        "numerics": export["numerics"],
        "torch": torch.__version__,
        "table1": {**table1(network), "drop": DROP, "adam_betas": ADAM_BETAS, "adam_eps": ADAM_EPS,
                   "bn_momentum": 0.1, "bn_epsilon": 1e-5, "prune_fraction": PRUNE_FRACTION},
        "steps": steps,
        "projections": {"update": UPDATE_PROJECTIONS, "state": STATE_PROJECTIONS},
        "paths": paths,
        "dense": dense,
        "imp": imp_record,
        "interpolation": {"alphas": export["alphas"], "examples": len(test_labels), "errors": errors},
        "free_run": {"float32": free32, "float64": free64},
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(golden, f)
    print(f"  written to {args.out}")


if __name__ == "__main__":
    main()
