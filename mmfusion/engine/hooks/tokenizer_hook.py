"""Fit the vocabulary tokenizer on the training texts; keep it in checkpoints."""
from __future__ import annotations

from typing import Dict, List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmfusion.registry import HOOKS


def get_tokenizer(model) -> Optional[object]:
    """The tokenizer inside ``model.data_preprocessor``, if any."""
    if is_model_wrapper(model):
        model = model.module
    pre = getattr(model, 'data_preprocessor', None)
    return getattr(pre, 'tokenizer', None)


def dataset_texts(dataset) -> List[str]:
    """Every non-null text of a dataset (ConcatDataset and wrappers too)."""
    if hasattr(dataset, 'get_texts'):
        return list(dataset.get_texts())
    for attr in ('datasets', 'dataset'):
        inner = getattr(dataset, attr, None)
        if isinstance(inner, (list, tuple)):
            return [t for d in inner for t in dataset_texts(d)]
        if inner is not None:
            return dataset_texts(inner)
    texts = []
    for i in range(len(dataset)):
        text = dataset.get_data_info(i).get('text')
        if text:
            texts.append(text)
    return texts


@HOOKS.register_module()
class TokenizerHook(Hook):
    """Fit the tokenizer before training unless a checkpoint restored it.

    The vocabulary is saved as plain data in ``checkpoint['meta']
    ['tokenizer']`` and restored from any checkpoint that is loaded (resume,
    ``load_from``, testing), so a trained model carries its own vocabulary.
    A pretrained text encoder's own tokenizer (``build_tokenizer``) replaces
    the data preprocessor's before the run if the model did not do so when
    it was built (see ``adopt_text_encoder_tokenizer``).
    """

    priority = 'HIGH'

    def before_run(self, runner) -> None:
        from mmfusion.models.tokenizers import adopt_text_encoder_tokenizer
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        encoder = getattr(model, 'text_encoder', None)
        pre = getattr(model, 'data_preprocessor', None)
        if encoder is not None and pre is not None:
            adopt_text_encoder_tokenizer(pre, encoder)

    def before_train(self, runner) -> None:
        tokenizer = get_tokenizer(runner.model)
        if tokenizer is None or not hasattr(tokenizer, 'fit'):
            return
        if getattr(tokenizer, 'is_fitted', False):
            return
        texts = dataset_texts(runner.train_dataloader.dataset)
        tokenizer.fit(texts)
        runner.logger.info(
            f'TokenizerHook: fitted a vocabulary of {tokenizer.vocab_size} '
            f'tokens on {len(texts)} training texts.')

    def before_save_checkpoint(self, runner, checkpoint: Dict) -> None:
        tokenizer = get_tokenizer(runner.model)
        if tokenizer is not None and getattr(tokenizer, 'is_fitted', True):
            checkpoint.setdefault('meta', {})['tokenizer'] = \
                tokenizer.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        state = checkpoint.get('meta', {}).get('tokenizer')
        tokenizer = get_tokenizer(runner.model)
        if state is not None and tokenizer is not None:
            tokenizer.load_state_dict(state)
            runner.logger.info('TokenizerHook: restored the tokenizer '
                               'from the checkpoint meta.')
