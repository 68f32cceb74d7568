"""Pictures of (image, text) samples and their predictions."""
from __future__ import annotations

import math
import textwrap
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer

from mmfusion.registry import VISUALIZERS

from .attention import attention_heatmap, overlay_heatmap

#: Box and mask colours (RGB), one per class index, cycling.
PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 160, 255), (255, 200, 0), (200, 80, 255),
    (0, 210, 160), (255, 128, 0), (160, 255, 64), (255, 96, 200))
GOOD, BAD, NEUTRAL = (80, 230, 80), (255, 80, 80), (255, 255, 255)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def class_name(index: Optional[int], classes: Optional[Sequence[str]]) -> str:
    """``classes[index]``, or the index as text when there is no name."""
    if index is None:
        return '-'
    if classes is not None and 0 <= index < len(classes):
        return str(classes[index])
    return str(index)


def _is_multi_label(sample: BaseDataElement) -> bool:
    label = sample.get('pred_label')
    score = sample.get('pred_score')
    return (label is not None and score is not None
            and _np(label).size == _np(score).size > 1)


def sample_text(sample: Optional[BaseDataElement],
                text: Optional[str] = None) -> Optional[str]:
    """The sample's text: ``text`` if given, else its metainfo's."""
    if text is not None or sample is None:
        return text
    return sample.metainfo.get('text')


@VISUALIZERS.register_module()
class MultimodalVisualizer(Visualizer):
    """mmengine's Visualizer for (image, text) samples and their predictions.

    :meth:`add_datasample` draws one picture: the image (enlarged to at
    least ``min_size`` pixels on its shorter side, so 64 px benchmark images
    stay legible), with the prediction drawn on it, and below it a panel
    with the text, the prediction and the ground truth written out. What is
    drawn follows the data sample's fields, so one visualiser serves every
    task:

    - classification (``pred_score``/``pred_label``, ``gt_label``): the
      predicted class and score as a tag on the image (green when it equals
      the ground truth, red when not);
    - detection (``pred_instances``/``gt_instances`` with ``bboxes``,
      ``labels``, ``scores``): boxes with class and score, predictions with
      a score below ``pred_score_thr`` left out; with both, ground truth on
      the left and prediction on the right, as mmdet's visualiser does;
    - segmentation (``pred_sem_seg``/``gt_sem_seg``): masks of every class
      but the background (index 0 when the first class is a background or
      there are two classes) and the ignore index 255, overlaid;
    - attention (``attention`` ``(heads, L_text, H * W)`` and meta
      ``attention_hw``, which ``MultimodalClassifier`` stores in predict
      mode with ``return_attention``): one more image, the heat-map of the
      text's attention over the image positions (jet: red is high), the
      mean over heads and text tokens, or the tokens in ``token_index``.

    Args:
        name, image, vis_backends, save_dir, fig_save_cfg, fig_show_cfg:
            as mmengine's :class:`~mmengine.visualization.Visualizer`.
        min_size: the shorter image side is enlarged (nearest neighbour, by
            an integer factor) to at least this many pixels.
        font_size: size of the written text, in points.
        heatmap_alpha: opacity of the attention heat-map.
        mask_alpha: opacity of segmentation masks.
        line_width: width of box outlines, in pixels.
        panel_color: background colour (RGB) of the text panel.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 fig_save_cfg: dict = dict(frameon=False),
                 fig_show_cfg: dict = dict(frameon=False),
                 min_size: int = 256,
                 font_size: int = 10,
                 heatmap_alpha: float = 0.5,
                 mask_alpha: float = 0.5,
                 line_width: int = 2,
                 panel_color: Tuple[int, int, int] = (24, 24, 24)) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends,
                         save_dir=save_dir, fig_save_cfg=fig_save_cfg,
                         fig_show_cfg=fig_show_cfg)
        self.min_size = int(min_size)
        self.font_size = font_size
        self.heatmap_alpha = heatmap_alpha
        self.mask_alpha = mask_alpha
        self.line_width = line_width
        self.panel_color = tuple(panel_color)

    # ---------------------------------------------------------- geometry
    def _line_px(self) -> int:
        return int(math.ceil(self.font_size * self.dpi / 72.0 * 1.45))

    def _chars_per_line(self, width: int) -> int:
        char_px = self.font_size * self.dpi / 72.0 * 0.62
        return max(12, int((width - 8) / char_px))

    def scale_for(self, shape: Sequence[int]) -> int:
        """The integer enlargement for an image of ``shape`` (H, W)."""
        short = max(1, min(int(shape[0]), int(shape[1])))
        return max(1, int(math.ceil(self.min_size / short)))

    @staticmethod
    def _enlarge(image: np.ndarray, scale: int) -> np.ndarray:
        if scale == 1:
            return image
        return np.repeat(np.repeat(image, scale, 0), scale, 1)

    # ------------------------------------------------------- task drawers
    def _draw_label_tag(self, image: np.ndarray, sample: BaseDataElement,
                        classes, draw_gt: bool) -> np.ndarray:
        self.set_image(image)
        score = _np(sample.pred_score).reshape(-1)
        gt = sample.get('gt_label') if draw_gt else None
        if _is_multi_label(sample):
            on = np.flatnonzero(_np(sample.pred_label).reshape(-1) > 0)
            tag = ', '.join(class_name(int(i), classes) for i in on) or \
                '(none)'
            colour = NEUTRAL
            if gt is not None:
                colour = GOOD if set(on.tolist()) == set(np.flatnonzero(
                    _np(gt).reshape(-1) > 0).tolist()) else BAD
        else:
            pred = int(_np(sample.pred_label).reshape(-1)[0])
            tag = f'{class_name(pred, classes)} {score[pred]:.2f}'
            colour = NEUTRAL
            if gt is not None:
                colour = GOOD if int(_np(gt).reshape(-1)[0]) == pred else BAD
        self.draw_texts([tag], np.array([[4, 4]]),
                        font_sizes=self.font_size + 2,
                        colors=[tuple(colour)],
                        bboxes=dict(facecolor='black', alpha=0.6, pad=2,
                                    edgecolor='none'))
        return self.get_image()

    def _draw_instances(self, image: np.ndarray, instances, classes,
                        scale: int, score_thr: Optional[float]
                        ) -> Tuple[np.ndarray, int]:
        self.set_image(image)
        bboxes = instances.get('bboxes')
        if bboxes is None or len(bboxes) == 0:
            return self.get_image(), 0
        bboxes = _np(getattr(bboxes, 'tensor', bboxes)).reshape(-1, 4)
        labels = instances.get('labels')
        labels = (_np(labels).reshape(-1).astype(int) if labels is not None
                  else np.zeros(len(bboxes), dtype=int))
        scores = instances.get('scores')
        scores = _np(scores).reshape(-1) if scores is not None else None
        keep = np.ones(len(bboxes), dtype=bool)
        if scores is not None and score_thr is not None:
            keep = scores >= score_thr
        if not keep.any():
            return self.get_image(), 0
        boxes = bboxes[keep] * scale
        labels = labels[keep]
        colours = [PALETTE[lb % len(PALETTE)] for lb in labels]
        self.draw_bboxes(boxes, edge_colors=colours,
                         line_widths=self.line_width)
        texts = []
        for j, lb in enumerate(labels):
            t = class_name(int(lb), classes)
            if scores is not None:
                t += f' {scores[keep][j]:.2f}'
            texts.append(t)
        self.draw_texts(texts, boxes[:, :2] + 2, font_sizes=self.font_size,
                        colors='white',
                        bboxes=[dict(facecolor=tuple(v / 255 for v in c),
                                     alpha=0.6, pad=1, edgecolor='none')
                                for c in colours])
        return self.get_image(), int(keep.sum())

    def _draw_sem_seg(self, image: np.ndarray, sem_seg, classes,
                      scale: int) -> Tuple[np.ndarray, List[int]]:
        self.set_image(image)
        data = _np(getattr(sem_seg, 'data', sem_seg))
        data = data.reshape(-1, *data.shape[-2:])[0]
        data = self._enlarge(data[..., None], scale)[..., 0]
        data = data[:image.shape[0], :image.shape[1]]
        skip = {255}
        if classes is None or len(classes) <= 2 or str(
                classes[0]).lower() in ('background', 'bg', '_background_'):
            skip.add(0)
        present = [int(v) for v in np.unique(data) if int(v) not in skip]
        if present:
            masks = np.stack([data == v for v in present])
            self.draw_binary_masks(
                masks, colors=[PALETTE[v % len(PALETTE)] for v in present],
                alphas=self.mask_alpha)
        return self.get_image(), present

    def _attention_panel(self, image: np.ndarray, sample: BaseDataElement,
                         ori_shape: Sequence[int], scale: int,
                         token_index) -> Optional[np.ndarray]:
        attn = sample.get('attention')
        hw = sample.metainfo.get('attention_hw')
        if attn is None or hw is None:
            return None
        meta = sample.metainfo
        tokens = meta.get('text_tokens')
        heat = attention_heatmap(
            attn, hw, out_shape=ori_shape, img_shape=meta.get('img_shape'),
            pad_shape=meta.get('pad_shape', meta.get('batch_input_shape')),
            num_tokens=len(tokens) if tokens else None,
            token_index=token_index)
        heat = self._enlarge(heat[..., None], scale)[..., 0]
        return overlay_heatmap(image, heat, self.heatmap_alpha)

    def _caption(self, image: np.ndarray, caption: str) -> np.ndarray:
        """``caption`` in the bottom-left corner of a panel."""
        self.set_image(image)
        self.draw_texts([caption], np.array([[4, image.shape[0] - 4]]),
                        font_sizes=self.font_size, colors=['white'],
                        vertical_alignments='bottom',
                        bboxes=[dict(facecolor='black', alpha=0.6, pad=2,
                                     edgecolor='none')])
        return self.get_image()

    # ------------------------------------------------------------ drawing
    def draw_sample(self,
                    image: np.ndarray,
                    data_sample: Optional[BaseDataElement] = None,
                    text: Optional[str] = None,
                    classes: Optional[Sequence[str]] = None,
                    draw_gt: bool = True,
                    draw_pred: bool = True,
                    draw_attention: bool = True,
                    token_index=None,
                    pred_score_thr: Optional[float] = 0.3) -> np.ndarray:
        """The picture of one sample, as an RGB array (see the class doc).

        Args:
            image: the RGB ``(H, W, 3)`` image (the original image for
                predictions, whose boxes and masks are in its coordinates).
            data_sample: its data sample (ground truth and/or prediction).
            text: the sample's text (default: ``data_sample.metainfo
                ['text']``).
            classes: class names (default: ``dataset_meta['classes']``).
        """
        if classes is None and self.dataset_meta:
            classes = self.dataset_meta.get('classes')
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, -1)
        ori_shape = image.shape[:2]
        scale = self.scale_for(ori_shape)
        base = self._enlarge(image, scale)
        sample = data_sample if data_sample is not None else \
            BaseDataElement()
        text = sample_text(data_sample, text)
        lines: List[Tuple[str, Tuple[int, int, int]]] = []
        panels: List[np.ndarray] = []

        has_pred_cls = draw_pred and 'pred_score' in sample and \
            'pred_label' in sample
        if has_pred_cls:
            panels.append(self._draw_label_tag(base, sample, classes,
                                               draw_gt))
            lines.extend(self._cls_lines(sample, classes, draw_gt))
        elif 'gt_label' in sample and draw_gt:
            gt = _np(sample.gt_label).reshape(-1)
            names = ([class_name(int(i), classes) for i in np.flatnonzero(
                gt > 0)] if gt.size > 1 else [class_name(int(gt[0]),
                                                          classes)])
            lines.append(('gt: ' + ', '.join(names), NEUTRAL))

        for field, what in (('instances', 'boxes'), ('sem_seg', 'mask')):
            gt_field, pred_field = f'gt_{field}', f'pred_{field}'
            drew_gt = draw_gt and gt_field in sample
            drew_pred = draw_pred and pred_field in sample
            if not (drew_gt or drew_pred):
                continue
            for show, key, thr, who in ((drew_gt, gt_field, None, 'gt'),
                                        (drew_pred, pred_field,
                                         pred_score_thr, 'pred')):
                if not show:
                    continue
                if field == 'instances':
                    img, n = self._draw_instances(base, sample.get(key),
                                                  classes, scale, thr)
                    extra = f' >= {thr}' if thr is not None and \
                        who == 'pred' else ''
                    lines.append((f'{who}: {n} boxes{extra}', NEUTRAL))
                else:
                    img, present = self._draw_sem_seg(base, sample.get(key),
                                                      classes, scale)
                    names = ', '.join(class_name(v, classes)
                                      for v in present) or '(empty)'
                    lines.append((f'{who} mask: {names}', NEUTRAL))
                if drew_gt and drew_pred:
                    img = self._caption(img, who)
                panels.append(img)

        unknown = sample.metainfo.get('unknown_tokens')
        if unknown:
            lines.append(('not in the vocabulary: ' + ', '.join(unknown),
                          NEUTRAL))
        if not panels:
            panels.append(base)
        if draw_pred and draw_attention:
            heat = self._attention_panel(base, sample, ori_shape, scale,
                                         token_index)
            if heat is not None:
                panels.append(self._caption(heat, 'attention'))
                lines.append((self._attention_caption(sample, token_index),
                              NEUTRAL))
        return self._compose(panels, text, lines)

    @staticmethod
    def _cls_lines(sample, classes, draw_gt):
        score = _np(sample.pred_score).reshape(-1)
        gt = sample.get('gt_label') if draw_gt else None
        lines = []
        if _is_multi_label(sample):
            on = np.flatnonzero(_np(sample.pred_label).reshape(-1) > 0)
            pred = ', '.join(f'{class_name(int(i), classes)} '
                             f'{score[i]:.2f}' for i in on) or '(none)'
            colour = NEUTRAL
            if gt is not None:
                gt_on = np.flatnonzero(_np(gt).reshape(-1) > 0)
                colour = GOOD if set(on) == set(gt_on) else BAD
                lines.append((f'pred: {pred}', colour))
                lines.append(('gt: ' + (', '.join(
                    class_name(int(i), classes) for i in gt_on) or '(none)'),
                    NEUTRAL))
            else:
                lines.append((f'pred: {pred}', colour))
            return lines
        pred = int(_np(sample.pred_label).reshape(-1)[0])
        order = np.argsort(-score)[:3]
        others = '  '.join(f'{class_name(int(i), classes)} {score[i]:.2f}'
                           for i in order if int(i) != pred)
        text = f'pred: {class_name(pred, classes)} ({score[pred]:.2f})'
        if others:
            text += f'   [{others}]'
        colour = NEUTRAL
        if gt is not None:
            gt_i = int(_np(gt).reshape(-1)[0])
            colour = GOOD if gt_i == pred else BAD
            text += f'   gt: {class_name(gt_i, classes)}'
        lines.append((text, colour))
        return lines

    @staticmethod
    def _attention_caption(sample, token_index) -> str:
        attn = sample.attention
        heads = int(attn.shape[0]) if attn.dim() == 3 else 1
        tokens = sample.metainfo.get('text_tokens')
        if token_index is None:
            n = len(tokens) if tokens else int(attn.shape[-2])
            which = f'mean over {n} text tokens'
        else:
            idx = [token_index] if isinstance(token_index, int) else list(
                token_index)
            which = 'tokens ' + ', '.join(
                repr(tokens[i]) if tokens and -len(tokens) <= i < len(tokens)
                else str(i) for i in idx)
        return (f'attention: the text over the image ({which}, {heads} '
                'heads; red = high)')

    def _compose(self, panels: List[np.ndarray], text: Optional[str],
                 lines: List[Tuple[str, Tuple[int, int, int]]]
                 ) -> np.ndarray:
        gap = 4
        height = max(p.shape[0] for p in panels)
        width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
        width = max(width, 256)
        wrap = self._chars_per_line(width)
        rows: List[Tuple[str, Tuple[int, int, int]]] = []
        shown = text if text is not None else '<no text>'
        for i, part in enumerate(textwrap.wrap(f'text: {shown}', wrap) or
                                 ['text:']):
            rows.append((part, NEUTRAL))
        for line, colour in lines:
            for part in textwrap.wrap(line, wrap) or ['']:
                rows.append((part, colour))
        line_px = self._line_px()
        panel_h = line_px * len(rows) + 8
        canvas = np.empty((height + panel_h, width, 3), dtype=np.uint8)
        canvas[...] = self.panel_color
        x = 0
        for p in panels:
            canvas[:p.shape[0], x:x + p.shape[1]] = p[..., :3]
            x += p.shape[1] + gap
        self.set_image(canvas)
        positions = np.array([[4, height + 4 + i * line_px]
                              for i in range(len(rows))])
        self.draw_texts([r[0] for r in rows], positions,
                        font_sizes=self.font_size,
                        colors=[tuple(r[1]) for r in rows],
                        font_families='monospace')
        return self.get_image()

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[BaseDataElement] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: Optional[float] = 0.3,
                       step: int = 0,
                       text: Optional[str] = None,
                       classes: Optional[Sequence[str]] = None,
                       draw_attention: bool = True,
                       token_index=None) -> np.ndarray:
        """Draw one sample (see :meth:`draw_sample`), then show it, write it
        to ``out_file`` or, without either, hand it to the backends as
        ``name`` at ``step`` (mmdet's convention). Returns the picture (RGB).
        """
        drawn = self.draw_sample(image, data_sample, text=text,
                                 classes=classes, draw_gt=draw_gt,
                                 draw_pred=draw_pred,
                                 draw_attention=draw_attention,
                                 token_index=token_index,
                                 pred_score_thr=pred_score_thr)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)
        elif not show:
            self.add_image(name, drawn, step)
        return drawn

