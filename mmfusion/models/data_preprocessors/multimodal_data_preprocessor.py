"""Batch images and tokenise texts for a multimodal model."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmfusion.models.tokenizers import (NOT_FITTED_MESSAGE, BaseTokenizer,
                                       VocabTokenizer)
from mmfusion.registry import MODELS, TASK_UTILS


@MODELS.register_module()
class MultimodalDataPreprocessor(BaseDataPreprocessor):
    """Turn a pseudo-collated batch into the model's input tensors.

    Input (what mmengine's ``pseudo_collate`` makes of the pipeline output)::

        {'inputs': {'img': [uint8 (3, H_i, W_i) BGR tensor or None, ...]
                           or a stacked (B, 3, H, W) tensor,
                    'text': [str or None, ...]},
         'data_samples': [MultimodalDataSample, ...]}

    Output::

        {'inputs': {'img': float (B, 3, H, W), normalised, padded,
                    'text_ids': long (B, L), 'text_mask': bool (B, L),
                    'image_present': bool (B,), 'text_present': bool (B,)},
         'data_samples': [...]}

    Images are converted to float, flipped BGR -> RGB (when ``bgr_to_rgb``),
    normalised with ``mean``/``std``, then padded at the bottom and right to
    the largest image of the batch rounded up to ``pad_size_divisor``, with
    ``pad_value`` (in the normalised space, as mmengine's
    ``ImgDataPreprocessor`` does). A None image is absent: its tensor is
    ``pad_value`` everywhere and ``image_present`` is False. A text is
    present when it has at least one token (None and empty texts are not).
    ``inputs`` may also hold ``image_present``/``text_present`` (a ``(B,)``
    bool tensor or a list of bools, e.g. from the ``DropModality``
    transform): a False there marks that sample's modality absent too.
    Inputs that already hold ``text_ids`` (and optionally ``text_mask``) are
    not tokenised again. Other ``inputs`` keys pass through, moved to the
    device. Data samples get ``batch_input_shape`` and ``pad_shape`` meta;
    on the CPU they are the batch's own objects (not copies, see
    ``copy_data_samples``).

    Args:
        mean: per-channel mean (RGB order when ``bgr_to_rgb``); None skips
            normalisation.
        std: per-channel standard deviation; None skips normalisation.
        bgr_to_rgb: reverse the channel order of 3-channel images.
        pad_size_divisor: the padded height and width are multiples of it.
        pad_value: value of the padded pixels.
        tokenizer: a tokenizer (:class:`VocabTokenizer`,
            :class:`HFTokenizer`, any :class:`BaseTokenizer`) or its config
            (built in ``TASK_UTILS``); None: a default VocabTokenizer. The
            TokenizerHook fits it in training; a model whose text encoder
            brings its own tokenizer (a pretrained one) replaces it.
        non_blocking: non-blocking host-to-device copies.
    """

    #: Copy the data samples even on the CPU (subclasses that change the
    #: samples' annotations set it, so the loader's batch stays as it was).
    copy_data_samples: bool = False

    def __init__(self,
                 mean: Optional[Sequence[float]] = (123.675, 116.28, 103.53),
                 std: Optional[Sequence[float]] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = True,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 tokenizer: Union[dict, BaseTokenizer, None] = None,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if (mean is None) != (std is None):
            raise ValueError('mean and std must both be set or both be None')
        self._enable_normalize = mean is not None
        if mean is not None:
            if len(mean) != len(std):
                raise ValueError(f'mean has {len(mean)} values but std has '
                                 f'{len(std)}')
            # Buffers follow the module to its device; not persistent so
            # checkpoints do not depend on the normalisation setting.
            self.register_buffer(
                'mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                persistent=False)
            self.register_buffer(
                'std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                persistent=False)
        if pad_size_divisor < 1:
            raise ValueError('pad_size_divisor must be >= 1, got '
                             f'{pad_size_divisor}')
        self.bgr_to_rgb = bgr_to_rgb
        self.pad_size_divisor = int(pad_size_divisor)
        self.pad_value = pad_value
        if tokenizer is None:
            tokenizer = VocabTokenizer()
        elif isinstance(tokenizer, dict):
            tokenizer = TASK_UTILS.build(tokenizer)
        self.tokenizer: BaseTokenizer = tokenizer

    # --------------------------------------------------------------- images
    def _normalize(self, img: Tensor) -> Tensor:
        """``(..., C, H, W)`` any dtype -> float, RGB, normalised."""
        channels = img.shape[-3]
        if self.bgr_to_rgb and channels == 3:
            # Flip before converting: a quarter of the bytes for uint8.
            img = img.flip(-3)
        # In place after the one copy that float() (or flip) made.
        img = img.float() if img.dtype != torch.float32 else img.clone()
        if self._enable_normalize:
            if channels != self.mean.shape[0]:
                raise ValueError(
                    f'images have {channels} channels but mean/std have '
                    f'{self.mean.shape[0]} values')
            img = img.sub_(self.mean).div_(self.std)
        return img

    def _padded_size(self, h: int, w: int) -> Tuple[int, int]:
        d = self.pad_size_divisor
        return int(math.ceil(h / d) * d), int(math.ceil(w / d) * d)

    def _batch_images(self, imgs: Union[Tensor, Sequence[Optional[Tensor]],
                                        None],
                      batch_size: int) -> Tuple[Tensor, Tensor]:
        """Normalised padded ``(B, C, H, W)`` images and presence flags."""
        device = self.device
        if isinstance(imgs, Tensor):
            if imgs.dim() == 3:
                imgs = imgs.unsqueeze(0)
            if imgs.dim() != 4:
                raise ValueError('a stacked `img` must be (B, C, H, W), got '
                                 f'shape {tuple(imgs.shape)}')
            batch = self._normalize(
                imgs.to(device, non_blocking=self._non_blocking))
            h, w = self._padded_size(*batch.shape[-2:])
            if (h, w) != tuple(batch.shape[-2:]):
                batch = F.pad(batch, (0, w - batch.shape[-1], 0,
                                      h - batch.shape[-2]),
                              value=self.pad_value)
            present = torch.ones(batch.shape[0], dtype=torch.bool,
                                 device=device)
            return batch, present

        if imgs is None:
            imgs = [None] * batch_size
        imgs = list(imgs)
        real = [im for im in imgs if im is not None]
        for im in real:
            if not isinstance(im, Tensor) or im.dim() != 3:
                raise TypeError('each `img` must be a (C, H, W) tensor or '
                                f'None, got {type(im).__name__} '
                                f'{tuple(getattr(im, "shape", ()))}')
        if real:
            channels = real[0].shape[0]
            h, w = self._padded_size(max(im.shape[1] for im in real),
                                     max(im.shape[2] for im in real))
        else:
            # No image in the batch: a small blank canvas keeps the image
            # encoder's shapes valid; every sample is marked absent.
            channels = self.mean.shape[0] if self._enable_normalize else 3
            h, w = self._padded_size(32, 32)
        if len(real) == len(imgs) and all(
                im.shape == real[0].shape and im.dtype == real[0].dtype
                for im in real):
            # Every image there and of one size (the usual batch): convert
            # and normalise the stacked batch in one go, not image by image.
            return self._batch_images(torch.stack(real), batch_size)
        batch = torch.full((len(imgs), channels, h, w), float(self.pad_value),
                           dtype=torch.float32, device=device)
        present = torch.zeros(len(imgs), dtype=torch.bool, device=device)
        for i, im in enumerate(imgs):
            if im is None:
                continue
            im = self._normalize(
                im.to(device, non_blocking=self._non_blocking))
            batch[i, :, :im.shape[1], :im.shape[2]] = im
            present[i] = True
        return batch, present

    # ---------------------------------------------------------------- texts
    def _tokenize(self, texts: Union[Sequence[Optional[str]], str, None],
                  batch_size: int) -> Tuple[Tensor, Tensor]:
        if not self.tokenizer.is_fitted:
            raise RuntimeError(NOT_FITTED_MESSAGE)
        if texts is None:
            texts = [None] * batch_size
        elif isinstance(texts, str):
            texts = [texts]
        return self.tokenizer.encode(list(texts))

    @staticmethod
    def _batch_size(inputs: Dict[str, Any],
                    data_samples: Optional[List[Any]]) -> int:
        """Samples in the batch, from the first input that tells."""
        img = inputs.get('img')
        if isinstance(img, Tensor):
            return img.shape[0] if img.dim() == 4 else 1
        if img is not None:
            return len(img)
        text = inputs.get('text')
        if text is not None:
            return 1 if isinstance(text, str) else len(text)
        if isinstance(inputs.get('text_ids'), Tensor):
            return inputs['text_ids'].shape[0]
        if data_samples is not None:
            return len(data_samples)
        raise ValueError('the batch has neither `img` nor `text` inputs')

    def _flags(self, value: Union[Tensor, Sequence[bool], bool],
               batch_size: int, name: str) -> Tensor:
        """``(B,)`` bool flags from a tensor, a list of bools (what
        ``pseudo_collate`` makes of per-sample flags) or one bool."""
        flags = torch.as_tensor(value, dtype=torch.bool, device=self.device)
        if flags.dim() == 0:
            flags = flags.expand(batch_size)
        flags = flags.reshape(-1)
        if flags.shape[0] != batch_size:
            raise ValueError(f'`{name}` has {flags.shape[0]} values for a '
                             f'batch of {batch_size}')
        return flags

    # -------------------------------------------------------------- forward
    def forward(self, data: dict, training: bool = False) -> dict:
        """Batch, normalise and tokenise; see the class docstring.

        Args:
            data: ``{'inputs': {...}, 'data_samples': [...]}`` from the
                dataloader.
            training: whether this is a training batch (unused: no
                batch-level augmentation).

        Returns:
            ``{'inputs': {...}, 'data_samples': [...]}`` on the device.
        """
        inputs = dict(data.get('inputs') or {})
        data_samples = data.get('data_samples')
        batch_size = self._batch_size(inputs, data_samples)

        img, image_present = self._batch_images(inputs.pop('img', None),
                                                batch_size)
        texts = inputs.pop('text', None)
        if 'text_ids' in inputs:
            ids = inputs.pop('text_ids')
            mask = inputs.pop('text_mask', None)
            if mask is None:
                mask = ids != self.tokenizer.pad_id
        else:
            ids, mask = self._tokenize(texts, batch_size)
        ids = ids.to(self.device, non_blocking=self._non_blocking).long()
        mask = mask.to(self.device, non_blocking=self._non_blocking).bool()
        if ids.shape[0] != img.shape[0]:
            raise ValueError(f'the batch has {img.shape[0]} images but '
                             f'{ids.shape[0]} texts')
        text_present = mask.any(dim=1)
        if 'text_present' in inputs:
            text_present &= self._flags(inputs.pop('text_present'),
                                        ids.shape[0], 'text_present')
        if 'image_present' in inputs:
            image_present &= self._flags(inputs.pop('image_present'),
                                         img.shape[0], 'image_present')

        out_inputs = self.cast_data(inputs)
        out_inputs.update(img=img, text_ids=ids, text_mask=mask,
                          image_present=image_present,
                          text_present=text_present)

        if data_samples is not None:
            if self.copy_data_samples or self.device.type != 'cpu':
                # BaseDataElement.to() deep-copies every sample (a third of
                # this method's time on the CPU): only worth it when the
                # tensors move, or when a subclass edits the samples.
                data_samples = self.cast_data(data_samples)
            pad_shape = tuple(img.shape[-2:])
            for sample in data_samples:
                if isinstance(sample, BaseDataElement):
                    # set_field, not set_metainfo: no deep copy of the dict.
                    sample.set_field(pad_shape, 'batch_input_shape',
                                     field_type='metainfo')
                    sample.set_field(pad_shape, 'pad_shape',
                                     field_type='metainfo')
        return {'inputs': out_inputs, 'data_samples': data_samples}
