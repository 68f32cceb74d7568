"""MultimodalVisualizer and the attention heat-map, on synthetic samples."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from mmfusion.structures import MultimodalDataSample
from mmfusion.visualization import (MultimodalVisualizer, attention_grid,
                                    attention_heatmap, grid_to_image,
                                    overlay_heatmap, peak_position)

_names = itertools.count()


def visualizer(**kwargs) -> MultimodalVisualizer:
    return MultimodalVisualizer.get_instance(f'test-vis-{next(_names)}',
                                             **kwargs)


def peaked_attention(hw, peak, heads=4, tokens=3, pad_tokens=0):
    """Uniform weights plus a bump at ``peak`` for every real token; padded
    token rows peak elsewhere (they must be ignored)."""
    h, w = hw
    att = torch.full((heads, tokens + pad_tokens, h * w), 1.0 / (h * w))
    att[:, :tokens, peak[0] * w + peak[1]] += 0.5
    if pad_tokens:
        att[:, tokens:, 0] += 5.0  # a decoy in the padding rows
    return att / att.sum(-1, keepdim=True)


@pytest.mark.parametrize('peak', [(1, 6), (6, 1), (4, 4)])
def test_heatmap_peaks_where_attention_is_highest(peak):
    hw, size = (8, 8), 64
    att = peaked_attention(hw, peak, pad_tokens=2)
    grid = attention_grid(att, hw, num_tokens=3)
    assert peak_position(grid) == peak
    heat = attention_heatmap(att, hw, out_shape=(size, size), num_tokens=3)
    assert heat.shape == (size, size)
    assert heat.min() == 0.0 and heat.max() == pytest.approx(1.0)
    cell = size // hw[0]
    r, c = peak_position(heat)
    assert (r // cell, c // cell) == peak
    # The picture: reddest (jet: high) inside the peak's cell, bluest far
    # from it.
    image = np.full((size, size, 3), 128, np.uint8)
    over = overlay_heatmap(image, heat, alpha=0.6).astype(int)
    redness = over[..., 0] - over[..., 2]
    r, c = np.unravel_index(int(np.argmax(redness)), redness.shape)
    assert (r // cell, c // cell) == peak
    far = ((peak[0] + 4) % 8 * cell + cell // 2,
           (peak[1] + 4) % 8 * cell + cell // 2)
    assert redness[far] < 0 < redness[r, c]


def test_padding_is_cropped_and_tokens_selected():
    # The feature grid covers a 64 x 128 padded batch; this sample's image
    # is the left 64 x 64 half. A peak in the right half is padding.
    hw = (4, 8)
    att = torch.zeros(1, 2, 32)
    att[0, 0, 1 * 8 + 2] = 1.0  # token 0: row 1, col 2 (in the image)
    att[0, 1, 2 * 8 + 1] = 1.0  # token 1: row 2, col 1
    heat = attention_heatmap(att, hw, out_shape=(32, 32), img_shape=(64, 64),
                             pad_shape=(64, 128), token_index=0)
    assert heat.shape == (32, 32)
    r, c = peak_position(heat)
    assert (r // 8, c // 8) == (1, 2)  # 32 px / 4 cells = 8 px a cell
    heat1 = attention_heatmap(att, hw, out_shape=(32, 32), img_shape=(64, 64),
                              pad_shape=(64, 128), token_index=[1])
    r, c = peak_position(heat1)
    assert (r // 8, c // 8) == (2, 1)
    with pytest.raises(IndexError, match='token_index'):
        attention_grid(att, hw, token_index=5)
    with pytest.raises(ValueError, match='H \\* W'):
        attention_grid(att, (3, 3))
    up = grid_to_image(np.eye(2, dtype=np.float32), (4, 4))
    assert up.shape == (4, 4)


def cls_sample(attention=True, gt=1):
    s = MultimodalDataSample(metainfo=dict(
        text='is the red square above the circle?',
        text_tokens=['is', 'the', 'red'], unknown_tokens=['blorp']))
    s.pred_score = torch.tensor([0.1, 0.9])
    s.pred_label = torch.tensor([1])
    s.gt_label = torch.tensor([gt])
    if attention:
        s.attention = peaked_attention((8, 8), (2, 5))
        s.set_metainfo(dict(attention_hw=(8, 8)))
    return s


def test_classification_picture_with_attention_panel():
    vis = visualizer()
    img = np.zeros((64, 64, 3), np.uint8)
    plain = vis.draw_sample(img, cls_sample(attention=False),
                            classes=['no', 'yes'])
    with_att = vis.draw_sample(img, cls_sample(), classes=['no', 'yes'])
    # Enlarged to 256 px, text panel below; the heat-map is a second image.
    assert plain.shape[0] > 256 and plain.shape[1] == 256
    assert with_att.shape[1] == 256 * 2 + 4
    heat = with_att[:256, 260:].astype(int)
    redness = heat[..., 0] - heat[..., 2]
    r, c = np.unravel_index(int(np.argmax(redness)), redness.shape)
    assert (r // 32, c // 32) == (2, 5)  # 256 px / 8 cells
    # The prediction tag: green for a right answer, red for a wrong one.
    right = plain[:24, :80].reshape(-1, 3).astype(int)
    wrong = vis.draw_sample(img, cls_sample(False, gt=0), classes=['no',
                                                                   'yes'])
    wrong = wrong[:24, :80].reshape(-1, 3).astype(int)
    assert (right[:, 1] - right[:, 0]).max() > 100
    assert (wrong[:, 0] - wrong[:, 1]).max() > 100
    # draw_attention=False drops the panel.
    no_att = vis.draw_sample(img, cls_sample(), draw_attention=False)
    assert no_att.shape[1] == 256


def test_detection_and_segmentation_pictures():
    vis = visualizer()
    img = np.zeros((32, 48, 3), np.uint8)
    det = MultimodalDataSample(metainfo=dict(text='the blue circle'))
    det.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 20., 20.]]),
                                    labels=torch.tensor([0]))
    det.pred_instances = InstanceData(
        bboxes=torch.tensor([[4., 4., 20., 20.], [30., 2., 40., 10.]]),
        scores=torch.tensor([0.9, 0.1]), labels=torch.tensor([0, 0]))
    out = vis.draw_sample(img, det, classes=['referred'])
    scale = 8  # 32 px -> 256
    assert out.shape[1] == 48 * scale * 2 + 4  # ground truth | prediction
    pred = out[:32 * scale, 48 * scale + 4:]
    assert pred[4 * scale, 12 * scale].max() > 0  # the kept box's edge
    assert pred[2 * scale, 35 * scale].max() == 0  # below the threshold
    seg = MultimodalDataSample(metainfo=dict(text='the square'))
    mask = torch.zeros(1, 32, 48, dtype=torch.long)
    mask[0, 8:16, 8:16] = 1
    seg.pred_sem_seg = PixelData(data=mask)
    out = vis.draw_sample(img, seg, classes=['background', 'referred'])
    assert out[12 * scale, 12 * scale].max() > 0
    assert out[28 * scale, 40 * scale].max() == 0


def test_add_datasample_writes_file(tmp_path):
    vis = visualizer()
    out = tmp_path / 'pic.png'
    drawn = vis.add_datasample('x', np.zeros((64, 64, 3), np.uint8),
                               cls_sample(), out_file=str(out))
    from PIL import Image
    assert Image.open(out).size == (drawn.shape[1], drawn.shape[0])
