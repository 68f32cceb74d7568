"""Pictures of test predictions: the image, its text, the answer."""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.hooks import Hook

from mmfusion.registry import HOOKS


@HOOKS.register_module()
class PredictionVisualizationHook(Hook):
    """Write one picture per test sample (up to ``max_images``) to ``out_dir``.

    Each picture is the input image (enlarged so small benchmark images
    stay legible) with the text, the prediction and the ground truth, drawn
    by the runner's visualiser: :class:`MultimodalVisualizer` (the default
    in ``configs/runtime``) draws every task's prediction and, for a model
    that stores attention, the heat-map; a plain mmengine ``Visualizer``
    gets the image enlarged by ``scale`` with the text written below.
    Detection samples (``pred_instances``) drawn by another visualiser, e.g.
    mmdet's ``DetLocalVisualizer`` (configs/base_det.yaml), show the true
    boxes beside the predicted ones (score >= ``score_thr``) and the
    phrase below (:meth:`_draw_detection`). Segmentation samples
    (``pred_sem_seg``) drawn by another visualiser, e.g. mmseg's
    ``SegLocalVisualizer`` (configs/base_seg.yaml), show the true mask
    beside the predicted one, overlaid on the image, with the phrase and
    the sample's IoU below (:meth:`_draw_segmentation`).
    """

    def __init__(self, out_dir: str, max_images: int = 50,
                 scale: int = 4, score_thr: float = 0.3,
                 min_size: int = 256) -> None:
        self.out_dir = out_dir
        self.max_images = max_images
        self.scale = scale
        # Detection: predicted boxes drawn from this score, and images
        # enlarged to at least min_size pixels on the shorter side.
        self.score_thr = score_thr
        self.min_size = min_size
        self._count = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        if not outputs or self._count >= self.max_images:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        classes = (runner.test_dataloader.dataset.metainfo or {}).get(
            'classes', ())
        vis = runner.visualizer
        for sample in outputs:
            if self._count >= self.max_images:
                return
            img = mmcv.imread(sample.img_path, channel_order='rgb')
            out = osp.join(self.out_dir, f'{self._count:05d}_'
                           f'{osp.splitext(osp.basename(sample.img_path))[0]}'
                           '.png')
            if hasattr(vis, 'draw_sample'):  # MultimodalVisualizer
                drawn = vis.draw_sample(img, sample, classes=classes or None,
                                        draw_gt=True, draw_pred=True)
                mmcv.imwrite(drawn[..., ::-1], out)
                self._count += 1
                continue
            if 'pred_instances' in sample:  # detection
                mmcv.imwrite(self._draw_detection(vis, img, sample, runner,
                                                  out)[..., ::-1], out)
                self._count += 1
                continue
            if 'pred_sem_seg' in sample:  # segmentation
                mmcv.imwrite(self._draw_segmentation(vis, img, sample,
                                                     runner)[..., ::-1], out)
                self._count += 1
                continue
            img = np.repeat(np.repeat(img, self.scale, 0), self.scale, 1)
            canvas = np.zeros((img.shape[0] + 48, max(img.shape[1], 320), 3),
                              dtype=np.uint8)
            canvas[:img.shape[0], :img.shape[1]] = img
            vis.set_image(canvas)
            pred = int(sample.pred_label.reshape(-1)[0])
            score = float(sample.pred_score.reshape(-1)[pred])
            gt = int(sample.gt_label.reshape(-1)[0]) if 'gt_label' in sample \
                else None
            name = lambda i: classes[i] if i is not None and i < len(
                classes) else str(i)
            text = sample.metainfo.get('text') or '<no text>'
            vis.draw_texts(f'{text}\npred: {name(pred)} ({score:.2f})  '
                           f'gt: {name(gt)}',
                           np.array([4, img.shape[0] + 2]), font_sizes=10,
                           colors='white')
            mmcv.imwrite(vis.get_image()[..., ::-1], out)
            self._count += 1

    def _draw_detection(self, vis, img: np.ndarray, sample, runner,
                        out: str) -> np.ndarray:
        """True boxes (left) and predictions with a score of at least
        ``score_thr`` (right), by mmdet's ``DetLocalVisualizer`` when the
        runner has one (plain box outlines otherwise), with the phrase
        written below. The image and boxes are enlarged so that small
        images stay legible; true boxes are the sample's ``instances``
        (original image coordinates), else its ``gt_instances``."""
        import torch
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        scale = max(1, int(np.ceil(self.min_size / max(1, min(
            img.shape[:2])))))
        big = np.ascontiguousarray(
            np.repeat(np.repeat(img, scale, 0), scale, 1))
        gt = InstanceData()
        instances = sample.metainfo.get('instances')
        if instances is not None:
            gt.bboxes = torch.tensor([i['bbox'] for i in instances],
                                     dtype=torch.float32).reshape(-1, 4)
            gt.labels = torch.tensor([int(i['bbox_label'])
                                      for i in instances], dtype=torch.long)
        elif 'gt_instances' in sample:
            boxes = sample.gt_instances.bboxes
            gt.bboxes = getattr(boxes, 'tensor', boxes).float().reshape(-1, 4)
            gt.labels = sample.gt_instances.labels
        else:
            gt.bboxes = torch.zeros(0, 4)
            gt.labels = torch.zeros(0, dtype=torch.long)
        gt.bboxes = gt.bboxes * scale
        pred_src = sample.pred_instances
        pred = InstanceData(bboxes=pred_src.bboxes.detach().cpu().float() *
                            scale, scores=pred_src.scores.detach().cpu(),
                            labels=pred_src.labels.detach().cpu())
        drawn = DetDataSample(gt_instances=gt, pred_instances=pred)
        if hasattr(vis, 'add_datasample') and hasattr(vis, 'bbox_color'):
            if not getattr(vis, 'dataset_meta', None):
                vis.dataset_meta = runner.test_dataloader.dataset.metainfo
            vis.add_datasample(osp.basename(out), big, drawn,
                               draw_gt=True, draw_pred=True,
                               pred_score_thr=self.score_thr, out_file=out)
            panels = vis.get_image()
        else:  # a plain mmengine Visualizer: outlines only
            keep = pred.scores >= self.score_thr
            halves = []
            for boxes, colour in ((gt.bboxes, 'green'),
                                  (pred.bboxes[keep], 'red')):
                vis.set_image(big)
                if len(boxes):
                    vis.draw_bboxes(boxes, edge_colors=colour)
                halves.append(vis.get_image())
            panels = np.concatenate(halves, axis=1)
        canvas = np.zeros((panels.shape[0] + 40, panels.shape[1], 3),
                          dtype=np.uint8)
        canvas[:panels.shape[0]] = panels
        vis.set_image(canvas)
        text = sample.metainfo.get('text') or '<no text>'
        n_gt = len(gt.bboxes)
        n_pred = int((pred.scores >= self.score_thr).sum())
        vis.draw_texts(f'{text}\nleft: truth ({n_gt} boxes)   right: '
                       f'prediction ({n_pred} with score >= '
                       f'{self.score_thr:g})',
                       np.array([4, panels.shape[0] + 2]), font_sizes=10,
                       colors='white')
        return vis.get_image()

    def _draw_segmentation(self, vis, img: np.ndarray, sample,
                           runner) -> np.ndarray:
        """True mask (left) and prediction (right) overlaid on the image by
        mmseg's ``SegLocalVisualizer`` when the runner has one (a plain
        overlay otherwise), enlarged to at least ``min_size`` pixels, with
        the phrase and the sample's IoU of the non-background classes
        written below. Masks of another size than the image (e.g. kept at
        a resized size) are resized to it (nearest)."""
        import torch
        import torch.nn.functional as F
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        meta = runner.test_dataloader.dataset.metainfo or {}
        classes = list(meta.get('classes') or ('background', 'referred'))
        palette = meta.get('palette') or [
            [0, 0, 0]] + [[255, 64, 64]] * (len(classes) - 1)
        scale = max(1, int(np.ceil(self.min_size / max(1, min(
            img.shape[:2])))))
        big = np.ascontiguousarray(
            np.repeat(np.repeat(img, scale, 0), scale, 1))

        def enlarged(data) -> torch.Tensor:
            mask = data.detach().cpu().long().reshape(1, 1,
                                                      *data.shape[-2:])
            return F.interpolate(mask.float(), size=big.shape[:2],
                                 mode='nearest').long()[0]

        pred = enlarged(sample.pred_sem_seg.data)
        gt = enlarged(sample.gt_sem_seg.data) if 'gt_sem_seg' in sample \
            else None
        if hasattr(vis, 'add_datasample') and hasattr(vis, '_draw_sem_seg'):
            if not getattr(vis, 'dataset_meta', None):
                vis.set_dataset_meta(classes=classes, palette=palette)
            drawn = SegDataSample(pred_sem_seg=PixelData(data=pred))
            if gt is not None:
                drawn.gt_sem_seg = PixelData(data=gt)
            # Written to a file and read back: the visualiser keeps only the
            # last panel as its image, and without out_file it would also
            # store the picture in its backends (the work dir).
            with tempfile.TemporaryDirectory() as tmp:
                path = osp.join(tmp, 'segmentation.png')
                vis.add_datasample('segmentation', big, drawn, draw_gt=True,
                                   draw_pred=True, with_labels=False,
                                   out_file=path)
                panels = mmcv.imread(path, channel_order='rgb')
        else:  # a plain mmengine Visualizer: the masks in red
            halves = []
            for mask in ([gt] if gt is not None else []) + [pred]:
                layer = big.copy()
                on = (mask[0].numpy() > 0) & (mask[0].numpy() != 255)
                layer[on] = (0.5 * layer[on] + [127, 32, 32]).astype(
                    np.uint8)
                halves.append(layer)
            panels = np.concatenate(halves, axis=1)
        canvas = np.zeros((panels.shape[0] + 40, max(panels.shape[1], 320),
                           3), dtype=np.uint8)
        canvas[:panels.shape[0], :panels.shape[1]] = panels
        vis.set_image(canvas)
        text = sample.metainfo.get('text') or '<no text>'
        line = ('left: truth   right: prediction' if gt is not None else
                'prediction (no true mask)')
        if gt is not None:
            valid = gt != 255
            fg_gt, fg_pred = (gt > 0) & valid, (pred > 0) & valid
            union = int((fg_gt | fg_pred).sum())
            if union:
                line += f'   IoU {int((fg_gt & fg_pred).sum()) / union:.2f}'
        vis.draw_texts(f'{text}\n{line}',
                       np.array([4, panels.shape[0] + 2]), font_sizes=10,
                       colors='white')
        return vis.get_image()
