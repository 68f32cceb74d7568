"""tools/train.py with a pretrained (Hugging Face) text encoder: a tiny
random BERT the test writes, so it runs in seconds. Training, the test
after training, and a checkpoint whose meta holds the tokenizer's JSON
(plain data, loadable with weights_only=True)."""
from __future__ import annotations

import json

import torch

from conftest import TINY_SHAPES
from hf_tiny import make_tiny_bert
from test_train_cli import run_tool


def test_train_with_hf_text_encoder(tmp_path, data_root):
    model_dir = make_tiny_bert(tmp_path / 'tiny_bert')
    wd = tmp_path / 'wd'
    run_tool('train.py', 'cls_shapes', f'data_root={data_root}',
             *TINY_SHAPES, 'model/text_encoder=minilm',
             f'model.text_encoder.pretrained={model_dir}',
             'model.text_encoder.trainable_layers=1',
             'train_cfg.max_iters=6', 'train_cfg.val_interval=100',
             'default_hooks.checkpoint.interval=6',
             'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
             '--work-dir', str(wd), cwd=tmp_path,
             env={'HF_HUB_OFFLINE': '1'})
    metrics = json.loads((wd / 'test_metrics.json').read_text())
    assert 0 <= metrics['accuracy'] <= 1
    ckpt = torch.load(wd / 'iter_6.pth', weights_only=True)
    tok = ckpt['meta']['tokenizer']
    assert tok['type'] == 'HFTokenizer'
    assert json.loads(tok['tokenizer_json'])['model']['type'] == 'WordPiece'
    json.dumps(ckpt['meta'])  # plain data throughout
    state = ckpt['state_dict']
    assert 'text_encoder.model.encoder.layer.0.output.dense.weight' in state
    # The resolved config names the encoder and its tokenizer.
    cfg = (wd / 'config.yaml').read_text()
    assert 'HFTextEncoder' in cfg and 'HFTokenizer' in cfg
