"""Use a trained model: (image, text) pairs in, task-shaped predictions out.

In the manner of mmdet's ``DetInferencer``::

    from mmfusion.apis import MultimodalInferencer

    infer = MultimodalInferencer('work_dirs/cls_shapes',        # or a YAML
                                 'work_dirs/cls_shapes/iter_9000.pth')
    out = infer(('scene.png', 'is the circle red?'))
    out['predictions'][0]   # {'task': 'classification', 'pred_class': 'yes',
                            #  'pred_score': 0.97, 'scores': [...], ...}
    infer([('a.png', 'is the cube red?'), (bgr_array, 'how many?')],
          out_dir='outputs')                 # + outputs/vis/a.png, ...
    infer(['a.png', 'b.png'], texts='is there a circle?', return_vis=True)
"""
from __future__ import annotations

import inspect
import json
import os
import os.path as osp
import warnings
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.infer import BaseInferencer
from mmengine.logging import MMLogger, print_log
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer

from mmfusion.registry import INFERENCERS, MODELS

from .predictions import dumps_prediction, jsonable, sample_to_prediction

ImageInput = Union[str, np.ndarray, None]
PairInput = Union[Tuple[ImageInput, Optional[str]], Dict[str, Any]]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
#: Pipeline transforms left out at inference (they read ground truth).
ANNOTATION_TRANSFORMS = ('LoadAnnotations', 'LoadPanopticAnnotations',
                         'LoadTrackAnnotations')


def _type_name(t: Any) -> str:
    if isinstance(t, dict):
        name = t.get('type', '')
        return name if isinstance(name, str) else getattr(name, '__name__',
                                                          '')
    return type(t).__name__


def load_inference_config(config: Union[str, Config, dict],
                          overrides: Sequence[str] = ()) -> Config:
    """An mmengine Config from an experiment (name or YAML anywhere), a
    work dir (its ``config.yaml``), or a ready Config/dict."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config(dict(config))
    from mmfusion.apis.runner_config import compose_and_check
    from mmfusion.config import to_mmengine_config
    cfg, path = compose_and_check(str(config), overrides)
    return to_mmengine_config(cfg, filename=None)


def read_checkpoint(path: str) -> dict:
    """Load a checkpoint file onto the CPU, safely (tensors and plain data
    only: :func:`mmfusion.utils.checkpoint.safe_load_checkpoint`)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint `{path}` does not exist')
    from mmfusion.utils.checkpoint import safe_load_checkpoint
    return safe_load_checkpoint(path, map_location='cpu')


@INFERENCERS.register_module()
class MultimodalInferencer(BaseInferencer):
    """Predict with a trained mmfusion model on (image, text) pairs.

    Args:
        model: the config: an experiment name or YAML (any folder), a work
            dir or its ``config.yaml``, or an mmengine Config / dict. None
            takes the config the checkpoint carries (``meta['cfg']``).
        weights: the checkpoint (``.pth``). Its meta restores the tokenizer
            (so any text works: words the model never saw become
            ``<unk>``) and the class names. Without it the model keeps its
            initial weights (a warning says so) and needs a fitted
            tokenizer in its config.
        device: ``cpu``, ``cuda``, ``cuda:1``; default: CUDA when present.
        overrides: Hydra overrides applied to the config
            (``model.return_attention=true``).
        classes: class names (default: the checkpoint's
            ``meta['dataset_meta']['classes']``, else the indices).
        scope: registry scope (``mmfusion``).
        show_progress: a progress bar over the batches.

    Calling it: ``inferencer(inputs, texts=None, batch_size=1, ...)``, see
    :meth:`__call__`. Each prediction is a dict shaped by the task (see
    :mod:`mmfusion.apis.predictions`): classification gives ``scores``,
    ``pred_label``, ``pred_class`` and ``pred_score``.
    """

    preprocess_kwargs: set = set()
    forward_kwargs: set = {'return_attention'}
    visualize_kwargs: set = {'return_vis', 'show', 'wait_time', 'draw_pred',
                             'draw_attention', 'token_index',
                             'pred_score_thr', 'img_out_dir', 'no_save_vis'}
    postprocess_kwargs: set = {'print_result', 'pred_out_dir',
                               'return_datasample', 'no_save_pred'}

    def __init__(self,
                 model: Union[str, Config, dict, None] = None,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 overrides: Sequence[str] = (),
                 classes: Optional[Sequence[str]] = None,
                 scope: str = 'mmfusion',
                 show_progress: bool = False) -> None:
        from mmfusion.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        self._checkpoint = read_checkpoint(weights) if weights else None
        if model is None:
            cfg = self._config_from_checkpoint(weights)
        else:
            cfg = load_inference_config(model, overrides)
        self._user_classes = list(classes) if classes is not None else None
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(model=cfg, weights=weights, device=device,
                             scope=scope, show_progress=show_progress)
        self._checkpoint = None  # weights are in the model now
        if self.visualizer is not None:
            self.visualizer.dataset_meta = {'classes': self.classes}

    # ------------------------------------------------------------ set-up
    def _config_from_checkpoint(self, weights: Optional[str]) -> Config:
        if self._checkpoint is None:
            raise ValueError('MultimodalInferencer needs a config (`model`) '
                             'or a checkpoint (`weights`) that carries one')
        meta = self._checkpoint.get('meta', {})
        text = meta.get('cfg') or self._checkpoint.get(
            'message_hub', {}).get('runtime_info', {}).get('cfg')
        if not text:
            raise ValueError(f'checkpoint `{weights}` carries no config: '
                             'pass the experiment or the work dir as `model`')
        # Read as data: Config.fromstring(text, '.py') would run the text
        # as Python, i.e. run code from an untrusted checkpoint.
        from mmfusion.utils.checkpoint import (config_from_text,
                                               unsafe_load_enabled)
        if unsafe_load_enabled():
            return Config.fromstring(text, file_format='.py')
        return Config(config_from_text(text, f'checkpoint `{weights}`'))

    def _init_model(self, cfg, weights, device='cpu') -> torch.nn.Module:
        from mmengine.runner.checkpoint import _load_checkpoint_to_model
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        checkpoint = self._checkpoint
        meta = (checkpoint or {}).get('meta', {}) or {}
        if checkpoint is not None:
            _load_checkpoint_to_model(model, checkpoint)
            self._restore_tokenizer(model, checkpoint, weights)
        else:
            warnings.warn('MultimodalInferencer: no checkpoint, the model '
                          'keeps its initial (random) weights')
        dataset_meta = dict(meta.get('dataset_meta') or {})
        classes = self._user_classes or dataset_meta.get('classes') or \
            self._config_classes(cfg)
        self.classes = [str(c) for c in classes] if classes else None
        self.dataset_meta = dict(dataset_meta, classes=self.classes)
        model.dataset_meta = self.dataset_meta
        model.to(device)
        model.eval()
        return model

    @staticmethod
    def _config_classes(cfg) -> Optional[List[str]]:
        for key in ('test_dataloader', 'val_dataloader'):
            meta = (cfg.get(key) or {}).get('dataset', {}).get('metainfo')
            if meta and meta.get('classes'):
                return list(meta['classes'])
        return None

    @staticmethod
    def _restore_tokenizer(model, checkpoint: dict, weights: str) -> None:
        """As in training and testing: the TokenizerHook's own restore."""
        from mmfusion.engine.hooks.tokenizer_hook import (TokenizerHook,
                                                          get_tokenizer)
        runner = SimpleNamespace(model=model,
                                 logger=MMLogger.get_current_instance())
        TokenizerHook().after_load_checkpoint(runner, checkpoint)
        tokenizer = get_tokenizer(model)
        if tokenizer is not None and not getattr(tokenizer, 'is_fitted',
                                                 True):
            raise RuntimeError(
                f'checkpoint `{weights}` holds no tokenizer '
                "(meta['tokenizer']): checkpoints written by mmfusion's "
                'training carry it (TokenizerHook); without it the texts '
                'cannot be encoded as in training')

    def _init_pipeline(self, cfg) -> callable:
        pipeline = None
        test = cfg.get('test_dataloader') or {}
        if isinstance(test.get('dataset'), dict):
            pipeline = test['dataset'].get('pipeline')
        if pipeline is None:
            pipeline = cfg.get('test_pipeline')
        if pipeline is None:
            raise KeyError('the config has no test pipeline '
                           '(test_dataloader.dataset.pipeline)')
        pipeline = [t for t in pipeline
                    if not _type_name(t).split('.')[-1].startswith(
                        ANNOTATION_TRANSFORMS)]
        load_first = bool(pipeline) and 'LoadImage' in _type_name(
            pipeline[0])
        self._from_file = Compose(pipeline)
        self._from_array = Compose(pipeline[1:] if load_first else pipeline)
        self._loads_images = load_first
        return self._run_pipeline

    def _run_pipeline(self, item: Dict[str, Any]) -> dict:
        img, text = item['img'], item['text']
        if isinstance(img, str):
            if self._loads_images:
                out = self._from_file(dict(img_path=img, text=text))
                if out is None:
                    raise ValueError(f'the pipeline dropped `{img}`')
                return out
            img = mmcv.imread(img)  # BGR, as LoadImageFromFile
            if img is None:
                raise FileNotFoundError(f'cannot read image `{item["img"]}`')
            results = dict(img_path=item['img'])
        else:
            results = {}
        results['text'] = text
        if img is not None:
            arr = np.asarray(img)
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, -1)
            results.update(img=arr, img_shape=arr.shape[:2],
                           ori_shape=arr.shape[:2])
        out = self._from_array(results)
        if out is None:
            raise ValueError('the pipeline dropped an input')
        return out

    def _init_visualizer(self, cfg) -> Optional[Visualizer]:
        """A :class:`MultimodalVisualizer` whatever the config's visualiser:
        it draws every task's prediction and writes the text beside it."""
        from mmfusion.visualization import MultimodalVisualizer
        vis_cfg = dict(cfg.get('visualizer') or {})
        kwargs = {}
        if vis_cfg.get('type') in ('MultimodalVisualizer',
                                   MultimodalVisualizer):
            kwargs = {k: v for k, v in vis_cfg.items() if k not in (
                'type', 'vis_backends', 'save_dir', 'name', '_scope_')}
        return MultimodalVisualizer.get_instance(
            f'mmfusion-inferencer-{id(self)}', **kwargs)

    # ------------------------------------------------------------ inputs
    def _inputs_to_list(self, inputs, texts=None) -> List[Dict[str, Any]]:
        """A list of ``{'img': path|array|None, 'text': str|None}``."""
        if texts is not None:
            images = inputs
            if isinstance(images, str) and osp.isdir(images):
                images = sorted(
                    osp.join(images, f) for f in os.listdir(images)
                    if f.lower().endswith(IMAGE_EXTENSIONS))
            elif not isinstance(images, (list, tuple)):
                images = [images]
            images = list(images)
            if isinstance(texts, str):
                texts = [texts] * len(images)
            texts = list(texts)
            if len(texts) != len(images):
                raise ValueError(f'{len(images)} images but {len(texts)} '
                                 'texts: give one text, or one per image')
            return [self._item(i, t) for i, t in zip(images, texts)]
        if isinstance(inputs, dict) or (isinstance(inputs, tuple)
                                        and self._is_pair(inputs)):
            inputs = [inputs]
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(
                'inputs: an (image, text) tuple, a dict with `img` and '
                '`text`, a list of them, or images with `texts=`; got '
                f'{type(inputs).__name__}')
        items = []
        for x in inputs:
            if isinstance(x, dict):
                items.append(self._item(x.get('img', x.get('image')),
                                        x.get('text')))
            elif isinstance(x, (tuple, list)) and self._is_pair(x):
                items.append(self._item(x[0], x[1]))
            else:
                raise TypeError('each input must be an (image, text) pair '
                                'or a dict with `img` and `text` (or pass '
                                f'the texts with `texts=`); got {x!r:.80}')
        return items

    @staticmethod
    def _is_pair(x) -> bool:
        return len(x) == 2 and (x[1] is None or isinstance(x[1], str)) and (
            x[0] is None or isinstance(x[0], (str, np.ndarray)))

    @staticmethod
    def _item(img, text) -> Dict[str, Any]:
        if img is not None and not isinstance(img, (str, np.ndarray)):
            img = np.asarray(img)  # PIL image, list: via numpy
        if isinstance(img, str) and not osp.isfile(img):
            raise FileNotFoundError(f'image `{img}` does not exist')
        if text is not None and not isinstance(text, str):
            raise TypeError(f'a text must be a str or None, got '
                            f'{type(text).__name__}')
        return {'img': img, 'text': text}

    @staticmethod
    def _names(items: List[Dict[str, Any]]) -> List[str]:
        names, seen = [], set()
        for i, item in enumerate(items):
            img = item['img']
            name = (osp.splitext(osp.basename(img))[0]
                    if isinstance(img, str) else f'{i:05d}')
            if name in seen:
                name = f'{name}_{i}'
            seen.add(name)
            names.append(name)
        return names

    # --------------------------------------------------------- inference
    @torch.no_grad()
    def forward(self, inputs: dict, return_attention: Optional[bool] = None
                ) -> List[BaseDataElement]:
        """Preprocess a collated batch and predict; returns data samples
        (with the text's tokens and its out-of-vocabulary ones in the
        metainfo)."""
        data = self.model.data_preprocessor(inputs, False)
        kwargs = {}
        want = True if return_attention is None else bool(return_attention)
        try:
            params = inspect.signature(self.model.forward).parameters
        except (TypeError, ValueError):
            params = {}
        if 'return_attention' in params:
            kwargs['return_attention'] = want
        samples = self.model(**data, mode='predict', **kwargs)
        self._add_tokens(samples)
        return samples

    def _add_tokens(self, samples: Sequence[BaseDataElement]) -> None:
        from mmfusion.engine.hooks.tokenizer_hook import get_tokenizer
        tok = get_tokenizer(self.model)
        if tok is None or not all(hasattr(tok, a) for a in (
                'tokenize', 'token_to_id', 'unk_id')):
            return
        limit = getattr(tok, 'max_length', None)
        for sample in samples:
            text = sample.metainfo.get('text')
            if text is None:
                continue
            tokens = tok.tokenize(text)[:limit]
            unknown = [t for t in tokens if tok.token_to_id(t) == tok.unk_id]
            sample.set_metainfo(dict(text_tokens=tokens,
                                     unknown_tokens=unknown))

    def __call__(self,
                 inputs,
                 texts: Union[str, Sequence[Optional[str]], None] = None,
                 batch_size: int = 1,
                 return_vis: bool = False,
                 show: bool = False,
                 wait_time: float = 0,
                 no_save_vis: bool = False,
                 draw_pred: bool = True,
                 draw_attention: bool = True,
                 token_index: Union[int, Sequence[int], None] = None,
                 pred_score_thr: float = 0.3,
                 return_datasamples: bool = False,
                 print_result: bool = False,
                 no_save_pred: bool = True,
                 out_dir: str = '',
                 return_attention: Optional[bool] = None) -> Dict[str, Any]:
        """Predict, and draw when asked.

        Args:
            inputs: an ``(image, text)`` tuple, a dict ``{'img', 'text'}``,
                or a list of them; or, with ``texts``, an image, a list of
                images or a folder of images. An image is a path or a BGR
                ``(H, W, 3)`` uint8 array (as ``mmcv.imread`` gives; mmdet's
                convention); None is an absent image, and a None text an
                absent text.
            texts: one text for every image, or one per image.
            batch_size: samples per forward pass.
            return_vis: return the pictures (RGB arrays).
            show: show each picture in a window.
            no_save_vis: with ``out_dir``, do not write the pictures.
            draw_pred, draw_attention, token_index, pred_score_thr: what
                :class:`~mmfusion.visualization.MultimodalVisualizer` draws.
            return_datasamples: predictions as data samples, not dicts.
            print_result: print each prediction.
            no_save_pred: with ``out_dir``, do not write
                ``OUT_DIR/preds/<name>.json`` (the default, as mmdet's).
            out_dir: pictures go to ``OUT_DIR/vis/<name>.png`` (the image's
                file name, or the input's index for arrays).
            return_attention: ask the model for its attention weights
                (default: yes, where the model's ``forward`` takes it; a
                fusion without attention gives none).

        Returns:
            ``{'predictions': [...], 'visualization': [...] or None}``.
        """
        items = self._inputs_to_list(inputs, texts)
        names = self._names(items)
        batches = self.preprocess(items, batch_size=batch_size)
        preds: List[BaseDataElement] = []
        if self.show_progress:
            from mmfusion.utils.progress import track
            batches = track(batches, total=-(-len(items) // batch_size),
                            desc='inference')
        for data in batches:
            preds.extend(self.forward(data,
                                      return_attention=return_attention))
        vis = self.visualize(
            items, preds, names=names, return_vis=return_vis, show=show,
            wait_time=wait_time, draw_pred=draw_pred,
            draw_attention=draw_attention, token_index=token_index,
            pred_score_thr=pred_score_thr,
            img_out_dir='' if no_save_vis else out_dir)
        return self.postprocess(preds, vis, return_datasamples,
                                names=names, print_result=print_result,
                                pred_out_dir='' if no_save_pred else out_dir)

    # ------------------------------------------------------------ output
    @staticmethod
    def _rgb(item: Dict[str, Any], sample: BaseDataElement) -> np.ndarray:
        img = item['img']
        if isinstance(img, str):
            return mmcv.imread(img, channel_order='rgb')
        if img is None:
            h, w = sample.metainfo.get('ori_shape') or (64, 64)
            return np.full((h, w, 3), 96, dtype=np.uint8)
        arr = np.asarray(img)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, -1)
        return np.ascontiguousarray(arr[..., 2::-1])  # BGR -> RGB

    def visualize(self, inputs: List[Dict[str, Any]],
                  preds: List[BaseDataElement],
                  names: Optional[List[str]] = None,
                  return_vis: bool = False, show: bool = False,
                  wait_time: float = 0, draw_pred: bool = True,
                  draw_attention: bool = True, token_index=None,
                  pred_score_thr: float = 0.3, img_out_dir: str = '',
                  **kwargs) -> Optional[List[np.ndarray]]:
        """Pictures of the predictions (None when none is asked for)."""
        if not (return_vis or show or img_out_dir) or \
                self.visualizer is None:
            return None
        names = names or self._names(inputs)
        results = []
        for item, sample, name in zip(inputs, preds, names):
            out_file = osp.join(img_out_dir, 'vis', f'{name}.png') \
                if img_out_dir else None
            drawn = self.visualizer.add_datasample(
                name, self._rgb(item, sample), sample, draw_gt=False,
                draw_pred=draw_pred, show=show, wait_time=wait_time,
                out_file=out_file, pred_score_thr=pred_score_thr,
                text=item['text'], classes=self.classes,
                draw_attention=draw_attention, token_index=token_index)
            results.append(drawn)
        return results

    def postprocess(self, preds: List[BaseDataElement],
                    visualization: Optional[List[np.ndarray]] = None,
                    return_datasample: bool = False,
                    names: Optional[List[str]] = None,
                    print_result: bool = False, pred_out_dir: str = '',
                    **kwargs) -> Dict[str, Any]:
        """``{'predictions': dicts (or data samples), 'visualization'}``;
        writes ``PRED_OUT_DIR/preds/<name>.json`` when given."""
        dicts = [sample_to_prediction(p, self.classes) for p in preds]
        if print_result:
            for d in dicts:
                print_log(json.dumps(jsonable(d)), logger='current')
        if pred_out_dir:
            os.makedirs(osp.join(pred_out_dir, 'preds'), exist_ok=True)
            for d, name in zip(dicts, names or self._names(
                    [{'img': d.get('img_path')} for d in dicts])):
                with open(osp.join(pred_out_dir, 'preds', f'{name}.json'),
                          'w') as f:
                    f.write(dumps_prediction(d) + '\n')
        return {'predictions': list(preds) if return_datasample else dicts,
                'visualization': visualization}
