"""Step-for-step parity with PyTorch: trains the steps `rewind parity-export` wrote (our initial
weights, our batches) in PyTorch, and writes the golden file that rewind's parity test
compares its own per-step losses with (`tests/fixtures/parity/<preset>.json`).

    rewind parity-export --preset lenet --steps 100 --out /tmp/lenet-export.json
    bench/.venv/bin/python bench/parity.py /tmp/lenet-export.json \
        --data-dir "$REWIND_DATA_DIR" --out tests/fixtures/parity/lenet.json

(`cargo xtask parity` runs both.) Conventions checked on the way: burn stores linear weights as
[in, out] (transposed here), Adam is PyTorch's (betas 0.9/0.999, epsilon 1e-8 added to the
square root of the bias-corrected second moment), the loss is the mean cross-entropy of the
batch, and MNIST is normalised as (x / 255 - 0.1307) / 0.3081.
"""

import argparse
import gzip
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALISATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def idx_images(path):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(n, rows * cols)


def idx_labels(path):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def find(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{stem}[.gz] in {folder}")


class Lenet(nn.Module):
    """Fully connected ReLU network with the hidden widths of the export."""

    def __init__(self, widths):
        super().__init__()
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-2], widths[1:-1])
        )
        self.output = nn.Linear(widths[-2], widths[-1])

    def forward(self, x):
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.output(x)


def lenet_from(tensors):
    by_path = {t["path"]: t for t in tensors}
    hidden = sorted(
        {int(p.split(".")[2]) for p in by_path if p.startswith("Lenet.hidden.")}
    )
    weights = [by_path[f"Lenet.hidden.{i}.weight"] for i in hidden] + [
        by_path["Lenet.output.weight"]
    ]
    widths = [weights[0]["shape"][0]] + [w["shape"][1] for w in weights]
    model = Lenet(widths)
    layers = list(model.hidden) + [model.output]
    names = [f"Lenet.hidden.{i}" for i in hidden] + ["Lenet.output"]
    with torch.no_grad():
        for layer, name in zip(layers, names):
            w = by_path[name + ".weight"]
            layer.weight.copy_(
                torch.tensor(w["values"], dtype=torch.float32).reshape(w["shape"]).T
            )
            layer.bias.copy_(torch.tensor(by_path[name + ".bias"]["values"]))
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("REWIND_DATA_DIR")
        or os.path.expanduser("~/.cache/rewind/data"),
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    export = json.load(open(args.export))
    recipe = export["recipe"]
    dataset = recipe["data"]["dataset"]
    assert recipe["model"]["arch"] == "lenet", "parity.py knows Lenet"
    assert recipe["optimizer"]["kind"] == "adam", "parity.py knows Lenet's Adam recipe"
    folder = os.path.join(args.data_dir, dataset)
    images = idx_images(find(folder, "train-images-idx3-ubyte"))
    labels = idx_labels(find(folder, "train-labels-idx1-ubyte"))
    mean, std = NORMALISATION[dataset]

    def train(dtype):
        model = lenet_from(export["tensors"]).to(dtype)
        opt = torch.optim.Adam(
            model.parameters(),
            lr=recipe["schedule"]["base"],
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=recipe["optimizer"].get("weight_decay", 0.0),
        )
        losses = []
        for indices in export["batches"]:
            batch = torch.tensor(indices)
            x = images[batch].float() / 255.0
            x = ((x - mean) / std).to(dtype)
            y = labels[batch]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    losses = train(torch.float32)
    exact = train(torch.float64)
    ours = export["losses"]
    rel = lambda a, b: abs(a - b) / abs(b)
    worst = max(rel(a, b) for a, b in zip(ours, losses))
    for step in [0, 5, 10, 20, 40, 60, 80, len(ours) - 1]:
        print(
            f"step {step}: ours vs torch32 {rel(ours[step], losses[step]):.1e}, "
            f"ours vs torch64 {rel(ours[step], exact[step]):.1e}, "
            f"torch32 vs torch64 {rel(losses[step], exact[step]):.1e}"
        )
    golden = {
        "preset": export["preset"],
        "init_seed": export["init_seed"],
        "data_seed": export["data_seed"],
        "steps": export["steps"],
        "torch": torch.__version__,
        "losses": losses,
        "losses_float64": exact,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(golden, f, indent=1)
    print(
        f"{export['steps']} steps: largest relative difference of the loss, ours vs PyTorch: "
        f"{worst:.2e} (first {ours[0]:.6f} vs {losses[0]:.6f}, last {ours[-1]:.6f} vs "
        f"{losses[-1]:.6f}); written to {args.out}"
    )


if __name__ == "__main__":
    main()
