"""Model presets: build, shapes, head swap, size errors, spec round-trip, FLOP counting."""

from __future__ import annotations

import pytest
import torch

from weedseg.defaults import DEFAULT_ARCH, DEFAULT_INPUT_SCALE
from weedseg.errors import WeedsegError
from weedseg.models import (
    PRESETS,
    ModelSpec,
    build_model,
    class_head_prefixes,
    count_gflops,
    head_classes,
    replace_head,
    spec_from_name,
)

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "name",
    [
        "unet-tiny",
        "unet-mobilenetv3-lite",
        "fpn-mobilenetv3",
        "fpn-mobilenetv3-lite",
        "lraspp-mobilenetv3",
    ],
)
def test_preset_maps_image_to_same_size_output(name):
    model = build_model(name, out_channels=3).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 64, 96))
    assert y.shape == (1, 3, 64, 96)


def test_required_presets_exist_and_round_trip():
    for name in ("unet-resnet18", "unet-resnet34", "unet-mobilenetv3", "unet-mobilenetv3-lite"):
        spec = PRESETS[name]
        assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec_from_name("fpn:resnet18") == ModelSpec("fpn", "resnet18")
    with pytest.raises(WeedsegError, match="unknown model"):
        spec_from_name("vit-huge")


def test_input_not_multiple_of_32_fails_clearly():
    model = build_model("unet-tiny", out_channels=3)
    with pytest.raises(WeedsegError, match="multiple of 32"):
        model(torch.zeros(1, 3, 60, 64))


def test_replace_head_keeps_everything_else():
    model = build_model("unet-tiny", out_channels=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replace_head(model, 5)
    after = model.state_dict()
    changed = {k for k in after if k not in before or after[k].shape != before[k].shape}
    assert changed == {"segmentation_head.0.weight", "segmentation_head.0.bias"}
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 5, 32, 32)


def test_lraspp_head_swap_replaces_both_classifiers_and_keeps_the_rest():
    model = build_model("lraspp-mobilenetv3", out_channels=3)
    assert head_classes(model) == 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replace_head(model, 5)
    after = model.state_dict()
    changed = {k for k in after if after[k].shape != before[k].shape}
    assert changed == {
        f"segmentation_head.{conv}_classifier.{p}"
        for conv in ("low", "high")
        for p in ("weight", "bias")
    }
    assert class_head_prefixes(model) == (
        "segmentation_head.low_classifier.",
        "segmentation_head.high_classifier.",
    )
    assert head_classes(model) == 5
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 5, 64, 64)


def test_lraspp_takes_its_own_encoder_only():
    assert spec_from_name("lraspp:mobilenet_v3_large") == PRESETS["lraspp-mobilenetv3"]
    with pytest.raises(WeedsegError, match="mobilenet_v3_large only"):
        build_model("lraspp:resnet18", 3)


def test_light_presets_and_the_default_stay_under_8_gflop_at_512():
    # per 512x512 of photo: the default model works on photos resized by DEFAULT_INPUT_SCALE
    assert count_gflops(build_model(DEFAULT_ARCH, 3), round(512 * DEFAULT_INPUT_SCALE)) < 8.0
    assert count_gflops(build_model("unet-mobilenetv3-lite", 3), 512) < 8.0
    assert count_gflops(build_model("fpn-mobilenetv3", 3), 512) < 8.0
    assert count_gflops(build_model("lraspp-mobilenetv3", 3), 512) < 4.0
    # the narrow FPN is cheaper than the peer it is compared with
    assert count_gflops(build_model("fpn-mobilenetv3-lite", 3), 512) < 3.0
