"""Pictures of test predictions: the image, its text, the answer."""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.hooks import Hook

from mmfusion.registry import HOOKS


@HOOKS.register_module()
class PredictionVisualizationHook(Hook):
    """Write one picture per test sample (up to ``max_images``) to ``out_dir``.

    Each picture is the input image (enlarged by ``scale`` so small
    benchmark images stay legible) with the text, the predicted class and
    score, and the ground truth written on it, drawn with the runner's
    mmengine Visualizer.
    """

    def __init__(self, out_dir: str, max_images: int = 50,
                 scale: int = 4) -> None:
        self.out_dir = out_dir
        self.max_images = max_images
        self.scale = scale
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
            out = osp.join(self.out_dir, f'{self._count:05d}_'
                           f'{osp.splitext(osp.basename(sample.img_path))[0]}'
                           '.png')
            mmcv.imwrite(vis.get_image()[..., ::-1], out)
            self._count += 1
